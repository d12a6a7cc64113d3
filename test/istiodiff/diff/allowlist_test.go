package diff

import (
	"fmt"
	"regexp"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
)

// The allow-list: the only Sidecars the project may deny while Istio's
// validation admits them. Each entry is a rule of the project's README rule
// table where the Sidecar reference is stricter than Istio ("reference,
// stricter") and the project follows the reference. A denial is allowed only
// when every one of the project's errors is one of these.
//
// Nothing may be allowed the other way: a Sidecar Istio rejects must never
// be admitted.
const (
	allowSelectorWithoutLabels = "README rule \"workloadSelector present ⇒ labels present (Istio only warns)\" — reference, stricter"
	allowDefaultEndpointNeeded = "README rule \"Ingress defaultEndpoint required (Istio allows it empty)\" — reference, stricter"
	allowEgressBindNeedsPort   = "README rule \"Egress bind requires a port (Istio does not check)\" — reference, stricter"
	allowDefaultEndpointForm   = "README rule \"defaultEndpoint is 127.0.0.1:PORT, [::1]:PORT, 0.0.0.0:PORT, [::]:PORT, unix:///abs/path or unix://@name (Istio also takes :PORT)\" — the reference lists only these forms"
	allowKnownEnumValues       = "README rule \"captureMode, TLS mode, protocol versions, outbound mode, h2UpgradePolicy are known values\" — this project (Istio's CRD schema enums reject them too)"
	allowSelectorCRDLimits     = "docs/rules.md rule \"label values at most 63 characters, at most 256 labels\" — Istio's CRD schema (the API server refuses them before any webhook)"
)

// enumFields are the enum fields the project requires to hold a named value.
var enumFields = regexp.MustCompile(`(^|\.)(captureMode|mode|minProtocolVersion|maxProtocolVersion|h2UpgradePolicy)$`)

// isNumber reports whether a field error's bad value is a bare number: an
// enum value written as a number because it has no name.
func isNumber(v any) bool {
	s := fmt.Sprint(v)
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var ingressIndexed = regexp.MustCompile(`^spec\.ingress\[(\d+)\]\.defaultEndpoint$`)
var egressPortPath = regexp.MustCompile(`^spec\.egress\[(\d+)\]\.port$`)
var egressBindOrCapture = regexp.MustCompile(`^spec\.egress\[(\d+)\]\.(bind|captureMode)$`)

// istioRejectsWithPort reports whether Istio rejects a port-less egress
// listener's bind and captureMode once it has a port: 0 for a unix://
// bind, another number otherwise.
func istioRejectsWithPort(l *networking.IstioEgressListener) bool {
	number := uint32(15999)
	if isUnix(l.GetBind()) {
		number = 0
	}
	withPort := &networking.Sidecar{Egress: []*networking.IstioEgressListener{{
		Port: &networking.SidecarPort{Number: number, Protocol: "TCP"}, Bind: l.GetBind(), CaptureMode: l.GetCaptureMode(), Hosts: []string{"*/*"},
	}}}
	_, err := oracle.ValidateSidecar("prod", "s", withPort)
	return err != ""
}

// referenceEndpoint matches the defaultEndpoint forms the reference lists
// with an IP (the port range is the project's own check, shared with
// Istio).
var referenceEndpoint = regexp.MustCompile(`^(127\.0\.0\.1|\[::1\]|0\.0\.0\.0|\[::\]):[0-9]{1,5}$`)

// allowedDenial returns the allow-list reason that explains one of the
// project's errors on a Sidecar Istio admits, or "".
func allowedDenial(spec *networking.Sidecar, e *field.Error) string {
	switch {
	case e.Type == field.ErrorTypeNotSupported && enumFields.MatchString(e.Field) && isNumber(e.BadValue):
		return allowKnownEnumValues
	case strings.HasPrefix(e.Field, "spec.workloadSelector.labels") && (e.Type == field.ErrorTypeTooLong || e.Type == field.ErrorTypeTooMany):
		return allowSelectorCRDLimits
	case e.Field == "spec.workloadSelector.labels" && e.Type == field.ErrorTypeRequired:
		if spec.GetWorkloadSelector() != nil && len(spec.GetWorkloadSelector().GetLabels()) == 0 {
			return allowSelectorWithoutLabels
		}
	case ingressIndexed.MatchString(e.Field):
		i := atoi(ingressIndexed.FindStringSubmatch(e.Field)[1])
		if i >= len(spec.GetIngress()) || spec.GetIngress()[i] == nil {
			return ""
		}
		ep := spec.GetIngress()[i].GetDefaultEndpoint()
		switch {
		case e.Type == field.ErrorTypeRequired && ep == "":
			return allowDefaultEndpointNeeded
		case e.Type == field.ErrorTypeInvalid && ep != "" && !referenceEndpoint.MatchString(ep) && !isUnix(ep):
			// Istio's own check splits HOST:PORT; the reference lists the
			// forms above. An endpoint of a listed form the project denies
			// is not explained by this rule.
			return allowDefaultEndpointForm
		}
	case egressPortPath.MatchString(e.Field) && e.Type == field.ErrorTypeRequired:
		i := atoi(egressPortPath.FindStringSubmatch(e.Field)[1])
		if i < len(spec.GetEgress()) && spec.GetEgress()[i] != nil && spec.GetEgress()[i].GetPort() == nil && spec.GetEgress()[i].GetBind() != "" {
			return allowEgressBindNeedsPort
		}
	case egressBindOrCapture.MatchString(e.Field):
		// Istio checks an egress listener's bind and captureMode only when
		// it has a port. On a port-less listener with a bind (which the
		// project denies for the missing port, above) the project judges
		// them as on any listener; that is explained by the same rule only
		// if Istio itself rejects the same bind and captureMode once the
		// listener has the port the reference requires.
		i := atoi(egressBindOrCapture.FindStringSubmatch(e.Field)[1])
		if i < len(spec.GetEgress()) && spec.GetEgress()[i] != nil && spec.GetEgress()[i].GetPort() == nil && spec.GetEgress()[i].GetBind() != "" &&
			istioRejectsWithPort(spec.GetEgress()[i]) {
			return allowEgressBindNeedsPort
		}
	}
	return ""
}

func isUnix(s string) bool { return len(s) >= 7 && s[:7] == "unix://" }

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
