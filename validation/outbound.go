package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateOutboundTrafficPolicy checks spec.outboundTrafficPolicy.
func validateOutboundTrafficPolicy(policy *networking.OutboundTrafficPolicy, path *field.Path) field.ErrorList {
	if policy == nil {
		return nil
	}
	var errs field.ErrorList
	errs = append(errs, validateEnum(int32(policy.GetMode()), networking.OutboundTrafficPolicy_Mode_name, path.Child("mode"))...)

	proxy := policy.GetEgressProxy()
	if proxy == nil {
		return errs
	}
	proxyPath := path.Child("egressProxy")
	if policy.GetMode() != networking.OutboundTrafficPolicy_ALLOW_ANY {
		errs = append(errs, rules.EgressProxy.On(field.Forbidden(proxyPath,
			fmt.Sprintf("egressProxy is used only with mode ALLOW_ANY (it receives the traffic to unknown destinations); mode is %s", policy.GetMode()))))
	}

	hostPath := proxyPath.Child("host")
	if proxy.GetHost() == "" {
		errs = append(errs, rules.EgressProxy.On(field.Required(hostPath, "the egress proxy needs a host: the DNS name of its service, such as egress-proxy.infra.svc.cluster.local")))
	} else if problem := dnsNameProblem(proxy.GetHost(), false); problem != "" {
		errs = append(errs, rules.EgressProxy.On(field.Invalid(hostPath, proxy.GetHost(),
			"must be a fully qualified DNS name such as egress-proxy.infra.svc.cluster.local: "+problem)))
	}

	// Istio checks a subset name like a DestinationRule subset's: a DNS-1123 label.
	if subset := proxy.GetSubset(); subset != "" {
		if !isDNSLabel(subset) {
			errs = append(errs, rules.EgressProxy.On(field.Invalid(proxyPath.Child("subset"), subset,
				fmt.Sprintf("a subset name must be a DNS label: letters, digits and '-', starting and ending with a letter or digit, at most %d characters", maxDNSLabelLength))))
		}
	}

	portPath := proxyPath.Child("port")
	if proxy.GetPort() == nil {
		errs = append(errs, rules.EgressProxy.On(field.Required(portPath, "the egress proxy needs a port number to send traffic to")))
	} else {
		errs = append(errs, validatePortNumber(proxy.GetPort().GetNumber(), portPath.Child("number"))...)
	}
	return errs
}
