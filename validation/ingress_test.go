//lint:file-ignore SA1019 targetPort is deprecated in istio.io/api; these rules reject it on purpose.

package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type ingressChange = func(*networking.IstioIngressListener)

func TestValidateIngress(t *testing.T) {
	one := func(change ingressChange) []*networking.IstioIngressListener {
		return []*networking.IstioIngressListener{withChange(okIngress(9080, "HTTP"), change)}
	}
	cases := []struct {
		name    string
		ingress []*networking.IstioIngressListener
		want    []errAtT
		warns   []warnAtT
	}{
		{name: "valid listener", ingress: one(func(*networking.IstioIngressListener) {})},
		{
			name:    "null entry",
			ingress: []*networking.IstioIngressListener{okIngress(9080, "HTTP"), nil},
			want:    []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[1]")},
		},
		{
			name:    "port is required",
			ingress: one(func(l *networking.IstioIngressListener) { l.Port = nil }),
			want:    []errAtT{errAt(field.ErrorTypeRequired, "spec.ingress[0].port")},
		},
		{
			name:    "port number 0",
			ingress: one(func(l *networking.IstioIngressListener) { l.Port.Number = 0 }),
			want:    []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].port.number")},
		},
		{
			name:    "port number above 65535",
			ingress: one(func(l *networking.IstioIngressListener) { l.Port.Number = 70000 }),
			want:    []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].port.number")},
		},
		{
			name: "port protocol, name and targetPort are checked",
			ingress: one(func(l *networking.IstioIngressListener) {
				l.Port.Protocol = "FTP"
				l.Port.Name = "web.x"
				l.Port.TargetPort = 1
			}),
			want: []errAtT{
				errAt(field.ErrorTypeNotSupported, "spec.ingress[0].port.protocol"),
				errAt(field.ErrorTypeInvalid, "spec.ingress[0].port.name"),
				errAt(field.ErrorTypeForbidden, "spec.ingress[0].port.targetPort"),
			},
		},
		{name: "bind IPv4", ingress: one(func(l *networking.IstioIngressListener) { l.Bind = "172.16.1.32" })},
		{name: "bind IPv6", ingress: one(func(l *networking.IstioIngressListener) { l.Bind = "fd00::1" })},
		{
			name:    "bind unix socket",
			ingress: one(func(l *networking.IstioIngressListener) { l.Bind = "unix:///var/run/in.sock" }),
			want:    []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].bind")},
		},
		{
			name:    "bind hostname",
			ingress: one(func(l *networking.IstioIngressListener) { l.Bind = "localhost" }),
			want:    []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].bind")},
		},
		{name: "captureMode NONE", ingress: one(func(l *networking.IstioIngressListener) { l.CaptureMode = networking.CaptureMode_NONE })},
		{
			name:    "captureMode out of range",
			ingress: one(func(l *networking.IstioIngressListener) { l.CaptureMode = 9 }),
			want:    []errAtT{errAt(field.ErrorTypeNotSupported, "spec.ingress[0].captureMode")},
		},
		{
			name:    "duplicate ports",
			ingress: []*networking.IstioIngressListener{okIngress(9080, "HTTP"), okIngress(9443, "HTTPS"), okIngress(9080, "TCP")},
			want:    []errAtT{errAt(field.ErrorTypeDuplicate, "spec.ingress[2].port.number")},
		},
		{
			name: "TLS settings are checked",
			ingress: one(func(l *networking.IstioIngressListener) {
				l.Tls = &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, ServerCertificate: "/c", PrivateKey: "/k"}
			}),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.ingress[0].tls")},
		},
		{
			name: "TLS settings on an HTTPS port",
			ingress: []*networking.IstioIngressListener{withChange(okIngress(9443, "HTTPS"), func(l *networking.IstioIngressListener) {
				l.Tls = &networking.ServerTLSSettings{Mode: networking.ServerTLSSettings_SIMPLE, ServerCertificate: "/c", PrivateKey: "/k"}
			})},
		},
		{
			name: "connection pool is checked",
			ingress: one(func(l *networking.IstioIngressListener) {
				l.ConnectionPool = &networking.ConnectionPoolSettings{Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: -1}}
			}),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].connectionPool.tcp.maxConnections")},
		},
		{
			name: "HTTP pool settings on a TCP port warn",
			ingress: []*networking.IstioIngressListener{withChange(okIngress(5432, "TCP"), func(l *networking.IstioIngressListener) {
				l.ConnectionPool = &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2MaxRequests: 10}}
			})},
			warns: []warnAtT{{Path: "spec.ingress[0].connectionPool.http"}},
		},
		{
			name: "HTTP pool settings on a port without protocol warn",
			ingress: []*networking.IstioIngressListener{withChange(okIngress(5432, ""), func(l *networking.IstioIngressListener) {
				l.ConnectionPool = &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2MaxRequests: 10}}
			})},
			warns: []warnAtT{{Path: "spec.ingress[0].connectionPool.http"}},
		},
		{
			name: "HTTP pool settings on a gRPC port",
			ingress: []*networking.IstioIngressListener{withChange(okIngress(5432, "grpc"), func(l *networking.IstioIngressListener) {
				l.ConnectionPool = &networking.ConnectionPoolSettings{Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2MaxRequests: 10}}
			})},
		},
		{
			name: "TCP pool settings on a TCP port",
			ingress: []*networking.IstioIngressListener{withChange(okIngress(5432, "TCP"), func(l *networking.IstioIngressListener) {
				l.ConnectionPool = &networking.ConnectionPoolSettings{Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 10}}
			})},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := ValidateSidecar(objectSidecar(&networking.Sidecar{Ingress: tc.ingress}))
			checkObjectErrors(t, errs, tc.want)
			checkObjectWarnings(t, warns, tc.warns)
		})
	}
}

func TestValidateDefaultEndpoint(t *testing.T) {
	valid := []string{
		"127.0.0.1:8080",
		"[::1]:8080",
		"0.0.0.0:1",
		"[::]:65535",
		"unix:///var/run/someuds.sock",
		"unix://@app",
		"unix://@", // Istio accepts an empty abstract name
	}
	invalid := []string{
		"localhost:8080",
		"10.0.0.1:8080",
		"127.0.0.1",
		"127.0.0.1:",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:80a",
		"127.0.0.1:+80",
		"::1:8080",
		":8080",
		"unix://relative.sock",
		"unix:///var/run/",
		"http://127.0.0.1:8080",
	}
	for _, ep := range valid {
		t.Run(ep, func(t *testing.T) {
			checkObjectErrors(t, validateDefaultEndpoint(ep, field.NewPath("defaultEndpoint")), nil)
		})
	}
	for _, ep := range invalid {
		t.Run(ep, func(t *testing.T) {
			checkObjectErrors(t, validateDefaultEndpoint(ep, field.NewPath("defaultEndpoint")),
				[]errAtT{errAt(field.ErrorTypeInvalid, "defaultEndpoint")})
		})
	}
	t.Run("required", func(t *testing.T) {
		checkObjectErrors(t, validateDefaultEndpoint("", field.NewPath("defaultEndpoint")),
			[]errAtT{errAt(field.ErrorTypeRequired, "defaultEndpoint")})
	})
}
