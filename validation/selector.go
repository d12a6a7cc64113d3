package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"maps"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const selectorWildcardDetail = "wildcards are not supported in workloadSelector labels"

// Limits the Sidecar CRD's schema puts on workloadSelector labels.
const (
	selectorMaxValueLength = 63
	selectorMaxLabels      = 256
)

// validateWorkloadSelector checks spec.workloadSelector. It denies what
// Istio (pkg/config/validation ValidateAlphaWorkloadSelector: empty keys,
// '*') or the CRD's schema (values of at most 63 characters, at most 256
// labels) rejects, and, following the reference, which requires labels, a
// selector without labels (Istio only warns, then applies the Sidecar to
// every workload of the namespace).
func validateWorkloadSelector(sel *networking.WorkloadSelector, path *field.Path) field.ErrorList {
	if sel == nil {
		return nil
	}
	labelsPath := path.Child("labels")
	labels := sel.GetLabels()
	if len(labels) == 0 {
		return field.ErrorList{rules.SelectorNoLabels.On(field.Required(labelsPath,
			"a workloadSelector needs at least one label; to apply the Sidecar to the whole namespace, remove workloadSelector"))}
	}
	var errs field.ErrorList
	if len(labels) > selectorMaxLabels {
		errs = append(errs, rules.SelectorLimits.On(field.TooMany(labelsPath, len(labels), selectorMaxLabels)))
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		kp := labelsPath.Key(k)
		switch {
		case k == "":
			errs = append(errs, rules.SelectorLabel.On(field.Invalid(kp, k, "a label key must not be empty")))
		case strings.Contains(k, "*"):
			errs = append(errs, rules.SelectorLabel.On(field.Invalid(kp, k, selectorWildcardDetail+"; the key must match the workload's label key exactly")))
		}
		switch {
		case strings.Contains(v, "*"):
			errs = append(errs, rules.SelectorLabel.On(field.Invalid(kp, v, selectorWildcardDetail+"; the value must match the workload's label value exactly")))
		case len(v) > selectorMaxValueLength:
			errs = append(errs, rules.SelectorLimits.On(field.TooLong(kp, v, selectorMaxValueLength)))
		}
	}
	return errs
}

// selectorSyntaxWarnings warns about selector labels no Pod or WorkloadEntry
// can carry (Kubernetes label syntax, which Istio checks for WorkloadEntry
// labels too, as metav1validation.ValidateLabels does): Istio admits them,
// and they select nothing.
func selectorSyntaxWarnings(sel *networking.WorkloadSelector, path *field.Path) Warnings {
	var out Warnings
	for _, k := range slices.Sorted(maps.Keys(sel.GetLabels())) {
		v := sel.GetLabels()[k]
		if k == "" || strings.Contains(k, "*") || strings.Contains(v, "*") || len(v) > selectorMaxValueLength {
			continue // errors
		}
		kp := path.Child("labels").Key(k)
		for _, e := range metav1validation.ValidateLabels(map[string]string{k: v}, kp) {
			out = append(out, Warnf(rules.SelectorNoMatch, kp, "no workload can carry the label %s=%s (%s), so this selector selects nothing", k, v, e.Detail))
		}
	}
	return out
}

// topologyLabels are the labels istiod adds to every workload's own before
// matching a workloadSelector (pilot/pkg/serviceregistry/util/label
// AugmentLabels): its cluster ID, the node's name, region, zone and
// subzone, and the network.
var topologyLabels = []string{
	"topology.istio.io/cluster", "kubernetes.io/hostname", "topology.kubernetes.io/region",
	"topology.kubernetes.io/zone", "topology.istio.io/subzone", "topology.istio.io/network",
}

// selectorTopologyWarnings warns about selector keys istiod fills in from
// where a workload runs: the pod's own labels, which this webhook compares,
// may lack them, so its conflict checks and pod annotations may not see what
// istiod selects.
func selectorTopologyWarnings(sel *networking.WorkloadSelector, path *field.Path) Warnings {
	var out Warnings
	for _, key := range topologyLabels {
		if _, ok := sel.GetLabels()[key]; ok {
			out = append(out, Warnf(rules.SelectorTopology, path.Child("labels").Key(key),
				"istiod adds %s to every workload from its cluster, node or network before matching; this webhook compares the workload's own labels, so its conflict checks and pod annotations may miss workloads this selects", key))
		}
	}
	return out
}
