// Package validation holds the pure rules for Sidecars: the per-object rules of
// the Sidecar reference and Istio's own validation, and the cross-object rules
// evaluated against a read-only clusterview.View. Errors are field.ErrorList
// (each with a field path); warnings are kept apart, because Kubernetes shows
// them to the user without failing the request.
package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/rules"
)

// Warning is a problem worth telling the user about that does not deny the
// request. Path is nil for warnings about the object as a whole.
type Warning struct {
	// Rule is the ID of the rule that warns.
	Rule    rules.ID
	Path    *field.Path
	Message string
}

// String renders the warning as kubectl prints it, the rule's ID in front
// of the message: "spec.egress[0].hosts[1]: [SW0406] ...".
func (w Warning) String() string {
	msg := w.Message
	if w.Rule != "" {
		msg = "[" + string(w.Rule) + "] " + msg
	}
	if w.Path == nil || w.Path.String() == "" {
		return msg
	}
	return w.Path.String() + ": " + msg
}

// Warnings is an ordered list of warnings.
type Warnings []Warning

// Warnf builds a warning of rule for path.
func Warnf(rule rules.ID, path *field.Path, format string, args ...any) Warning {
	return Warning{Rule: rule, Path: path, Message: fmt.Sprintf(format, args...)}
}

// Strings renders each warning, in order.
func (ws Warnings) Strings() []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}
