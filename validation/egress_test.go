//lint:file-ignore SA1019 targetPort is deprecated in istio.io/api; these rules reject it on purpose.

package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

type egressChange = func(*networking.IstioEgressListener)

func TestValidateEgress(t *testing.T) {
	one := func(change egressChange) []*networking.IstioEgressListener {
		return []*networking.IstioEgressListener{withChange(okEgress(9080), change)}
	}
	unixListener := func(bind string, port uint32) *networking.IstioEgressListener {
		return &networking.IstioEgressListener{
			Port:  &networking.SidecarPort{Number: port, Protocol: "HTTP", Name: "uds"},
			Bind:  bind,
			Hosts: []string{"./*"},
		}
	}
	cases := []struct {
		name   string
		egress []*networking.IstioEgressListener
		want   []errAtT
		warns  []warnAtT
	}{
		{name: "valid listener with port", egress: one(func(*networking.IstioEgressListener) {})},
		{name: "valid catch-all listener", egress: []*networking.IstioEgressListener{okEgress(0, "*/*")}},
		{
			name:   "null entry",
			egress: []*networking.IstioEgressListener{nil, okEgress(0)},
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0]")},
		},
		{
			name:   "hosts are required",
			egress: one(func(l *networking.IstioEgressListener) { l.Hosts = nil }),
			want:   []errAtT{errAt(field.ErrorTypeRequired, "spec.egress[0].hosts")},
		},
		{
			name:   "hosts are checked",
			egress: one(func(l *networking.IstioEgressListener) { l.Hosts = []string{"./*", "reviews"} }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].hosts[1]")},
		},
		{
			name:   "port number above 65535",
			egress: one(func(l *networking.IstioEgressListener) { l.Port.Number = 65536 }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name:   "port 0 without a unix bind",
			egress: one(func(l *networking.IstioEgressListener) { l.Port.Number = 0 }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name:   "port 0 with an IP bind",
			egress: one(func(l *networking.IstioEgressListener) { l.Port.Number = 0; l.Bind = "127.0.0.1" }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name: "port protocol, name and targetPort are checked",
			egress: one(func(l *networking.IstioEgressListener) {
				l.Port.Protocol = "SMTP"
				l.Port.Name = "-x"
				l.Port.TargetPort = 80
			}),
			want: []errAtT{
				errAt(field.ErrorTypeNotSupported, "spec.egress[0].port.protocol"),
				errAt(field.ErrorTypeInvalid, "spec.egress[0].port.name"),
				errAt(field.ErrorTypeForbidden, "spec.egress[0].port.targetPort"),
			},
		},
		{name: "unix socket bind with port 0", egress: []*networking.IstioEgressListener{unixListener("unix:///var/run/out.sock", 0)}},
		{name: "abstract unix socket bind", egress: []*networking.IstioEgressListener{unixListener("unix://@out", 0)}},
		{
			name:   "unix socket bind with a non-zero port",
			egress: []*networking.IstioEgressListener{unixListener("unix:///var/run/out.sock", 9000)},
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name:   "unix socket bind with a relative path",
			egress: []*networking.IstioEgressListener{unixListener("unix://out.sock", 0)},
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].bind")},
		},
		{
			// Istio accepts any abstract name, even an empty one.
			name:   "unix socket bind with an empty abstract name",
			egress: []*networking.IstioEgressListener{unixListener("unix://@", 0)},
		},
		{
			name: "unix socket bind with captureMode NONE",
			egress: []*networking.IstioEgressListener{withChange(unixListener("unix:///s", 0), func(l *networking.IstioEgressListener) {
				l.CaptureMode = networking.CaptureMode_NONE
			})},
		},
		{
			name: "unix socket bind with captureMode IPTABLES",
			egress: []*networking.IstioEgressListener{withChange(unixListener("unix:///s", 0), func(l *networking.IstioEgressListener) {
				l.CaptureMode = networking.CaptureMode_IPTABLES
			})},
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].captureMode")},
		},
		{
			name: "IP bind with captureMode IPTABLES",
			egress: one(func(l *networking.IstioEgressListener) {
				l.Bind = "127.0.0.1"
				l.CaptureMode = networking.CaptureMode_IPTABLES
			}),
		},
		{
			name:   "captureMode out of range",
			egress: one(func(l *networking.IstioEgressListener) { l.CaptureMode = 5 }),
			want:   []errAtT{errAt(field.ErrorTypeNotSupported, "spec.egress[0].captureMode")},
		},
		{name: "IPv6 bind", egress: one(func(l *networking.IstioEgressListener) { l.Bind = "::1" })},
		{
			name:   "bind that is not an IP",
			egress: one(func(l *networking.IstioEgressListener) { l.Bind = "localhost" }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].bind")},
		},
		{
			name:   "bind without a port",
			egress: []*networking.IstioEgressListener{withChange(okEgress(0), func(l *networking.IstioEgressListener) { l.Bind = "127.0.0.1" })},
			want:   []errAtT{errAt(field.ErrorTypeRequired, "spec.egress[0].port")},
		},
		{
			name:   "unix bind without a port",
			egress: []*networking.IstioEgressListener{withChange(okEgress(0), func(l *networking.IstioEgressListener) { l.Bind = "unix:///s" })},
			want:   []errAtT{errAt(field.ErrorTypeRequired, "spec.egress[0].port")},
		},
		{
			name:   "duplicate ports",
			egress: []*networking.IstioEgressListener{okEgress(9080), okEgress(3306), okEgress(9080), okEgress(0)},
			want:   []errAtT{errAt(field.ErrorTypeDuplicate, "spec.egress[2].port.number")},
		},
		{
			name: "duplicate unix socket binds",
			egress: []*networking.IstioEgressListener{
				unixListener("unix:///var/run/a.sock", 0), unixListener("unix:///var/run/b.sock", 0), unixListener("unix:///var/run/a.sock", 0),
			},
			want: []errAtT{errAt(field.ErrorTypeDuplicate, "spec.egress[2].bind")},
		},
		{
			name:   "listener without a port is not last",
			egress: []*networking.IstioEgressListener{okEgress(0), okEgress(9080)},
			want:   []errAtT{errAt(field.ErrorTypeForbidden, "spec.egress[0].port")},
		},
		{
			name:   "two listeners without a port",
			egress: []*networking.IstioEgressListener{okEgress(0, "a/*"), okEgress(0, "b/*")},
			want: []errAtT{
				errAt(field.ErrorTypeForbidden, "spec.egress[0].port"),
				errAt(field.ErrorTypeForbidden, "spec.egress[1].port"),
			},
		},
		{
			name:   "host warnings are reported per listener",
			egress: []*networking.IstioEgressListener{okEgress(9080, "a/x.com"), okEgress(0, "a/x.com", "a/x.com")},
			warns:  []warnAtT{{Path: "spec.egress[1].hosts[1]", Msg: `duplicated egress host "a/x.com"`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := ValidateSidecar(objectSidecar(&networking.Sidecar{Egress: tc.egress}))
			checkObjectErrors(t, errs, tc.want)
			checkObjectWarnings(t, warns, tc.warns)
		})
	}
}
