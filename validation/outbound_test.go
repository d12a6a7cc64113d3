package validation

import (
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateOutboundTrafficPolicy(t *testing.T) {
	allowAny := networking.OutboundTrafficPolicy_ALLOW_ANY
	proxy := func(change func(*networking.Destination)) *networking.OutboundTrafficPolicy {
		dest := &networking.Destination{
			Host: "egress-proxy.infra.svc.cluster.local",
			Port: &networking.PortSelector{Number: 3128},
		}
		change(dest)
		return &networking.OutboundTrafficPolicy{Mode: allowAny, EgressProxy: dest}
	}
	keep := func(*networking.Destination) {}
	cases := []struct {
		name   string
		policy *networking.OutboundTrafficPolicy
		want   []errAtT
	}{
		{name: "REGISTRY_ONLY", policy: &networking.OutboundTrafficPolicy{Mode: networking.OutboundTrafficPolicy_REGISTRY_ONLY}},
		{name: "ALLOW_ANY", policy: &networking.OutboundTrafficPolicy{Mode: allowAny}},
		{
			name:   "mode number without a name",
			policy: &networking.OutboundTrafficPolicy{Mode: 2},
			want:   []errAtT{errAt(field.ErrorTypeNotSupported, "spec.outboundTrafficPolicy.mode")},
		},
		{name: "egress proxy with ALLOW_ANY", policy: proxy(keep)},
		{name: "egress proxy with trailing dot and subset", policy: proxy(func(d *networking.Destination) {
			d.Host = "egress-proxy.infra.svc.cluster.local."
			d.Subset = "v1"
		})},
		{
			name: "egress proxy with REGISTRY_ONLY",
			policy: withChange(proxy(keep), func(p *networking.OutboundTrafficPolicy) {
				p.Mode = networking.OutboundTrafficPolicy_REGISTRY_ONLY
			}),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.outboundTrafficPolicy.egressProxy")},
		},
		{
			name:   "egress proxy without host",
			policy: proxy(func(d *networking.Destination) { d.Host = "" }),
			want:   []errAtT{errAt(field.ErrorTypeRequired, "spec.outboundTrafficPolicy.egressProxy.host")},
		},
		{
			name:   "egress proxy with a wildcard host",
			policy: proxy(func(d *networking.Destination) { d.Host = "*.infra.svc.cluster.local" }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.outboundTrafficPolicy.egressProxy.host")},
		},
		{
			name:   "egress proxy with host *",
			policy: proxy(func(d *networking.Destination) { d.Host = "*" }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.outboundTrafficPolicy.egressProxy.host")},
		},
		{
			name:   "egress proxy with a host that is not a DNS name",
			policy: proxy(func(d *networking.Destination) { d.Host = "Proxy_1.infra" }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.outboundTrafficPolicy.egressProxy.host")},
		},
		{
			name:   "egress proxy without port",
			policy: proxy(func(d *networking.Destination) { d.Port = nil }),
			want:   []errAtT{errAt(field.ErrorTypeRequired, "spec.outboundTrafficPolicy.egressProxy.port")},
		},
		{
			name:   "egress proxy with port 0",
			policy: proxy(func(d *networking.Destination) { d.Port.Number = 0 }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.outboundTrafficPolicy.egressProxy.port.number")},
		},
		{
			name:   "egress proxy with port above 65535",
			policy: proxy(func(d *networking.Destination) { d.Port.Number = 65536 }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.outboundTrafficPolicy.egressProxy.port.number")},
		},
		{
			name:   "egress proxy with an invalid subset",
			policy: proxy(func(d *networking.Destination) { d.Subset = "V1.blue" }),
			want:   []errAtT{errAt(field.ErrorTypeInvalid, "spec.outboundTrafficPolicy.egressProxy.subset")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := ValidateSidecar(objectSidecar(&networking.Sidecar{OutboundTrafficPolicy: tc.policy}))
			checkObjectErrors(t, errs, tc.want)
			checkObjectWarnings(t, warns, nil)
		})
	}
}
