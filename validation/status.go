package validation

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// MaxReportedErrors caps the causes in one denial: a Sidecar with thousands
// of broken hosts should get a readable answer, not a megabyte.
const MaxReportedErrors = 25

// DenialStatus is the one error contract of this project: 422 Invalid with a
// cause per field, exactly the shape of the API server's own validation
// errors, so kubectl prints `Sidecar.networking.istio.io "x" is invalid:
// spec...: ...` and apierrors.IsInvalid holds for clients such as GitOps
// tools. The offline checker prints the same message.
func DenialStatus(name string, errs field.ErrorList) metav1.Status {
	shown := errs
	if len(errs) > MaxReportedErrors {
		shown = append(field.ErrorList{}, errs[:MaxReportedErrors]...)
		shown = append(shown, field.Forbidden(nil, fmt.Sprintf("and %d more errors not shown", len(errs)-MaxReportedErrors)))
	}
	return apierrors.NewInvalid(schema.GroupKind{Group: sidecar.Group, Kind: sidecar.Kind}, name, shown).ErrStatus
}
