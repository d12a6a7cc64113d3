package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// loopbackEndpointHosts are the host parts allowed in an IP defaultEndpoint,
// written as they appear before ":PORT".
var loopbackEndpointHosts = []string{"127.0.0.1", "[::1]", "0.0.0.0", "[::]"}

const defaultEndpointForms = "allowed forms: 127.0.0.1:PORT, [::1]:PORT, 0.0.0.0:PORT, [::]:PORT " +
	"(PORT 1-65535), unix:///absolute/path or unix://@abstract-name"

// validateIngressListeners checks spec.ingress: each listener on its own, and
// that no two listeners use the same port.
func validateIngressListeners(listeners []*networking.IstioIngressListener, path *field.Path) (field.ErrorList, Warnings) {
	var errs field.ErrorList
	var warns Warnings
	firstByPort := map[uint32]int{}
	for i, l := range listeners {
		lp := path.Index(i)
		if l == nil {
			errs = append(errs, rules.NullEntry.On(field.Invalid(lp, nil, "must not be null; remove the empty entry or fill in port and defaultEndpoint")))
			continue
		}
		e, w := validateIngressListener(l, lp)
		errs = append(errs, e...)
		warns = append(warns, w...)

		n := l.GetPort().GetNumber()
		if l.GetPort() == nil || n == 0 {
			continue
		}
		if first, seen := firstByPort[n]; seen {
			dup := rules.IngressPortUnique.On(field.Duplicate(lp.Child("port", "number"), n))
			dup.Detail = fmt.Sprintf("port %d is already used by %s; each ingress listener needs its own port", n, path.Index(first))
			errs = append(errs, dup)
			continue
		}
		firstByPort[n] = i
	}
	return errs, warns
}

func validateIngressListener(l *networking.IstioIngressListener, path *field.Path) (field.ErrorList, Warnings) {
	var errs field.ErrorList
	var warns Warnings

	portPath := path.Child("port")
	if l.Port == nil {
		errs = append(errs, rules.IngressPortRequired.On(field.Required(portPath, "every ingress listener needs a port: the port the sidecar accepts inbound traffic on")))
	} else {
		errs = append(errs, validatePortNumber(l.Port.GetNumber(), portPath.Child("number"))...)
		errs = append(errs, validatePortAttributes(l.Port, portPath)...)
	}

	if bind := l.GetBind(); bind != "" {
		if sidecar.IsUnixAddress(bind) {
			errs = append(errs, rules.IngressBind.On(field.Invalid(path.Child("bind"), bind,
				"Unix domain socket addresses are not allowed for ingress listeners; use an IP address (such as 0.0.0.0) or leave bind empty")))
		} else {
			errs = append(errs, validateIPAddress(rules.IngressBind, bind, path.Child("bind"))...)
		}
	}

	errs = append(errs, validateCaptureMode(l.GetCaptureMode(), path.Child("captureMode"))...)
	errs = append(errs, validateDefaultEndpoint(l.GetDefaultEndpoint(), path.Child("defaultEndpoint"))...)

	protocol := l.GetPort().GetProtocol()
	if l.Tls != nil {
		e, w := validateIngressTLS(l.Tls, protocol, path.Child("tls"))
		errs = append(errs, e...)
		warns = append(warns, w...)
	}

	if l.ConnectionPool != nil {
		poolPath := path.Child("connectionPool")
		errs = append(errs, validateConnectionPool(l.ConnectionPool, poolPath)...)
		if l.ConnectionPool.Http != nil && l.Port != nil && !isHTTPLikeProtocol(protocol) {
			warns = append(warns, Warnf(rules.IngressHTTPPool, poolPath.Child("http"),
				"port %d has protocol %q, which is not HTTP, HTTP2, GRPC or GRPC-WEB; only TCP settings will apply",
				l.Port.GetNumber(), protocol))
		}
	}
	return errs, warns
}

// validateDefaultEndpoint checks where inbound traffic is forwarded to. The
// reference marks the field required; Istio itself accepts it empty.
func validateDefaultEndpoint(ep string, path *field.Path) field.ErrorList {
	if ep == "" {
		return field.ErrorList{rules.DefaultEndpointNeeded.On(field.Required(path,
			"every ingress listener needs a defaultEndpoint, the address the application listens on; "+defaultEndpointForms))}
	}
	if sidecar.IsUnixAddress(ep) {
		return validateUnixAddress(rules.DefaultEndpointForm, ep, path)
	}
	for _, host := range loopbackEndpointHosts {
		portText, ok := strings.CutPrefix(ep, host+":")
		if !ok {
			continue
		}
		if isPortText(portText) {
			return nil
		}
		return field.ErrorList{rules.DefaultEndpointForm.On(field.Invalid(path, ep,
			fmt.Sprintf("the port %q must be a number between 1 and %d; %s", portText, maxPort, defaultEndpointForms)))}
	}
	return field.ErrorList{rules.DefaultEndpointForm.On(field.Invalid(path, ep,
		"must forward to a loopback or wildcard address or a Unix domain socket; "+defaultEndpointForms))}
}

// isPortText reports whether s is a port written in decimal digits, 1-65535.
func isPortText(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= maxPort
}
