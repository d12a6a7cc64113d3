package diff

import (
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// sidecarJSON is the Sidecar object as the API server sends it to the
// webhooks: apiVersion, kind, metadata and the spec in its JSON form
// (protojson, the form Istio's CRD documents). A nil entry of
// spec.ingress or spec.egress is written as null.
func sidecarJSON(namespace, name string, spec *networking.Sidecar) ([]byte, error) {
	specMap := map[string]any{}
	if spec != nil {
		// protojson cannot marshal nil list entries; marshal a copy
		// without them and put the nulls back by index.
		trimmed := &networking.Sidecar{}
		tm := trimmed.ProtoReflect()
		spec.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if name := fd.Name(); name != "ingress" && name != "egress" {
				tm.Set(fd, v)
			}
			return true
		})
		for _, l := range spec.Ingress {
			if l != nil {
				trimmed.Ingress = append(trimmed.Ingress, l)
			}
		}
		for _, l := range spec.Egress {
			if l != nil {
				trimmed.Egress = append(trimmed.Egress, l)
			}
		}
		b, err := protojson.Marshal(trimmed)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &specMap); err != nil {
			return nil, err
		}
		restoreNulls(specMap, "ingress", len(spec.Ingress), func(i int) bool { return spec.Ingress[i] == nil })
		restoreNulls(specMap, "egress", len(spec.Egress), func(i int) bool { return spec.Egress[i] == nil })
	}
	return json.Marshal(map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Sidecar",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       specMap,
	})
}

func restoreNulls(spec map[string]any, key string, n int, isNil func(int) bool) {
	if n == 0 {
		return
	}
	kept, _ := spec[key].([]any)
	out := make([]any, 0, n)
	for i := 0; i < n; i++ {
		if isNil(i) {
			out = append(out, nil)
			continue
		}
		out = append(out, kept[0])
		kept = kept[1:]
	}
	spec[key] = out
}

// admission is the project's decision on one Sidecar CREATE.
type admission struct {
	// stage is where it was denied: "decode", "decode after defaulting" or
	// "validation"; "" when admitted.
	stage    string
	errs     field.ErrorList
	warnings []string
	// defaulted is the object as the validating webhook sees it.
	defaulted []byte
}

func (a admission) admitted() bool { return a.stage == "" }

func (a admission) String() string {
	if a.admitted() {
		if len(a.warnings) > 0 {
			return "admitted, warnings: " + strings.Join(a.warnings, " | ")
		}
		return "admitted"
	}
	parts := make([]string, 0, len(a.errs))
	for _, e := range a.errs {
		parts = append(parts, e.Error())
	}
	return "denied at " + a.stage + ": " + strings.Join(parts, " | ")
}

// projectAdmission runs the project's admission path on the JSON of a
// Sidecar: sidecar.Decode (shape), defaults.Apply with the webhook's
// default options (the mutating webhook), sidecar.Decode of the defaulted
// object, then validation.ValidateSidecar, the per-object rules of the
// validating webhook.
func projectAdmission(raw []byte) admission {
	if _, errs := sidecar.Decode(raw); len(errs) > 0 {
		return admission{stage: "decode", errs: errs}
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return admission{stage: "decode", errs: field.ErrorList{field.InternalError(nil, err)}}
	}
	defaults.Apply(generic, defaults.Options{})
	defaulted, err := json.Marshal(generic)
	if err != nil {
		return admission{stage: "decode after defaulting", errs: field.ErrorList{field.InternalError(nil, err)}}
	}
	obj, errs := sidecar.Decode(defaulted)
	if len(errs) > 0 {
		return admission{stage: "decode after defaulting", errs: errs, defaulted: defaulted}
	}
	verrs, warns := validation.ValidateSidecar(obj)
	a := admission{errs: verrs, warnings: warns.Strings(), defaulted: defaulted}
	if len(verrs) > 0 {
		a.stage = "validation"
	}
	return a
}

// compactJSON prints a spec for a disagreement report.
func compactJSON(raw []byte) string {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return string(raw)
	}
	b, _ := json.Marshal(obj["spec"])
	return string(b)
}

// istioAdmits reports Istio's ValidateSidecar decision as a string for
// reports, and whether it admits.
func istioDecision(namespace, name string, spec *networking.Sidecar) (admits bool, text string) {
	warning, err := oracle.ValidateSidecar(namespace, name, spec)
	switch {
	case err != "":
		return false, "rejects: " + err
	case warning != "":
		return true, "admits, warning: " + warning
	}
	return true, "admits"
}

// validationVerdict compares the two decisions on one Sidecar. It returns
// "" when they agree, the allow-list reason when the difference is a
// documented one, or the disagreement kind.
func validationVerdict(spec *networking.Sidecar, istioAdmits bool, ours admission) (agree bool, allowed []string, kind string) {
	switch {
	case istioAdmits == ours.admitted():
		return true, nil, ""
	case !istioAdmits:
		kind := "Istio rejects, the project admits"
		if usesHTTP2KeepAlive(spec) {
			kind += " [known: http2KeepAlive]"
		}
		return false, nil, kind
	}
	// Istio admits, the project denies: every error must come from a rule
	// of the allow-list.
	reasons := map[string]bool{}
	for _, e := range ours.errs {
		reason := allowedDenial(spec, e)
		if reason == "" {
			kind := "Istio admits, the project denies: " + errorRule(e)
			if known := knownFinding(e); known != "" {
				kind += " [known: " + known + "]"
			} else {
				kind += " [NEW]"
			}
			return false, nil, kind
		}
		reasons[reason] = true
	}
	return false, sortedKeys(reasons), ""
}

// errorRule names the kind of a project error for grouping: its field path
// with indices and map keys elided, and its type.
func errorRule(e *field.Error) string {
	return fmt.Sprintf("%s (%s)", elideIndices(e.Field), e.Type)
}

func elideIndices(path string) string {
	var b strings.Builder
	skip := false
	for _, c := range path {
		switch {
		case c == '[':
			skip = true
			b.WriteString("[]")
		case c == ']':
			skip = false
		case !skip:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// knownFinding names the finding of findings_test.go a project error on a
// Sidecar Istio admits belongs to, or "".
func knownFinding(e *field.Error) string {
	value := fmt.Sprint(e.BadValue)
	switch {
	case (strings.HasSuffix(e.Field, ".bind") || strings.HasSuffix(e.Field, ".defaultEndpoint")) && value == "unix://@":
		return "unix abstract socket with an empty name"
	case strings.HasSuffix(e.Field, ".bind") && !strings.HasPrefix(value, "unix://"):
		return "bind IP forms"
	case strings.HasSuffix(e.Field, ".port.name"):
		return "port name in upper case"
	case strings.HasSuffix(e.Field, ".tcp.idleTimeout"):
		return "tcp idleTimeout below one millisecond"
	case e.Field == "spec.outboundTrafficPolicy.egressProxy.subset":
		return "egressProxy subset in upper case"
	case strings.HasPrefix(e.Field, "spec.workloadSelector.labels["):
		return "workloadSelector label syntax"
	}
	return ""
}

func usesHTTP2KeepAlive(spec *networking.Sidecar) bool {
	if spec.GetInboundConnectionPool().GetHttp().GetHttp2KeepAlive() != nil {
		return true
	}
	for _, l := range spec.GetIngress() {
		if l.GetConnectionPool().GetHttp().GetHttp2KeepAlive() != nil {
			return true
		}
	}
	return false
}
