// Package defaults fills in what the Sidecar reference says the proxy assumes
// when a field is absent, so that `kubectl get -o yaml` shows the effective
// values. Defaulting only ever adds an absent field: a value the user wrote is
// never rewritten, so GitOps tools see no drift between what they applied and
// what the cluster stores.
//
// It works on the object's JSON form (map[string]any) rather than the typed
// protobuf spec on purpose: captureMode is a proto3 enum whose zero value is
// DEFAULT, so in the typed form "absent" and "DEFAULT" cannot be told apart,
// and a typed round trip would also re-spell fields the user wrote.
package defaults

import (
	"strconv"
)

// LoopbackBind is the bind address the reference gives an egress listener
// whose captureMode is NONE.
const LoopbackBind = "127.0.0.1"

// CaptureModeDefault is the value an absent captureMode stands for.
const CaptureModeDefault = "DEFAULT"

// Change records one field that defaulting set.
type Change struct {
	Path  string
	Value string
}

// Apply defaults the Sidecar object (its whole JSON form, as the API server
// sends it) in place and returns what it set, in field order. Input that is
// not shaped like a Sidecar is left alone: validation reports it.
func Apply(obj map[string]any) []Change {
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return nil
	}
	var changes []Change
	if egress, ok := spec["egress"].([]any); ok {
		for i, item := range egress {
			listener, ok := item.(map[string]any)
			if !ok {
				continue
			}
			path := "spec.egress[" + strconv.Itoa(i) + "]"
			changes = append(changes, defaultCaptureMode(listener, path)...)
			// The reference: "If captureMode is NONE, bind will default to
			// 127.0.0.1." Only with a port: a bind needs a port, and a
			// port-less listener is inferred from its hosts.
			if listener["captureMode"] == "NONE" && isAbsent(listener, "bind") && !isAbsent(listener, "port") {
				listener["bind"] = LoopbackBind
				changes = append(changes, Change{Path: path + ".bind", Value: LoopbackBind})
			}
		}
	}
	if ingress, ok := spec["ingress"].([]any); ok {
		for i, item := range ingress {
			listener, ok := item.(map[string]any)
			if !ok {
				continue
			}
			changes = append(changes, defaultCaptureMode(listener, "spec.ingress["+strconv.Itoa(i)+"]")...)
		}
	}
	return changes
}

func defaultCaptureMode(listener map[string]any, path string) []Change {
	// Only a missing or null captureMode is absent; any string the user
	// wrote, even an invalid one, is theirs and validation judges it.
	if v, ok := listener["captureMode"]; ok && v != nil {
		return nil
	}
	listener["captureMode"] = CaptureModeDefault
	return []Change{{Path: path + ".captureMode", Value: CaptureModeDefault}}
}

// isAbsent treats a missing key, null and the empty string alike: the API
// server and protobuf both read them as "not set".
func isAbsent(m map[string]any, key string) bool {
	v, ok := m[key]
	if !ok || v == nil {
		return true
	}
	s, isString := v.(string)
	return isString && s == ""
}
