package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// validateEgressListeners checks spec.egress: each listener on its own, the
// position of the (single) listener without a port, and that ports and Unix
// socket binds are not reused. namespace resolves "." in hosts.
func validateEgressListeners(listeners []*networking.IstioEgressListener, namespace string, path *field.Path) (field.ErrorList, Warnings) {
	var errs field.ErrorList
	var warns Warnings
	firstByPort := map[uint32]int{}
	firstBySocket := map[string]int{}
	portless := -1
	last := len(listeners) - 1
	for i, l := range listeners {
		lp := path.Index(i)
		if l == nil {
			errs = append(errs, rules.NullEntry.On(field.Invalid(lp, nil, "must not be null; remove the empty entry or fill in hosts")))
			continue
		}
		e, w := validateEgressListener(l, namespace, lp)
		errs = append(errs, e...)
		warns = append(warns, w...)

		if l.Port == nil {
			// Istio uses a listener without a port as the catch-all for
			// everything the port-specific listeners above it do not take.
			switch {
			case portless >= 0:
				errs = append(errs, rules.EgressCatchAll.On(field.Forbidden(lp.Child("port"),
					fmt.Sprintf("only one egress listener may omit the port and %s already does; set a port here", path.Index(portless)))))
			case i != last:
				errs = append(errs, rules.EgressCatchAll.On(field.Forbidden(lp.Child("port"),
					"the egress listener without a port must be the last one; move it to the end of the list or set a port")))
				portless = i
			default:
				portless = i
			}
			continue
		}

		n := l.Port.GetNumber()
		if n == 0 {
			if !sidecar.IsUnixAddress(l.GetBind()) {
				continue // reported by validateEgressListener
			}
			if first, seen := firstBySocket[l.GetBind()]; seen {
				dup := rules.EgressUnique.On(field.Duplicate(lp.Child("bind"), l.GetBind()))
				dup.Detail = fmt.Sprintf("this Unix domain socket is already bound by %s; each listener needs its own socket", path.Index(first))
				errs = append(errs, dup)
				continue
			}
			firstBySocket[l.GetBind()] = i
			continue
		}
		if first, seen := firstByPort[n]; seen {
			dup := rules.EgressUnique.On(field.Duplicate(lp.Child("port", "number"), n))
			dup.Detail = fmt.Sprintf("port %d is already used by %s; each egress listener needs its own port", n, path.Index(first))
			errs = append(errs, dup)
			continue
		}
		firstByPort[n] = i
	}
	return errs, warns
}

func validateEgressListener(l *networking.IstioEgressListener, namespace string, path *field.Path) (field.ErrorList, Warnings) {
	var errs field.ErrorList
	bind := l.GetBind()
	unix := sidecar.IsUnixAddress(bind)
	portPath := path.Child("port")
	bindPath := path.Child("bind")
	capturePath := path.Child("captureMode")

	if l.Port == nil {
		if bind != "" {
			errs = append(errs, rules.EgressBindNeedsPort.On(field.Required(portPath,
				"a port is required when bind is set (use port number 0 with a unix:// bind)")))
		}
	} else {
		numberPath := portPath.Child("number")
		n := l.Port.GetNumber()
		switch {
		case unix && n != 0:
			errs = append(errs, rules.EgressPortAndSocket.On(field.Invalid(numberPath, n,
				"must be 0 when bind is a Unix domain socket (unix://...)")))
		case !unix && n == 0:
			errs = append(errs, rules.EgressPortAndSocket.On(field.Invalid(numberPath, n,
				fmt.Sprintf("port 0 is allowed only with a Unix domain socket bind (unix://...); otherwise use a port between 1 and %d", maxPort))))
		case !unix:
			errs = append(errs, validatePortNumber(n, numberPath)...)
		}
		errs = append(errs, validatePortAttributes(l.Port, portPath)...)
	}

	switch {
	case unix:
		errs = append(errs, validateUnixAddress(rules.EgressPortAndSocket, bind, bindPath)...)
	case bind != "":
		errs = append(errs, validateIPAddress(rules.EgressBind, bind, bindPath)...)
	}

	if e := validateCaptureMode(l.GetCaptureMode(), capturePath); len(e) > 0 {
		errs = append(errs, e...)
	} else if unix && l.GetCaptureMode() == networking.CaptureMode_IPTABLES {
		errs = append(errs, rules.EgressSocketCapture.On(field.Invalid(capturePath, l.GetCaptureMode().String(),
			"captureMode must be DEFAULT or NONE when bind is a Unix domain socket; IPTABLES capture applies only to IP listeners")))
	}

	hostErrs, warns := validateEgressHosts(l.GetHosts(), namespace, path.Child("hosts"))
	errs = append(errs, hostErrs...)
	return errs, warns
}
