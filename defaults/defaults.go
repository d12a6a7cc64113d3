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
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
)

// CaptureModeDefault is the value an absent captureMode stands for.
const CaptureModeDefault = "DEFAULT"

// Change records one field that defaulting set.
type Change struct {
	Path  string
	Value string
}

// Note explains a default deliberately not written.
type Note struct {
	Rule    rules.ID
	Path    string
	Message string
}

// Options are the cluster facts defaulting depends on.
type Options struct {
	// IPFamily is the family of the cluster's pods; empty means IPv4.
	IPFamily mesh.IPFamily
}

// Apply defaults the Sidecar object (its whole JSON form, as the API server
// sends it) in place and returns what it set, in field order, and notes on
// defaults it left out. Input that is not shaped like a Sidecar is left
// alone: validation reports it.
func Apply(obj map[string]any, opts Options) (changes []Change, notes []Note) {
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return nil, nil
	}
	if egress, ok := spec["egress"].([]any); ok {
		for i, item := range egress {
			listener, ok := item.(map[string]any)
			if !ok {
				continue
			}
			path := "spec.egress[" + strconv.Itoa(i) + "]"
			changes = append(changes, defaultCaptureMode(listener, path)...)
			// With captureMode NONE and no bind, istiod binds the pod's
			// loopback addresses (listener.go buildSidecarOutboundListeners,
			// localHosts): 127.0.0.1 on IPv4, ::1 on IPv6, both on dual
			// stack, where writing one would drop the other. Only with a
			// port: a bind needs a port, and a port-less listener is
			// inferred from its hosts.
			if listener["captureMode"] == "NONE" && isAbsent(listener, "bind") && !isAbsent(listener, "port") {
				if loopback := opts.IPFamily.LoopbackAddresses(); len(loopback) == 1 {
					listener["bind"] = loopback[0]
					changes = append(changes, Change{Path: path + ".bind", Value: loopback[0]})
				} else {
					notes = append(notes, Note{Rule: rules.DualStackBind, Path: path + ".bind", Message: "left empty: on this dual-stack cluster the proxy binds a captureMode NONE listener to both loopback addresses (" +
						strings.Join(loopback, " and ") + "); writing one bind would drop the other"})
				}
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
	return changes, notes
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
