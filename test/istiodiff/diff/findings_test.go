package diff

import (
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
)

// validationFinding is the smallest reproduction of one disagreement the
// generated comparison found between the project's admission path and
// Istio's ValidateSidecar. Each stays a failing test until the project
// agrees with Istio (or the difference is documented and allow-listed).
type validationFinding struct {
	name string
	// istio is how Istio's code decides, and where (read in
	// istio.io/istio@v0.0.0-20260827124520-eed52ebb66ad).
	istio string
	// project is where the project decides otherwise.
	project string
	// istioAdmits is Istio's decision on spec.
	istioAdmits bool
	spec        *networking.Sidecar
}

func egressOnly() []*networking.IstioEgressListener {
	return []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}}
}

func ingressWith(mod func(*networking.IstioIngressListener)) *networking.Sidecar {
	l := &networking.IstioIngressListener{Port: &networking.SidecarPort{Number: 8080, Protocol: "HTTP", Name: "http"}, DefaultEndpoint: "127.0.0.1:8080"}
	mod(l)
	return &networking.Sidecar{Ingress: []*networking.IstioIngressListener{l}}
}

var validationFindings = []validationFinding{
	{
		name:        "http2KeepAlive without interval and timeout",
		istio:       "pkg/config/validation/validation.go validateConnectionPool: http2KeepAlive needs interval and timeout, each a duration of whole milliseconds >= 1ms",
		project:     "validation/connection_pool.go never reads HTTPSettings.Http2KeepAlive (the CRD schema checks only that a duration present is >= 1ms)",
		istioAdmits: false,
		spec: &networking.Sidecar{Egress: egressOnly(), InboundConnectionPool: &networking.ConnectionPoolSettings{
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2KeepAlive: &networking.ConnectionPoolSettings_HTTPSettings_ConnectionKeepalive{}},
		}},
	},
	{
		name:        "http2KeepAlive with a sub-millisecond interval",
		istio:       "validateConnectionPool: agent.ValidateDuration(interval) rejects durations not in whole milliseconds",
		project:     "validation/connection_pool.go never reads Http2KeepAlive",
		istioAdmits: false,
		spec: &networking.Sidecar{Egress: egressOnly(), InboundConnectionPool: &networking.ConnectionPoolSettings{
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2KeepAlive: &networking.ConnectionPoolSettings_HTTPSettings_ConnectionKeepalive{
				Interval: &durationpb.Duration{Seconds: 1, Nanos: 1}, Timeout: &durationpb.Duration{Seconds: 1},
			}},
		}},
	},
	{
		name:        "egress bind IPv6 not in canonical form",
		istio:       "validateSidecarEgressPortBindAndCaptureMode: agent.ValidateIPAddress is netip.ParseAddr, which takes any textual IP (\"0:0:0:0:0:0:0:1\", \"2001:DB8::1\", \"::ffff:127.0.0.1\", zones such as \"fe80::1%eth0\")",
		project:     "validation/ports.go validateIPAddress is k8s.io/apimachinery IsValidIP, which also requires the canonical form and rejects zones (README: \"Non-unix egress bind is an IP address | reference + Istio\")",
		istioAdmits: true,
		spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{{
			Port: &networking.SidecarPort{Number: 9080, Protocol: "HTTP"}, Bind: "0:0:0:0:0:0:0:1", CaptureMode: networking.CaptureMode_NONE, Hosts: []string{"*/*"},
		}}},
	},
	{
		name:        "ingress bind IPv4-mapped IPv6",
		istio:       "validateSidecarIngressPortAndBind: agent.ValidateIPAddress (netip.ParseAddr) takes \"::ffff:127.0.0.1\"",
		project:     "validation/ports.go validateIPAddress (IsValidIP: canonical form required)",
		istioAdmits: true,
		spec:        ingressWith(func(l *networking.IstioIngressListener) { l.Bind = "::ffff:127.0.0.1" }),
	},
	{
		name:        "ingress bind with an IPv6 zone",
		istio:       "agent.ValidateIPAddress (netip.ParseAddr) takes \"fe80::1%eth0\"",
		project:     "validation/ports.go validateIPAddress (IsValidIP rejects zones)",
		istioAdmits: true,
		spec:        ingressWith(func(l *networking.IstioIngressListener) { l.Bind = "fe80::1%eth0" }),
	},
	{
		name:        "port name in upper case",
		istio:       "ValidatePortName uses pkg/config/labels IsDNS1123Label, whose pattern [a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])? allows upper case",
		project:     "validation/ports.go validatePortAttributes uses k8s.io/apimachinery IsDNS1123Label (lower case only); README: \"Port name is a DNS-1123 label | Istio\"",
		istioAdmits: true,
		spec:        ingressWith(func(l *networking.IstioIngressListener) { l.Port.Name = "HTTP" }),
	},
	{
		name:        "egressProxy subset in upper case",
		istio:       "validateSidecarOutboundTrafficPolicy -> validateDestination -> validateSubsetName: labels.IsDNS1123Label (upper case allowed)",
		project:     "validation/outbound.go checks the subset with k8s.io/apimachinery IsDNS1123Label (lower case only); README: \"subset a DNS label | Istio\"",
		istioAdmits: true,
		spec: &networking.Sidecar{Egress: egressOnly(), OutboundTrafficPolicy: &networking.OutboundTrafficPolicy{
			Mode:        networking.OutboundTrafficPolicy_ALLOW_ANY,
			EgressProxy: &networking.Destination{Host: "egress.infra.svc.cluster.local", Subset: "V1", Port: &networking.PortSelector{Number: 443}},
		}},
	},
	{
		name:        "workloadSelector label value with a space",
		istio:       "ValidateAlphaWorkloadSelector rejects only empty keys and '*' in keys or values (the CRD adds: values at most 63 characters, no '*')",
		project:     "validation/selector.go applies IsQualifiedName to keys and IsValidLabelValue to values; README: \"Label keys are qualified names, values valid label values, no `*` | reference + Istio\"",
		istioAdmits: true,
		spec:        &networking.Sidecar{Egress: egressOnly(), WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "a b"}}},
	},
	{
		name:        "workloadSelector label key that is not a qualified name",
		istio:       "ValidateAlphaWorkloadSelector: only empty keys and '*' are rejected; the CRD puts no rule on keys",
		project:     "validation/selector.go: IsQualifiedName(key)",
		istioAdmits: true,
		spec:        &networking.Sidecar{Egress: egressOnly(), WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"x/y/z": "a"}}},
	},
	{
		name:        "tcp idleTimeout below one millisecond",
		istio:       "validateConnectionPool skips tcp.idleTimeout when AsDuration().Milliseconds() == 0, so 500µs and -500µs pass (no CRD rule on tcp.idleTimeout)",
		project:     "validation/connection_pool.go exempts only an idleTimeout of exactly 0; README: \"durations ≥ 1ms (tcp idleTimeout 0 disables) | Istio\"",
		istioAdmits: true,
		spec: &networking.Sidecar{Egress: egressOnly(), InboundConnectionPool: &networking.ConnectionPoolSettings{
			Tcp: &networking.ConnectionPoolSettings_TCPSettings{IdleTimeout: &durationpb.Duration{Nanos: 500_000}},
		}},
	},
	{
		name:        "unix abstract socket with an empty name",
		istio:       "ValidateUnixAddress accepts every address starting with '@', including \"@\" alone",
		project:     "validation/ports.go validateUnixAddress: \"the abstract socket name after @ must not be empty\"",
		istioAdmits: true,
		spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{{
			Port: &networking.SidecarPort{Number: 0, Protocol: "HTTP"}, Bind: "unix://@", Hosts: []string{"*/*"},
		}}},
	},
}

// TestValidationFindings keeps each disagreement found by the generated
// comparison as a minimal, named case. It fails while the project and
// Istio decide differently.
func TestValidationFindings(t *testing.T) {
	for _, f := range validationFindings {
		t.Run(f.name, func(t *testing.T) {
			warning, err := oracle.ValidateSidecar("prod", "s", f.spec)
			if (err == "") != f.istioAdmits {
				t.Fatalf("Istio's decision changed: error %q warning %q; the finding expects admits=%v", err, warning, f.istioAdmits)
			}
			raw, jerr := sidecarJSON("prod", "s", f.spec)
			if jerr != nil {
				t.Fatal(jerr)
			}
			ours := projectAdmission(raw)
			if ours.admitted() == f.istioAdmits {
				return
			}
			istioText := "admits"
			if !f.istioAdmits {
				istioText = "rejects: " + err
			}
			t.Errorf("disagreement with Istio\n  Sidecar spec %s\n  istio:   %s\n           (%s)\n  project: %s\n           (%s)",
				compactJSON(raw), istioText, f.istio, ours, f.project)
		})
	}
}
