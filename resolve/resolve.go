// Package resolve decides which Sidecar a workload's proxy receives, the way
// istiod does (pilot/pkg/model push_context.go initSidecarScopes and
// getSidecarScope): among the Sidecars of the workload's namespace, those with
// a workloadSelector (an empty one selects every workload) come first, oldest
// first; the first that selects the workload wins; else the oldest
// namespace-wide Sidecar of the namespace; else the oldest namespace-wide
// Sidecar of the mesh root namespace. Gateways and waypoints never get a
// Sidecar. It is pure: it reads a clusterview.View and nothing else, so the
// pod webhook, the annotation reconciler and the offline `resolve` command
// give the same answer.
package resolve

import (
	k8slabels "k8s.io/apimachinery/pkg/labels"

	"cmp"
	"slices"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
)

// Scope says where the applied Sidecar came from.
type Scope string

const (
	// ScopeWorkload: a Sidecar whose workloadSelector selects the workload.
	ScopeWorkload Scope = "workload"
	// ScopeNamespace: the namespace-wide Sidecar of the workload's namespace
	// (including the root namespace's own, for workloads that live there).
	ScopeNamespace Scope = "namespace"
	// ScopeMesh: the root namespace's namespace-wide Sidecar, the mesh default.
	ScopeMesh Scope = "mesh"
	// ScopeNone: no Sidecar applies; the proxy gets Istio's full defaults.
	ScopeNone Scope = "none"
	// ScopeGateway: a gateway or waypoint proxy, which istiod gives its
	// default scope and never a Sidecar.
	ScopeGateway Scope = "gateway"
)

// Resolution is the Sidecar a workload receives.
type Resolution struct {
	// Sidecar is the namespace/name of the applied Sidecar, "" if none.
	Sidecar string
	Scope   Scope
	// Conflicts lists (sorted by namespace/name) every candidate at the
	// deciding level when more than one was found: several Sidecars selecting
	// the workload, or several namespace-wide ones. Istio calls that
	// undefined behaviour; Sidecar is the one it picks in practice. Nil when
	// there is no conflict.
	Conflicts []string
}

// ForProxy returns the Sidecar a workload's proxy of kind receives; ok is
// false when the workload has no proxy, so nothing applies.
func ForProxy(view clusterview.View, namespace string, kind mesh.ProxyKind, labels map[string]string) (res Resolution, ok bool) {
	switch kind {
	case mesh.SidecarProxy:
		return Resolve(view, namespace, labels), true
	case mesh.GatewayProxy:
		return Resolution{Scope: ScopeGateway}, true
	}
	return Resolution{}, false
}

// Resolve returns the Sidecar a sidecar proxy in namespace carrying labels
// receives.
func Resolve(view clusterview.View, namespace string, workloadLabels map[string]string) Resolution {
	local := view.Sidecars(namespace)

	var selecting []clusterview.SidecarRef
	for _, s := range local {
		// A non-nil empty selector is not namespace-wide: istiod ranks it
		// with the selector Sidecars and it selects every workload (as a
		// selector from an empty set does).
		if s.Selector != nil && k8slabels.SelectorFromValidatedSet(s.Selector).Matches(k8slabels.Set(workloadLabels)) {
			selecting = append(selecting, s)
		}
	}
	if len(selecting) > 0 {
		return pick(selecting, ScopeWorkload)
	}
	if wide := namespaceWide(local); len(wide) > 0 {
		return pick(wide, ScopeNamespace)
	}
	if root := view.RootNamespace(); root != "" && root != namespace {
		if wide := namespaceWide(view.Sidecars(root)); len(wide) > 0 {
			return pick(wide, ScopeMesh)
		}
	}
	return Resolution{Scope: ScopeNone}
}

func namespaceWide(refs []clusterview.SidecarRef) []clusterview.SidecarRef {
	var out []clusterview.SidecarRef
	for _, s := range refs {
		if s.Selector == nil {
			out = append(out, s)
		}
	}
	return out
}

// pick applies istiod's order among candidates of one level (model
// config.go configCompareByCreationTime): the oldest wins, then the lowest
// name, then the lowest namespace.
func pick(candidates []clusterview.SidecarRef, scope Scope) Resolution {
	winner := slices.MinFunc(candidates, func(a, b clusterview.SidecarRef) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.Name, b.Name), strings.Compare(a.Namespace, b.Namespace))
	})
	res := Resolution{Sidecar: winner.Key(), Scope: scope}
	if len(candidates) > 1 {
		res.Conflicts = make([]string, 0, len(candidates))
		for _, c := range candidates {
			res.Conflicts = append(res.Conflicts, c.Key())
		}
		slices.Sort(res.Conflicts)
	}
	return res
}
