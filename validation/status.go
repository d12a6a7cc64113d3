package validation

import (
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// MaxReportedErrors caps the causes in one denial: a Sidecar with thousands
// of broken hosts should get a readable answer, not a megabyte.
const MaxReportedErrors = 25

// DenialStatus is the one error contract of this project: HTTP 422, reason
// Invalid (apierrors.IsInvalid holds, and GitOps tools do not retry it as
// they would a 409 Conflict), with every field error in the message:
// `Sidecar.networking.istio.io "x" is invalid: [spec.a: ..., spec.b: ...]`.
// The offline checker prints the same message.
//
// Details (and so the structured causes) are left out on purpose: when a 422
// carries details, kubectl prints only "The Sidecar "x" is invalid" plus the
// causes and drops the message, and with it the API server's prefix
// `admission webhook "validate.sidecars.sidecar-webhook.io" denied the
// request`. Without details kubectl prints the whole message, so an admin
// sees which webhook denied the request, which field, and why.
func DenialStatus(name string, errs field.ErrorList) metav1.Status {
	shown := errs
	if len(errs) > MaxReportedErrors {
		shown = errs[:MaxReportedErrors]
	}
	// Each rule's ID goes in front of its detail: `spec.egress[0].port:
	// Required value: [SW0301] ...`.
	shown = rules.WithIDs(shown)
	status := apierrors.NewInvalid(schema.GroupKind{Group: sidecar.Group, Kind: sidecar.Kind}, name, shown).ErrStatus
	status.Details = nil
	if len(errs) > 1 {
		// apimachinery joins several errors as "[a, b]" on one line; each
		// detail has commas of its own, so one error per line reads better
		// in a terminal and in a GitOps tool's sync log.
		var b strings.Builder
		fmt.Fprintf(&b, "%s.%s %q is invalid (%d errors):", sidecar.Kind, sidecar.Group, name, len(errs))
		for _, e := range shown {
			b.WriteString("\n- ")
			b.WriteString(e.Error())
		}
		if len(errs) > len(shown) {
			fmt.Fprintf(&b, "\n- and %d more errors not shown", len(errs)-len(shown))
		}
		status.Message = b.String()
	}
	return status
}
