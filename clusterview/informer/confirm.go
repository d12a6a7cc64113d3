package informer

import (
	"context"
	"slices"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// WithLiveSidecars returns view with namespace's Sidecars as the API server
// has them now (reader must not be a cache). Two replicas deciding at the
// same moment each see the other's Sidecar once it is stored, which shrinks
// the window in which both admit a conflicting pair to the time between this
// read and the write.
//
// The read lists metadata only and takes each Sidecar's selector from the
// cached view when the cache holds the same resourceVersion; only a Sidecar
// the cache has not seen yet, or holds in an older version, is fetched
// whole. The answer is the same as a full list, at a fraction of the cost on
// both sides of the connection.
func WithLiveSidecars(ctx context.Context, view clusterview.View, reader client.Reader, namespace string) (clusterview.View, error) {
	live := &metav1.PartialObjectMetadataList{}
	live.SetGroupVersionKind(networkingv1.SchemeGroupVersion.WithKind("SidecarList"))
	if err := reader.List(ctx, live, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	cached := map[string]clusterview.SidecarRef{}
	for _, ref := range view.Sidecars(namespace) {
		cached[ref.Name] = ref
	}
	refs := make([]clusterview.SidecarRef, 0, len(live.Items))
	for _, item := range live.Items {
		if ref, ok := cached[item.Name]; ok && ref.ResourceVersion != "" && ref.ResourceVersion == item.ResourceVersion {
			refs = append(refs, ref)
			continue
		}
		full := &networkingv1.Sidecar{}
		if err := reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: item.Name}, full); err != nil {
			if client.IgnoreNotFound(err) == nil {
				continue // deleted between the list and the get
			}
			return nil, err
		}
		refs = append(refs, clusterview.RefOf(full))
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
