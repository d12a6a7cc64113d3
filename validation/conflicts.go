package validation

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// conflictMaxNamedWorkloads bounds how many workloads a denial lists, so a
// message about a large Deployment fleet stays readable in a sync log.
const conflictMaxNamedWorkloads = 5

// ValidateConflicts checks a Sidecar being created or updated against the
// other Sidecars and workloads in the cluster. The Sidecar's own earlier
// version (same namespace/name) is never a conflict.
//
// It denies what the Sidecar reference (NOTE 1) leaves undefined: two
// namespace-wide Sidecars in one namespace, and two Sidecars whose
// workloadSelectors select the same workload, now or by construction (one
// selector's labels contain the other's). It warns about selectors that could
// overlap later, that select nothing, that sit in the root namespace (NOTE 2),
// and about a namespace-wide Sidecar not named "default".
func ValidateConflicts(s *sidecar.Sidecar, view clusterview.View) (field.ErrorList, Warnings) {
	others := conflictOtherSidecars(s, view)
	if !sidecar.HasSelector(s) {
		return conflictNamespaceWide(s, others)
	}

	var warnings Warnings
	selectorPath := field.NewPath("spec", "workloadSelector")
	if root := view.RootNamespace(); root != "" && s.Namespace == root {
		warnings = append(warnings, Warnf(selectorPath,
			"this Sidecar is in the mesh root namespace %q, where the Sidecar reference expects only the global default Sidecar, without workloadSelector; a Sidecar with a workloadSelector here is not a mesh-wide default",
			root))
	}

	selector := sidecar.Selector(s)
	if len(selector) == 0 {
		// An empty selector is rejected by the per-object rules; it selects
		// nothing, so it cannot conflict.
		return nil, warnings
	}

	labelsPath := selectorPath.Child("labels")
	// Only what is selected gets sorted (messages name workloads in order):
	// a namespace may hold thousands of pods.
	selected := conflictSelected(selector, view.Workloads(s.Namespace))
	clusterview.SortWorkloads(selected)
	if len(selected) == 0 {
		warnings = append(warnings, Warnf(labelsPath,
			"selects no workload in namespace %q now (no Pod, WorkloadEntry or workload controller template carries %s)",
			s.Namespace, conflictFormatLabels(selector)))
	}

	var errs field.ErrorList
	for _, other := range others {
		if len(other.Selector) == 0 {
			continue
		}
		both := conflictSelected(other.Selector, selected)
		sSubset := conflictIsSubset(selector, other.Selector)
		otherSubset := conflictIsSubset(other.Selector, selector)
		switch {
		case len(both) > 0:
			byConstruction := ""
			if sSubset || otherSubset {
				byConstruction = "; " + conflictSubsetReason(other.Key(), sSubset, otherSubset)
			}
			errs = append(errs, field.Forbidden(labelsPath, fmt.Sprintf(
				"this Sidecar's workloadSelector (%s) and Sidecar %s (workloadSelector %s) both select %s%s; Istio's behaviour is undefined when two Sidecars with a workloadSelector select the same workload; change one of the selectors so that they select disjoint workloads",
				conflictFormatLabels(selector), other.Key(), conflictFormatLabels(other.Selector),
				conflictFormatWorkloads(both), byConstruction)))
		case sSubset || otherSubset:
			errs = append(errs, field.Forbidden(labelsPath, fmt.Sprintf(
				"this Sidecar's workloadSelector (%s) and Sidecar %s (workloadSelector %s) overlap: %s (no such workload exists yet, but any future one would get two Sidecars); Istio's behaviour is undefined when two Sidecars with a workloadSelector select the same workload; change one of the selectors so that they select disjoint workloads",
				conflictFormatLabels(selector), other.Key(), conflictFormatLabels(other.Selector),
				conflictSubsetReason(other.Key(), sSubset, otherSubset))))
		case conflictCompatible(selector, other.Selector):
			union := maps.Clone(selector)
			maps.Copy(union, other.Selector)
			warnings = append(warnings, Warnf(labelsPath,
				"selects the same workloads as %s if a workload carries both label sets (%s); none exists now",
				other.Key(), conflictFormatLabels(union)))
		}
	}
	return errs, warnings
}

