package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Enforcement says what happens to a Sidecar that breaks a rule.
type Enforcement string

const (
	// EnforcementDeny rejects it (the default).
	EnforcementDeny Enforcement = "deny"
	// EnforcementWarn admits it and reports each broken rule as a warning:
	// the gradual-rollout mode.
	EnforcementWarn Enforcement = "warn"
)

// NamespaceEnforcementLabel lets a namespace opt into warn mode, honoured only
// when Options.AllowNamespaceOverride is set.
const NamespaceEnforcementLabel = "sidecar-webhook.io/enforcement"

// Options are the decisions the caller makes once (from flags) and passes in.
type Options struct {
	Enforcement Enforcement
	// AllowNamespaceOverride honours NamespaceEnforcementLabel=warn on the
	// Sidecar's namespace. Off by default so that editing a namespace never
	// silently exempts it.
	AllowNamespaceOverride bool
}

// Result is the decision on one Sidecar.
type Result struct {
	// Errors are the reasons for denial; empty means admitted.
	Errors   field.ErrorList
	Warnings Warnings
}

// Allowed reports whether the Sidecar is admitted.
func (r Result) Allowed() bool { return len(r.Errors) == 0 }

// Decide runs every rule on a Sidecar being created or updated: its own
// validity, then (when view is not nil) its conflicts with the cluster and the
// warnings that read cluster state. The webhook and the offline checker both
// call it, so they cannot disagree.
//
// old is the stored object on UPDATE and nil on CREATE (or when the stored
// object cannot be read). On UPDATE, errors that pre-date the change are
// ratcheted into warnings (see ratchet.go for what "pre-date" means exactly),
// in every enforcement mode; what is left is decided as on CREATE.
func Decide(s, old *sidecar.Sidecar, view clusterview.View, opts Options) Result {
	errs, warnings := ValidateSidecar(s)
	errs, ratcheted := ratchetObjectErrors(errs, s, old)
	warnings = append(warnings, ratcheted...)
	// Conflicts are only meaningful for a Sidecar that is itself valid (an
	// empty selector, say, would otherwise be reported twice). One whose only
	// errors pre-date this update is valid enough: its conflicts are judged
	// (and, with a kept selector, ratcheted) like anyone else's.
	if len(errs) == 0 && view != nil {
		conflictErrs, conflictWarnings := ValidateConflicts(s, view)
		conflictErrs, ratcheted = ratchetConflicts(conflictErrs, s, old)
		errs = append(errs, conflictErrs...)
		warnings = append(warnings, ratcheted...)
		warnings = append(warnings, conflictWarnings...)
		warnings = append(warnings, ClusterWarnings(s, view)...)
	}
	if len(errs) > 0 && enforcementFor(s.Namespace, view, opts) == EnforcementWarn {
		for _, e := range errs {
			warnings = append(warnings, Warning{Rule: rules.Of(e), Message: "would be denied (enforcement=warn): " + e.Error()})
		}
		errs = nil
	}
	return Result{Errors: errs, Warnings: warnings}
}

func enforcementFor(namespace string, view clusterview.View, opts Options) Enforcement {
	if opts.Enforcement == EnforcementWarn {
		return EnforcementWarn
	}
	if opts.AllowNamespaceOverride && view != nil &&
		view.NamespaceLabels(namespace)[NamespaceEnforcementLabel] == string(EnforcementWarn) {
		return EnforcementWarn
	}
	return EnforcementDeny
}
