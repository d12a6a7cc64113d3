package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Ratcheting, after Kubernetes' KEP-4008: an UPDATE is not denied for a
// problem the stored object already had and the update leaves as it was.
// Clusters hold Sidecars that Istio accepted before this webhook existed (or
// while it warned); without ratcheting, relabelling one, or a GitOps tool
// adding its tracking label, would be refused for a field nobody touched.
//
// Per-object rules: an error of the new object pre-dates the update when the
// old object's own errors (the same ValidateSidecar) include one with
//   - the same field path (indices included: a listener that moves is judged
//     anew),
//   - the same type and detail (so the same rule, for the same reason: a port
//     that is still a duplicate but of another listener is a new reason),
//
// and the value at that path is the same in both objects (which makes the
// bad value the same too). Values are
// compared in the typed spec's JSON form, where an absent field and its proto
// default are alike, so the mutating webhook writing `captureMode: DEFAULT`
// into an old object changes nothing here. A field whose value changed is
// always judged as new, even when the error reads the same (a forbidden
// `subjectAltNames` edited to other names).
//
// Conflicts: an UPDATE that keeps its workloadSelector (sidecar.SameSelector)
// cannot start a conflict, so any conflict it has pre-dates it.
//
// Shape errors (sidecar.Decode) are found before any rule runs and are never
// ratcheted; neither is anything on CREATE.

// ratchetObjectErrors splits errs, the per-object errors of s, an UPDATE of
// old, into those that deny and those that pre-date the update (returned as
// warnings).
func ratchetObjectErrors(errs field.ErrorList, s, old *sidecar.Sidecar) (field.ErrorList, Warnings) {
	if old == nil || len(errs) == 0 {
		return errs, nil
	}
	oldErrs, _ := ValidateSidecar(old)
	if len(oldErrs) == 0 {
		return errs, nil
	}
	newSpec, newOK := specValue(s)
	oldSpec, oldOK := specValue(old)
	if !newOK || !oldOK {
		return errs, nil
	}
	var kept field.ErrorList
	var warnings Warnings
	for _, e := range errs {
		if hasSameError(oldErrs, e) && sameValueAt(oldSpec, newSpec, e.Field) {
			warnings = append(warnings, predatesWarning(e,
				"the stored Sidecar already has it, so it is admitted; a change to this field must fix it"))
			continue
		}
		kept = append(kept, e)
	}
	return kept, warnings
}

// ratchetConflicts turns the conflict errors of an UPDATE that keeps its
// workloadSelector into warnings: such an update cannot start a conflict.
// The audit keeps reporting the conflict until one of the Sidecars changes.
func ratchetConflicts(errs field.ErrorList, s, old *sidecar.Sidecar) (field.ErrorList, Warnings) {
	if old == nil || len(errs) == 0 || !sidecar.SameSelector(old, s) {
		return errs, nil
	}
	warnings := make(Warnings, 0, len(errs))
	for _, e := range errs {
		warnings = append(warnings, predatesWarning(e,
			"this update keeps the workloadSelector, so it does not start this conflict and is admitted; the audit keeps reporting it until it is fixed"))
	}
	return nil, warnings
}

// predatesWarning reports a ratcheted error at its own field, with the
// rule's text, which says what is allowed.
func predatesWarning(e *field.Error, why string) Warning {
	return Warning{Rule: rules.Of(e), Path: field.NewPath(e.Field), Message: "pre-dates this change (" + why + "); fix: " + e.ErrorBody()}
}

func hasSameError(list field.ErrorList, e *field.Error) bool {
	for _, o := range list {
		if o.Field == e.Field && o.Type == e.Type && o.Detail == e.Detail {
			return true
		}
	}
	return false
}

// specValue is the object as {"spec": <the typed spec as JSON>}, the form
// sameValueAt walks. Field paths of per-object errors start at "spec".
func specValue(s *sidecar.Sidecar) (map[string]any, bool) {
	raw, err := protojson.Marshal(&s.Spec)
	if err != nil {
		return nil, false
	}
	var spec any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, false
	}
	return map[string]any{"spec": spec}, true
}

// sameValueAt reports whether the value at path (as field.Path prints it:
// spec.egress[0].port, spec.workloadSelector.labels[app]) is the same in both
// objects; absent in both counts as the same.
func sameValueAt(a, b map[string]any, path string) bool {
	av, aOK := valueAt(a, path)
	bv, bOK := valueAt(b, path)
	return aOK == bOK && reflect.DeepEqual(av, bv)
}

// valueAt walks a JSON value along a field path. Brackets hold a list index
// or a map key (label keys contain dots and slashes, never brackets).
func valueAt(root any, path string) (any, bool) {
	cur := root
	for path != "" {
		var key string
		bracket := path[0] == '['
		if bracket {
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return nil, false
			}
			key, path = path[1:end], path[end+1:]
		} else {
			path = strings.TrimPrefix(path, ".")
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			key, path = path[:end], path[end:]
		}
		switch node := cur.(type) {
		case map[string]any:
			v, ok := node[key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(key)
			if !bracket || err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