// conflictNamespaceWide applies the rules for a Sidecar without
// workloadSelector.
func conflictNamespaceWide(s *sidecar.Sidecar, others []clusterview.SidecarRef) (field.ErrorList, Warnings) {
	var warnings Warnings
	if s.Name != "default" {
		warnings = append(warnings, Warnf(field.NewPath("metadata", "name"),
			"the Sidecar reference recommends naming the namespace-wide Sidecar (the one without workloadSelector) \"default\""))
	}
	var existing []string
	for _, other := range others {
		if other.Selector == nil {
			existing = append(existing, other.Key())
		}
	}
	if len(existing) == 0 {
		return nil, warnings
	}
	slices.Sort(existing)
	names := strings.Join(existing, ", ")
	return field.ErrorList{field.Forbidden(field.NewPath("spec", "workloadSelector"), fmt.Sprintf(
		"namespace %q already has a Sidecar without workloadSelector: %s; only one namespace-wide Sidecar is allowed per namespace (Istio's behaviour with two is undefined); add a workloadSelector or change %s instead",
		s.Namespace, names, names))}, warnings
}

// conflictOtherSidecars lists the Sidecars in s's namespace other than s
// itself (its earlier version on update), sorted by name.
func conflictOtherSidecars(s *sidecar.Sidecar, view clusterview.View) []clusterview.SidecarRef {
	var out []clusterview.SidecarRef
	for _, ref := range view.Sidecars(s.Namespace) {
		if ref.Namespace != s.Namespace || ref.Name == s.Name {
			continue
		}
		out = append(out, ref)
	}
	slices.SortFunc(out, func(a, b clusterview.SidecarRef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// conflictSelected returns the workloads selector selects, in input order.
func conflictSelected(selector map[string]string, workloads []clusterview.Workload) []clusterview.Workload {
	var out []clusterview.Workload
	for _, w := range workloads {
		if sidecar.SelectorMatches(selector, w.Labels) {
			out = append(out, w)
		}
	}
	return out
}

// conflictIsSubset reports whether every label of a is in b with the same
// value: then every workload b selects, a selects too.
func conflictIsSubset(a, b map[string]string) bool {
	for k, v := range a {
		if got, ok := b[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// conflictCompatible reports whether no key has different values in a and
// b, so one workload could carry both label sets.
func conflictCompatible(a, b map[string]string) bool {
	for k, v := range a {
		if got, ok := b[k]; ok && got != v {
			return false
		}
	}
	return true
}

// conflictSubsetReason explains a selector overlap that holds by
// construction (at least one selector is a subset of the other), from the
// point of view of the Sidecar being admitted.
func conflictSubsetReason(otherKey string, sSubset, otherSubset bool) string {
	switch {
	case sSubset && otherSubset:
		return "the two selectors are identical"
	case sSubset:
		return fmt.Sprintf("every workload selected by the narrower %s is also selected by this Sidecar", otherKey)
	default:
		return fmt.Sprintf("every workload selected by this (narrower) Sidecar is also selected by %s", otherKey)
	}
}

// conflictFormatLabels renders labels sorted by key: "app=ratings, version=v2".
func conflictFormatLabels(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ", ")
}

// conflictFormatWorkloads names up to conflictMaxNamedWorkloads workloads and
// counts the rest.
func conflictFormatWorkloads(workloads []clusterview.Workload) string {
	parts := make([]string, 0, conflictMaxNamedWorkloads)
	for i, w := range workloads {
		if i == conflictMaxNamedWorkloads {
			break
		}
		parts = append(parts, w.String())
	}
	out := strings.Join(parts, ", ")
	if rest := len(workloads) - conflictMaxNamedWorkloads; rest > 0 {
		out += fmt.Sprintf(" and %d more", rest)
	}
	return out
}
