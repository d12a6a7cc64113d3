package validation

import (
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const selectorWildcardDetail = "wildcards are not supported in workloadSelector labels"

// validateWorkloadSelector checks spec.workloadSelector. An empty selector is
// an error here (the reference marks labels required); Istio only warns and
// then applies the Sidecar to every workload in the namespace.
func validateWorkloadSelector(sel *networking.WorkloadSelector, path *field.Path) field.ErrorList {
	if sel == nil {
		return nil
	}
	labelsPath := path.Child("labels")
	labels := sel.GetLabels()
	if len(labels) == 0 {
		return field.ErrorList{field.Required(labelsPath,
			"a workloadSelector needs at least one label; to apply the Sidecar to the whole namespace, remove workloadSelector")}
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var errs field.ErrorList
	for _, k := range keys {
		v := labels[k]
		kp := labelsPath.Key(k)
		if strings.Contains(k, "*") {
			errs = append(errs, field.Invalid(kp, k, selectorWildcardDetail+"; the key must match the workload's label key exactly"))
		} else {
			if msgs := utilvalidation.IsQualifiedName(k); len(msgs) > 0 {
				errs = append(errs, field.Invalid(kp, k, "invalid label key: "+strings.Join(msgs, "; ")))
			}
		}
		if strings.Contains(v, "*") {
			errs = append(errs, field.Invalid(kp, v, selectorWildcardDetail+"; the value must match the workload's label value exactly"))
		} else {
			if msgs := utilvalidation.IsValidLabelValue(v); len(msgs) > 0 {
				errs = append(errs, field.Invalid(kp, v, "invalid label value: "+strings.Join(msgs, "; ")))
			}
		}
	}
	return errs
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
			out = append(out, Warnf(path.Child("labels").Key(key),
				"istiod adds %s to every workload from its cluster, node or network before matching; this webhook compares the workload's own labels, so its conflict checks and pod annotations may miss workloads this selects", key))
		}
	}
	return out
}
