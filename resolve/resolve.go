// Package resolve decides which Sidecar a workload receives, the way Istio
// does: a Sidecar in the workload's namespace whose workloadSelector selects
// it, else the namespace-wide Sidecar of that namespace, else the
// namespace-wide Sidecar of the mesh root namespace. It is pure: it reads a
// clusterview.View and nothing else, so the pod webhook, the annotation
// reconciler and the offline `resolve` command give the same answer.
package resolve

import (
	"slices"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
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

// Resolve returns the Sidecar a workload in namespace carrying labels
// receives. Nil or empty labels are selected by no workloadSelector.
func Resolve(view clusterview.View, namespace string, labels map[string]string) Resolution {
	local := view.Sidecars(namespace)

	var selecting []clusterview.SidecarRef
	for _, s := range local {
		// A non-nil empty selector is not namespace-wide, and selects
		// nothing (validation rejects it).
		if s.Selector != nil && sidecar.SelectorMatches(s.Selector, labels) {
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

// pick applies Istio's tie-breaker among candidates of one level: the oldest
// wins, then the lowest namespace/name.
func pick(candidates []clusterview.SidecarRef, scope Scope) Resolution {
	winner := slices.MinFunc(candidates, func(a, b clusterview.SidecarRef) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Key(), b.Key())
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

// Labels that decide whether Istio injects a proxy into a pod.
const (
	InjectionLabel    = "istio-injection"
	RevisionLabel     = "istio.io/rev"
	PodInjectionLabel = "sidecar.istio.io/inject"
)

// InjectionEnabled reports whether a pod gets a proxy, by the same test the
// pod webhook's configuration makes: its namespace carries
// istio-injection=enabled or an istio.io/rev label, and the pod is not
// labelled sidecar.istio.io/inject=false. Only such pods have a Sidecar
// to report.
func InjectionEnabled(namespaceLabels, podLabels map[string]string) bool {
	if podLabels[PodInjectionLabel] == "false" {
		return false
	}
	if namespaceLabels[InjectionLabel] == "enabled" {
		return true
	}
	_, hasRevision := namespaceLabels[RevisionLabel]
	return hasRevision
}
