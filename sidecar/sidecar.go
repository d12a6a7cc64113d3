// Package sidecar is the object model every other package speaks: the typed
// Istio Sidecar (istio.io/client-go, identical schema in v1alpha3, v1beta1 and
// v1), a strict decoder that reports shape problems as field errors, and the
// small helpers that several layers need (selectors, address forms).
package sidecar

import (
	"k8s.io/apimachinery/pkg/labels"

	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of Istio's networking resources.
const Group = "networking.istio.io"

// Kind is the kind this project guards.
const Kind = "Sidecar"

// Resource is the plural resource name the API server routes by.
const Resource = "sidecars"

// ServedVersions are the versions of the Sidecar CRD that Istio serves. They
// share one schema, so one decoder and one set of rules covers them all.
var ServedVersions = []string{"v1alpha3", "v1beta1", "v1"}

// Sidecar is the typed object. The v1 client type is used for every served
// version because the spec is the same protobuf message in all of them.
type Sidecar = networkingv1.Sidecar

// IsServedGVK reports whether gvk is a Sidecar in one of the served versions.
func IsServedGVK(gvk schema.GroupVersionKind) bool {
	return gvk.Group == Group && gvk.Kind == Kind && isServedVersion(gvk.Version)
}

// IsServedGVR reports whether gvr is the sidecars resource in a served version.
func IsServedGVR(gvr schema.GroupVersionResource) bool {
	return gvr.Group == Group && gvr.Resource == Resource && isServedVersion(gvr.Version)
}

func isServedVersion(v string) bool {
	for _, s := range ServedVersions {
		if s == v {
			return true
		}
	}
	return false
}

// UnixPrefix marks a bind or endpoint address as a Unix domain socket.
const UnixPrefix = "unix://"

// IsUnixAddress reports whether addr names a Unix domain socket.
func IsUnixAddress(addr string) bool { return strings.HasPrefix(addr, UnixPrefix) }

// Selector returns the workloadSelector labels of s, or nil when s is
// namespace-wide (no workloadSelector at all).
func Selector(s *Sidecar) map[string]string {
	if s.Spec.GetWorkloadSelector() == nil {
		return nil
	}
	labels := s.Spec.GetWorkloadSelector().GetLabels()
	if labels == nil {
		return map[string]string{}
	}
	return labels
}

// HasSelector reports whether s carries a workloadSelector (even an empty one).
func HasSelector(s *Sidecar) bool { return s.Spec.GetWorkloadSelector() != nil }

// SameSelector reports whether a and b select the same workloads by
// construction: both namespace-wide, or both with a workloadSelector (an
// empty one, `{}` or without labels, counts as one) carrying the same labels.
// An UPDATE that keeps its selector cannot start a conflict with another
// Sidecar, which is what the webhook's confirming read and the conflict
// ratchet rely on.
func SameSelector(a, b *Sidecar) bool {
	if HasSelector(a) != HasSelector(b) {
		return false
	}
	return labels.Equals(Selector(a), Selector(b))
}
