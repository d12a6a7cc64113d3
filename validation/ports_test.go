//lint:file-ignore SA1019 targetPort is deprecated in istio.io/api; these rules reject it on purpose.

package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidatePortAttributes(t *testing.T) {
	path := field.NewPath("port")
	cases := []struct {
		name string
		port *networking.SidecarPort
		want []errAtT
	}{
		{name: "all supported protocols", port: &networking.SidecarPort{Protocol: "HTTP"}},
		{name: "protocol is case-insensitive", port: &networking.SidecarPort{Protocol: "grpc-web"}},
		{name: "mixed case", port: &networking.SidecarPort{Protocol: "Http_Proxy"}},
		{name: "empty protocol means detect it", port: &networking.SidecarPort{}},
		{name: "unknown protocol", port: &networking.SidecarPort{Protocol: "SMTP"},
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "port.protocol")}},
		{name: "GRPC_WEB with underscore is not a protocol name", port: &networking.SidecarPort{Protocol: "GRPC_WEB"},
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "port.protocol")}},
		{name: "valid name", port: &networking.SidecarPort{Name: "http-web"}},
		// Istio's DNS labels allow upper case (pkg/config/labels).
		{name: "name with capitals", port: &networking.SidecarPort{Name: "HTTP"}},
		{name: "name ending in a hyphen", port: &networking.SidecarPort{Name: "http-"},
			want: []errAtT{errAt(field.ErrorTypeInvalid, "port.name")}},
		{name: "name with dot", port: &networking.SidecarPort{Name: "a.b"},
			want: []errAtT{errAt(field.ErrorTypeInvalid, "port.name")}},
		{name: "targetPort is rejected", port: &networking.SidecarPort{TargetPort: 8080},
			want: []errAtT{errAt(field.ErrorTypeForbidden, "port.targetPort")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkObjectErrors(t, validatePortAttributes(tc.port, path), tc.want)
		})
	}

	for _, p := range supportedProtocols {
		if errs := validatePortAttributes(&networking.SidecarPort{Protocol: p}, path); len(errs) != 0 {
			t.Errorf("protocol %s: unexpected errors %v", p, errs)
		}
	}
}

func TestValidatePortNumber(t *testing.T) {
	path := field.NewPath("number")
	for _, tc := range []struct {
		n    uint32
		want []errAtT
	}{
		{n: 1},
		{n: 65535},
		{n: 0, want: []errAtT{errAt(field.ErrorTypeInvalid, "number")}},
		{n: 65536, want: []errAtT{errAt(field.ErrorTypeInvalid, "number")}},
	} {
		checkObjectErrors(t, validatePortNumber(tc.n, path), tc.want)
	}
}

func TestValidateUnixAddress(t *testing.T) {
	path := field.NewPath("bind")
	for _, tc := range []struct {
		addr string
		want []errAtT
	}{
		{addr: "unix:///var/run/app.sock"},
		{addr: "unix://@envoy-admin"},
		{addr: "unix://@"}, // Istio accepts an empty abstract name
		{addr: "unix://", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
		{addr: "unix://var/run/app.sock", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
		{addr: "unix:///var/run/", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
		{addr: "unix:///", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			checkObjectErrors(t, validateUnixAddress(rules.EgressPortAndSocket, tc.addr, path), tc.want)
		})
	}
}

func TestValidateIPAddress(t *testing.T) {
	path := field.NewPath("bind")
	for _, tc := range []struct {
		addr string
		want []errAtT
	}{
		{addr: "10.0.0.1"},
		{addr: "::1"},
		{addr: "fd00::10"},
		{addr: "localhost", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
		{addr: "10.0.0.256", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
		{addr: "10.0.0.0/8", want: []errAtT{errAt(field.ErrorTypeInvalid, "bind")}},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			checkObjectErrors(t, validateIPAddress(rules.EgressBind, tc.addr, path), tc.want)
		})
	}
}

func TestValidateCaptureMode(t *testing.T) {
	path := field.NewPath("captureMode")
	for _, tc := range []struct {
		mode networking.CaptureMode
		want []errAtT
	}{
		{mode: networking.CaptureMode_DEFAULT},
		{mode: networking.CaptureMode_IPTABLES},
		{mode: networking.CaptureMode_NONE},
		{mode: networking.CaptureMode(3), want: []errAtT{errAt(field.ErrorTypeNotSupported, "captureMode")}},
		{mode: networking.CaptureMode(-1), want: []errAtT{errAt(field.ErrorTypeNotSupported, "captureMode")}},
	} {
		checkObjectErrors(t, validateCaptureMode(tc.mode, path), tc.want)
	}
}

func TestProtocolClasses(t *testing.T) {
	for _, tc := range []struct {
		protocol      string
		http, tlsPort bool
	}{
		{protocol: "HTTP", http: true},
		{protocol: "http2", http: true},
		{protocol: "GRPC", http: true},
		{protocol: "grpc-web", http: true},
		{protocol: "HTTPS", tlsPort: true},
		{protocol: "tls", tlsPort: true},
		{protocol: "TCP"},
		{protocol: "HTTP_PROXY"},
		{protocol: ""},
	} {
		if got := isHTTPLikeProtocol(tc.protocol); got != tc.http {
			t.Errorf("isHTTPLikeProtocol(%q) = %v, want %v", tc.protocol, got, tc.http)
		}
		if got := isTLSProtocol(tc.protocol); got != tc.tlsPort {
			t.Errorf("isTLSProtocol(%q) = %v, want %v", tc.protocol, got, tc.tlsPort)
		}
	}
}
