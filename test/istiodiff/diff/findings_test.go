package diff

import (
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
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

// listenerFinding is the smallest reproduction of a disagreement between
// defaults.Effective and the listeners istiod builds.
type listenerFinding struct {
	name    string
	istio   string
	project string
	ingress *networking.IstioIngressListener
	proxy   listenerProxy
}

var listenerFindings = []listenerFinding{
	{
		name: "ingress captureMode IPTABLES under interception NONE",
		istio: "pilot/pkg/networking/core/listener_inbound.go: getBindToPort(IPTABLES) is false, so the chain goes to the virtual inbound listener, " +
			"which buildInboundListeners adds only when the interception mode is not NONE: nothing listens on the port",
		project: "defaults/effective.go: bindToPort false, note \"receives what iptables redirects\", not marked Skipped",
		ingress: &networking.IstioIngressListener{Port: &networking.SidecarPort{Number: 8080, Protocol: "HTTP", Name: "http"}, CaptureMode: networking.CaptureMode_IPTABLES, DefaultEndpoint: "127.0.0.1:8080"},
		proxy:   listenerProxy{mesh.InterceptionNone, mesh.IPv4, []string{"10.0.0.1"}},
	},
	{
		name: "ingress on the status port without a bind",
		istio: "listener_inbound.go buildInboundChainConfigs: CanBindToPort(..., bind \"\", 15021, HTTP, ...) -> conflictWithReservedListener: " +
			"an HTTP listener without a bind (or one on the wildcard address) on ENVOY_STATUS_PORT/ENVOY_PROMETHEUS_PORT is skipped",
		project: "defaults/effective.go checks reserved ports (reservedConflict) for egress listeners only",
		ingress: &networking.IstioIngressListener{Port: &networking.SidecarPort{Number: 15021, Protocol: "HTTP", Name: "http"}, DefaultEndpoint: "127.0.0.1:8080"},
		proxy:   listenerProxy{mesh.InterceptionRedirect, mesh.IPv4, []string{"10.0.0.1"}},
	},
	{
		name:    "ingress on the Prometheus port bound to the wildcard address",
		istio:   "conflictWithReservedListener: bind equal to the proxy's wildcard address on ENVOY_PROMETHEUS_PORT (15090) is skipped, whatever the protocol",
		project: "defaults/effective.go: no reserved-port check for ingress",
		ingress: &networking.IstioIngressListener{Port: &networking.SidecarPort{Number: 15090, Protocol: "TCP", Name: "tcp"}, Bind: "0.0.0.0", CaptureMode: networking.CaptureMode_NONE, DefaultEndpoint: "127.0.0.1:8080"},
		proxy:   listenerProxy{mesh.InterceptionRedirect, mesh.IPv4, []string{"10.0.0.1"}},
	},
}

// TestListenerFindings keeps each listener disagreement found by
// TestEffectiveListeners as a minimal failing case: the project's
// EffectiveListener.Skipped says "istiod builds no listener for this
// entry", so an entry istiod builds nothing for must carry it.
func TestListenerFindings(t *testing.T) {
	for _, f := range listenerFindings {
		t.Run(f.name, func(t *testing.T) {
			spec := &networking.Sidecar{Ingress: []*networking.IstioIngressListener{f.ingress}, Egress: egressOnly()}
			if _, err := oracle.ValidateSidecar("app", "s", spec); err != "" {
				t.Fatalf("not valid for Istio: %s", err)
			}
			ls, err := oracle.ListenersFor(oracle.State{Sidecars: []oracle.SidecarObject{{Namespace: "app", Name: "s", Created: t0, Spec: spec}}},
				oracle.Proxy{Namespace: "app", IPs: f.proxy.ips, InterceptionMode: f.proxy.mode})
			if err != nil {
				t.Fatal(err)
			}
			port := f.ingress.Port.Number
			built := hasInbound(ls, port) || virtualInboundHasPort(ls, port)
			if built {
				t.Fatalf("istiod now builds a listener for port %d; the finding no longer holds", port)
			}
			raw, err := sidecarJSON("app", "s", spec)
			if err != nil {
				t.Fatal(err)
			}
			obj, errs := sidecar.Decode(raw)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			_, ingress := defaults.Effective(obj, defaults.EffectiveOptions{InterceptionMode: f.proxy.mode, IPFamily: f.proxy.family})
			if ingress[0].Skipped != "" {
				return
			}
			t.Errorf("disagreement with istiod\n  Sidecar spec %s, proxy interception %s %s %v\n  istiod:  builds no listener and no virtual inbound filter chain for port %d\n           (%s)\n  project: %+v\n           (%s)",
				compactJSON(raw), f.proxy.mode, f.proxy.family, f.proxy.ips, port, f.istio, ingress[0], f.project)
		})
	}
}
