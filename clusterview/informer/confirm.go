package informer

import (
	"context"
	"slices"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// WithLiveSidecars returns view with namespace's Sidecars read directly from
// the API server (reader must not be a cache). Two replicas deciding at the
// same moment each see the other's Sidecar once it is stored, which shrinks
// the window in which both admit a conflicting pair to the time between this
// read and the write.
func WithLiveSidecars(ctx context.Context, view clusterview.View, reader client.Reader, namespace string) (clusterview.View, error) {
	list := &networkingv1.SidecarList{}
	if err := reader.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	refs := make([]clusterview.SidecarRef, 0, len(list.Items))
	for _, s := range list.Items {
		refs = append(refs, clusterview.RefOf(s))
	}
	slices.SortFunc(refs, func(a, b clusterview.SidecarRef) int { return strings.Compare(a.Name, b.Name) })
	return &liveSidecars{View: view, namespace: namespace, sidecars: refs}, nil
}

type liveSidecars struct {
	clusterview.View
	namespace string
	sidecars  []clusterview.SidecarRef
}

func (l *liveSidecars) Sidecars(namespace string) []clusterview.SidecarRef {
	if namespace == l.namespace {
		return l.sidecars
	}
	return l.View.Sidecars(namespace)
}
