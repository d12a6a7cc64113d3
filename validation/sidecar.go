package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// ValidateSidecar checks one Sidecar on its own (no cluster state).
//
// It enforces the Sidecar reference (including the fields the reference marks
// required, where Istio is more lenient) and the per-object rules of Istio's
// own validation. Problems Istio admits with a warning are returned as
// Warnings, not errors.
func ValidateSidecar(s *sidecar.Sidecar) (field.ErrorList, Warnings) {
	specPath := field.NewPath("spec")
	if s == nil {
		return field.ErrorList{rules.SpecRequired.On(field.Required(specPath, "a Sidecar object is required"))}, nil
	}
	spec := &s.Spec
	if len(spec.GetIngress()) == 0 && len(spec.GetEgress()) == 0 &&
		spec.GetOutboundTrafficPolicy() == nil && spec.GetInboundConnectionPool() == nil {
		// Nothing else is worth reporting: the object configures nothing.
		return field.ErrorList{rules.EmptySpec.On(field.Required(specPath,
			"a Sidecar must configure at least one of ingress, egress, outboundTrafficPolicy, inboundConnectionPool"))}, nil
	}

	var errs field.ErrorList
	var warns Warnings
	errs = append(errs, validateWorkloadSelector(spec.GetWorkloadSelector(), specPath.Child("workloadSelector"))...)
	warns = append(warns, selectorSyntaxWarnings(spec.GetWorkloadSelector(), specPath.Child("workloadSelector"))...)
	warns = append(warns, selectorTopologyWarnings(spec.GetWorkloadSelector(), specPath.Child("workloadSelector"))...)

	e, w := validateIngressListeners(spec.GetIngress(), specPath.Child("ingress"))
	errs = append(errs, e...)
	warns = append(warns, w...)

	e, w = validateEgressListeners(spec.GetEgress(), s.Namespace, specPath.Child("egress"))
	errs = append(errs, e...)
	warns = append(warns, w...)

	errs = append(errs, validateConnectionPool(spec.GetInboundConnectionPool(), specPath.Child("inboundConnectionPool"))...)
	errs = append(errs, validateOutboundTrafficPolicy(spec.GetOutboundTrafficPolicy(), specPath.Child("outboundTrafficPolicy"))...)
	return errs, warns
}
