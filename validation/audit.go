package validation

import (
	"slices"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Finding is one existing Sidecar that breaks a uniqueness rule (Errors)
// or, from AuditReport, has no effect (Warnings).
type Finding struct {
	Namespace string
	Name      string
	Errors    field.ErrorList
	// Others[i] lists the other Sidecars (namespace/name) Errors[i] is
	// about.
	Others [][]string
	// Warnings are those of AuditWarningRules (AuditReport only).
	Warnings Warnings
}

// AuditWarningRules are the warnings AuditReport reports besides
// conflicts: Sidecars that select nothing, or nothing that runs a sidecar
// proxy, so that they have no effect.
var AuditWarningRules = []rules.ID{rules.SelectsNothing, rules.NoSidecarProxy, rules.AmbientNamespace}

// Audit finds the conflicts among Sidecars that already exist: those that
// predate the webhook, pods relabelled later, or a pair that raced past two
// replicas. Each Sidecar of a conflicting pair gets its own finding naming
// the other. Findings are ordered by namespace, then name.
func Audit(view clusterview.View) []Finding {
	return audit(view, false)
}

// AuditReport is Audit plus the warnings of AuditWarningRules: a Sidecar
// with only such warnings is a finding too.
func AuditReport(view clusterview.View) []Finding {
	return audit(view, true)
}

func audit(view clusterview.View, withWarnings bool) []Finding {
	var findings []Finding
	for _, ns := range view.Namespaces() {
		for _, ref := range view.Sidecars(ns) {
			r := checkConflicts(sidecarFromRef(ref), view)
			f := Finding{Namespace: ref.Namespace, Name: ref.Name, Errors: r.errs}
			if len(r.errs) > 0 {
				f.Others = r.others
			}
			if withWarnings {
				for _, w := range r.warnings {
					if slices.Contains(AuditWarningRules, w.Rule) {
						f.Warnings = append(f.Warnings, w)
					}
				}
			}
			if len(f.Errors) > 0 || len(f.Warnings) > 0 {
				findings = append(findings, f)
			}
		}
	}
	return findings
}

// sidecarFromRef rebuilds the part of a Sidecar the conflict rules read.
func sidecarFromRef(ref clusterview.SidecarRef) *sidecar.Sidecar {
	s := &sidecar.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, CreationTimestamp: metav1.NewTime(ref.Created)}}
	if ref.Selector != nil {
		s.Spec.WorkloadSelector = &networkingv1alpha3.WorkloadSelector{Labels: ref.Selector}
	}
	return s
}

// Preflight judges a Sidecar that is already stored as if it were created
// today, in deny mode: what `check --cluster` reports before enforcement is
// turned on. Unlike Decide it runs the conflict rules even when the
// per-object rules fail, so an admin gets every reason in one list rather
// than the next one after each fix. view holds the Sidecar itself, which the
// conflict rules skip by namespace/name, so it is judged against the cluster
// minus itself.
func Preflight(s *sidecar.Sidecar, view clusterview.View) Result {
	errs, warnings := ValidateSidecar(s)
	conflictErrs, conflictWarnings := ValidateConflicts(s, view)
	errs = append(errs, conflictErrs...)
	warnings = append(warnings, conflictWarnings...)
	warnings = append(warnings, ClusterWarnings(s, view)...)
	return Result{Errors: errs, Warnings: warnings}
}
