package validation

import (
	"k8s.io/apimachinery/pkg/labels"

	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
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
// selector's labels contain the other's). Only workloads that run a sidecar
// proxy count (clusterview.ProxyJudge): gateways, waypoints, ambient and
// uninjected workloads get no Sidecar from istiod. An existing Sidecar with an
// empty workloadSelector selects every workload of its namespace, as istiod
// treats it. It warns about selectors that could overlap later, that select
// nothing or only workloads without a sidecar proxy, that sit in the root
// namespace (NOTE 2), about Sidecars in ambient namespaces, and about a
// namespace-wide Sidecar not named "default".
func ValidateConflicts(s *sidecar.Sidecar, view clusterview.View) (field.ErrorList, Warnings) {
	r := checkConflicts(s, view)
	return r.errs, r.warnings
}

// conflictResult is what checkConflicts finds: errors, and for each error
// the other Sidecars (namespace/name) it names; warnings.
type conflictResult struct {
	errs     field.ErrorList
	others   [][]string
	warnings Warnings
}

func (r *conflictResult) add(e *field.Error, others ...string) {
	r.errs = append(r.errs, e)
	r.others = append(r.others, others)
}

// checkConflicts is ValidateConflicts, telling also which other Sidecars
// each error is about (the audit's PolicyReports list them).
func checkConflicts(s *sidecar.Sidecar, view clusterview.View) conflictResult {
	others := conflictOtherSidecars(s, view)
	judge := clusterview.NewProxyJudge(view)
	ambient := mesh.NamespaceAmbient(view.NamespaceLabels(s.Namespace))
	if !sidecar.HasSelector(s) {
		return conflictNamespaceWide(s, others, view, judge, ambient)
	}

	var warnings Warnings
	selectorPath := field.NewPath("spec", "workloadSelector")
	if root := view.RootNamespace(); root != "" && s.Namespace == root {
		warnings = append(warnings, Warnf(rules.SelectorInRoot, selectorPath,
			"this Sidecar is in the mesh root namespace %q, where the Sidecar reference expects only the global default Sidecar, without workloadSelector; a Sidecar with a workloadSelector here is not a mesh-wide default",
			root))
	}

	// An empty selector (on an existing Sidecar: validation refuses to
	// create one) selects every workload.
	selector := sidecar.Selector(s)
	labelsPath := selectorPath.Child("labels")
	// Only what is selected gets judged and sorted (messages name workloads
	// in order): a namespace may hold thousands of pods.
	selected := conflictSelected(selector, view.Workloads(s.Namespace))
	clusterview.SortWorkloads(selected)
	proxied, withoutProxy := conflictSplitByProxy(judge, selected)
	switch {
	case len(selected) == 0 && ambient:
		warnings = append(warnings, conflictAmbientWarning(selectorPath, s.Namespace))
	case len(selected) == 0:
		warnings = append(warnings, Warnf(rules.SelectsNothing, labelsPath,
			"selects no workload in namespace %q now (no Pod, WorkloadEntry or workload controller template carries %s)",
			s.Namespace, conflictFormatLabels(selector)))
	case len(proxied) == 0:
		warnings = append(warnings, Warnf(rules.NoSidecarProxy, labelsPath,
			"has no effect now: every workload it selects runs without a sidecar proxy (%s), and istiod applies Sidecars to sidecar proxies only",
			conflictFormatWithoutProxy(withoutProxy)))
	}

	result := conflictResult{warnings: warnings}
	// A namespace may hold many Sidecars, most of them unrelated: each
	// selector is built once, and an unrelated Sidecar costs no text.
	sel := labels.SelectorFromValidatedSet(selector)
	for _, other := range others {
		if other.Selector == nil {
			continue
		}
		otherSel := labels.SelectorFromValidatedSet(other.Selector)
		both := conflictSelectedBy(otherSel, proxied)
		// s's selector a subset of other's (every label of one in the
		// other, same value): every workload other selects, s selects too.
		sSubset := sel.Matches(labels.Set(other.Selector))
		otherSubset := otherSel.Matches(labels.Set(selector))
		switch {
		case len(both) > 0:
			byConstruction := ""
			if sSubset || otherSubset {
				byConstruction = "; " + conflictSubsetReason(other, sSubset, otherSubset)
			}
			result.add(rules.SelectorsShareWorkload.On(field.Forbidden(labelsPath, fmt.Sprintf(
				"this Sidecar's workloadSelector (%s) and Sidecar %s (%s) both select %s%s; Istio's behaviour is undefined when two Sidecars with a workloadSelector select the same workload; %s",
				conflictFormatLabels(selector), other.Key(), conflictDescribeSelector(other),
				conflictFormatWorkloads(both), byConstruction, conflictFix(other)))), other.Key())
		case (sSubset || otherSubset) && ambient:
			result.warnings = append(result.warnings, Warnf(rules.SelectorsOverlap, labelsPath,
				"overlaps Sidecar %s (%s): %s; namespace %q is in ambient mode, so only workloads injected individually would get either, and none does now",
				other.Key(), conflictDescribeSelector(other), conflictSubsetReason(other, sSubset, otherSubset), s.Namespace))
		case sSubset || otherSubset:
			result.add(rules.SelectorsOverlap.On(field.Forbidden(labelsPath, fmt.Sprintf(
				"this Sidecar's workloadSelector (%s) and Sidecar %s (%s) overlap: %s (no such workload with a sidecar proxy exists yet, but any future one would get two Sidecars); Istio's behaviour is undefined when two Sidecars with a workloadSelector select the same workload; %s",
				conflictFormatLabels(selector), other.Key(), conflictDescribeSelector(other),
				conflictSubsetReason(other, sSubset, otherSubset), conflictFix(other)))), other.Key())
		case conflictCompatible(selector, other.Selector):
			union := maps.Clone(selector)
			maps.Copy(union, other.Selector)
			result.warnings = append(result.warnings, Warnf(rules.SelectorsMayOverlap, labelsPath,
				"selects the same workloads as %s if a workload carries both label sets (%s); none with a sidecar proxy exists now",
				other.Key(), conflictFormatLabels(union)))
		}
	}
	return result
}

// conflictNamespaceWide applies the rules for a Sidecar without
// workloadSelector.
func conflictNamespaceWide(s *sidecar.Sidecar, others []clusterview.SidecarRef, view clusterview.View, judge *clusterview.ProxyJudge, ambient bool) conflictResult {
	var warnings Warnings
	if s.Name != "default" {
		warnings = append(warnings, Warnf(rules.NamespaceWideName, field.NewPath("metadata", "name"),
			"the Sidecar reference recommends naming the namespace-wide Sidecar (the one without workloadSelector) \"default\""))
	}
	selectorPath := field.NewPath("spec", "workloadSelector")
	var existing []string
	for _, other := range others {
		switch {
		case other.Selector == nil:
			existing = append(existing, other.Key())
		case len(other.Selector) == 0:
			warnings = append(warnings, Warnf(rules.HiddenByEmptySelector, selectorPath,
				"Sidecar %s has an empty workloadSelector, which istiod treats as selecting every workload in namespace %q and ranks before namespace-wide Sidecars, so this Sidecar applies to no workload there; remove that Sidecar's workloadSelector or give it labels",
				other.Key(), s.Namespace))
		}
	}
	proxied := 0
	if ambient {
		for _, w := range view.Workloads(s.Namespace) {
			if judge.ProxyOf(w).Kind == mesh.SidecarProxy {
				proxied++
			}
		}
		if proxied == 0 {
			warnings = append(warnings, conflictAmbientWarning(selectorPath, s.Namespace))
		}
	}
	if len(existing) == 0 {
		return conflictResult{warnings: warnings}
	}
	slices.Sort(existing)
	names := strings.Join(existing, ", ")
	if ambient && proxied == 0 {
		// istioctl analyze reports these as ineffective, not as conflicting:
		// no workload would get either.
		return conflictResult{warnings: append(warnings, Warnf(rules.SecondNamespaceWide, selectorPath,
			"namespace %q already has a Sidecar without workloadSelector: %s; that is allowed here only because no workload of this ambient namespace runs a sidecar proxy now", s.Namespace, names))}
	}
	result := conflictResult{warnings: warnings}
	result.add(rules.SecondNamespaceWide.On(field.Forbidden(selectorPath, fmt.Sprintf(
		"namespace %q already has a Sidecar without workloadSelector: %s; only one namespace-wide Sidecar is allowed per namespace (Istio's behaviour with two is undefined); add a workloadSelector or change %s instead",
		s.Namespace, names, names))), existing...)
	return result
}

// conflictAmbientWarning is istioctl analyze's IneffectivePolicy for a
// Sidecar in an ambient namespace.
func conflictAmbientWarning(path *field.Path, namespace string) Warning {
	return Warnf(rules.AmbientNamespace, path,
		"namespace %q is in ambient mode (%s=%s, no injection label): its workloads run without a sidecar proxy unless injected individually, and none selected here is, so this Sidecar has no effect (istioctl analyze: IneffectivePolicy)",
		namespace, mesh.LabelDataplaneMode, mesh.DataplaneModeAmbient)
}

// conflictSplitByProxy separates workloads that run a sidecar proxy from the
// others (with the reason they have none), keeping the order.
func conflictSplitByProxy(judge *clusterview.ProxyJudge, workloads []clusterview.Workload) (proxied []clusterview.Workload, without []conflictWithoutProxy) {
	for _, w := range workloads {
		p := judge.ProxyOf(w)
		if p.Kind == mesh.SidecarProxy {
			proxied = append(proxied, w)
			continue
		}
		without = append(without, conflictWithoutProxy{workload: w, proxy: p})
	}
	return proxied, without
}

type conflictWithoutProxy struct {
	workload clusterview.Workload
	proxy    mesh.Proxy
}

// conflictFormatWithoutProxy names up to conflictMaxNamedWorkloads workloads
// with what they run instead of a sidecar.
func conflictFormatWithoutProxy(without []conflictWithoutProxy) string {
	parts := make([]string, 0, conflictMaxNamedWorkloads)
	for i, w := range without {
		if i == conflictMaxNamedWorkloads {
			break
		}
		what := "not injected"
		switch {
		case w.proxy.Kind == mesh.GatewayProxy:
			what = "a gateway or waypoint, which istiod gives its default scope"
		case w.proxy.Ambient:
			what = "ambient mode"
		}
		parts = append(parts, w.workload.String()+": "+what)
	}
	out := strings.Join(parts, "; ")
	if rest := len(without) - conflictMaxNamedWorkloads; rest > 0 {
		out += fmt.Sprintf("; and %d more", rest)
	}
	return out
}

// conflictDescribeSelector describes another Sidecar's selector for a
// message.
func conflictDescribeSelector(other clusterview.SidecarRef) string {
	if len(other.Selector) == 0 {
		return "an empty workloadSelector, which istiod treats as selecting every workload in its namespace"
	}
	return "workloadSelector " + conflictFormatLabels(other.Selector)
}

// conflictFix says what to change.
func conflictFix(other clusterview.SidecarRef) string {
	if len(other.Selector) == 0 {
		return fmt.Sprintf("give %s a workloadSelector with labels, or remove its workloadSelector, first", other.Key())
	}
	return "change one of the selectors so that they select disjoint workloads"
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

// conflictSelected returns the workloads selector selects, in input order
// (an empty selector selects every workload, as istiod reads it).
func conflictSelected(selector map[string]string, workloads []clusterview.Workload) []clusterview.Workload {
	return conflictSelectedBy(labels.SelectorFromValidatedSet(selector), workloads)
}

// conflictSelectedBy returns the workloads sel selects, in input order.
func conflictSelectedBy(sel labels.Selector, workloads []clusterview.Workload) []clusterview.Workload {
	var out []clusterview.Workload
	for _, w := range workloads {
		if sel.Matches(labels.Set(w.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// conflictCompatible reports whether no key has different values in a and
// b, so one workload could carry both label sets.
func conflictCompatible(a, b map[string]string) bool {
	return !labels.Conflicts(a, b)
}

// conflictSubsetReason explains a selector overlap that holds by
// construction (at least one selector is a subset of the other), from the
// point of view of the Sidecar being admitted.
func conflictSubsetReason(other clusterview.SidecarRef, sSubset, otherSubset bool) string {
	switch {
	case sSubset && otherSubset:
		return "the two selectors are identical"
	case sSubset:
		return fmt.Sprintf("every workload selected by the narrower %s is also selected by this Sidecar", other.Key())
	default:
		return fmt.Sprintf("every workload selected by this (narrower) Sidecar is also selected by %s", other.Key())
	}
}

// conflictFormatLabels renders labels sorted by key: "app=ratings,version=v2".
func conflictFormatLabels(set map[string]string) string {
	return labels.Set(set).String()
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
