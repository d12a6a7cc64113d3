// Package validation holds the pure rules for Sidecars: the per-object rules of
// the Sidecar reference and Istio's own validation, and the cross-object rules
// evaluated against a read-only clusterview.View. Errors are field.ErrorList
// (each with a field path); warnings are kept apart, because Kubernetes shows
// them to the user without failing the request.
package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Warning is a problem worth telling the user about that does not deny the
// request. Path is nil for warnings about the object as a whole.
type Warning struct {
	Path    *field.Path
	Message string
}

// String renders the warning as kubectl prints it: "spec.egress[0].hosts[1]: ...".
func (w Warning) String() string {
	if w.Path == nil || w.Path.String() == "" {
		return w.Message
	}
	return w.Path.String() + ": " + w.Message
}

// Warnings is an ordered list of warnings.
type Warnings []Warning

// Warnf builds a warning for path.
func Warnf(path *field.Path, format string, args ...any) Warning {
	return Warning{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Strings renders each warning, in order.
func (ws Warnings) Strings() []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}
