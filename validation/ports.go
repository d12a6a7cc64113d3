//lint:file-ignore SA1019 targetPort is deprecated in istio.io/api; these rules reject it on purpose.

package validation

import (
	"github.com/sidecar-webhook/sidecar-webhook/rules"

	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// maxPort is the largest TCP/UDP port number.
const maxPort = 65535

// supportedProtocols are the port protocol names Istio understands. Istio
// compares them case-insensitively; an empty protocol is also accepted
// because Istio then detects the protocol from the traffic.
var supportedProtocols = []string{
	"GRPC", "GRPC-WEB", "HTTP", "HTTP2", "HTTP_PROXY", "HTTPS",
	"MONGO", "MYSQL", "REDIS", "TCP", "TLS", "UDP",
}

func isSupportedProtocol(p string) bool {
	upper := strings.ToUpper(p)
	for _, s := range supportedProtocols {
		if s == upper {
			return true
		}
	}
	return false
}

// isHTTPLikeProtocol reports whether HTTP connection-pool settings take effect
// on a port with protocol p.
func isHTTPLikeProtocol(p string) bool {
	switch strings.ToUpper(p) {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
		return true
	}
	return false
}

// isTLSProtocol reports whether a port with protocol p carries TLS that the
// sidecar can terminate.
func isTLSProtocol(p string) bool {
	switch strings.ToUpper(p) {
	case "HTTPS", "TLS":
		return true
	}
	return false
}

// validatePortAttributes checks the parts of a listener port that mean the
// same on ingress and egress: protocol, name and targetPort. The number is
// checked by the caller because its range depends on the bind address.
func validatePortAttributes(port *networking.SidecarPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.GetProtocol() != "" && !isSupportedProtocol(port.GetProtocol()) {
		errs = append(errs, rules.PortProtocol.On(field.NotSupported(path.Child("protocol"), port.GetProtocol(), supportedProtocols)))
	}
	if name := port.GetName(); name != "" {
		if !isDNSLabel(name) {
			errs = append(errs, rules.PortName.On(field.Invalid(path.Child("name"), name,
				fmt.Sprintf("a port name must be a DNS label: letters, digits and '-', starting and ending with a letter or digit, at most %d characters", maxDNSLabelLength))))
		}
	}
	//nolint:staticcheck // targetPort is deprecated, which is why it is rejected here.
	if tp := port.GetTargetPort(); tp > 0 {
		errs = append(errs, rules.PortTargetPort.On(field.Forbidden(path.Child("targetPort"),
			"targetPort has no effect on Sidecars; remove it (traffic is forwarded to defaultEndpoint on ingress, to the destination port on egress)")))
	}
	return errs
}

// validatePortNumber checks that n is a usable port, 1 to 65535.
func validatePortNumber(n uint32, path *field.Path) field.ErrorList {
	if n < 1 || n > maxPort {
		return field.ErrorList{rules.PortNumber.On(field.Invalid(path, n, fmt.Sprintf("must be a port number between 1 and %d", maxPort)))}
	}
	return nil
}

// validateUnixAddress checks a "unix://..." address: either an absolute file
// path that does not end in "/" (unix:///var/run/app.sock) or a Linux
// abstract socket name (unix://@name). Its errors carry the rule id.
func validateUnixAddress(id rules.ID, addr string, path *field.Path) field.ErrorList {
	rest := strings.TrimPrefix(addr, sidecar.UnixPrefix)
	const allowed = "a Unix domain socket must be unix:///absolute/path (not ending in /) or unix://@abstract-name"
	switch {
	case strings.HasPrefix(rest, "@"):
		// Any abstract name, even empty, as Istio accepts it
		// (pkg/config/validation ValidateUnixAddress).
	case rest == "":
		return field.ErrorList{id.On(field.Invalid(path, addr, "the socket path must not be empty; "+allowed))}
	case !strings.HasPrefix(rest, "/"):
		return field.ErrorList{id.On(field.Invalid(path, addr, "the socket path must be absolute; "+allowed))}
	case strings.HasSuffix(rest, "/"):
		return field.ErrorList{id.On(field.Invalid(path, addr, "the socket path must name a file, not a directory; "+allowed))}
	}
	return nil
}

// validateIPAddress checks that addr is an IPv4 or IPv6 address in any of
// its textual forms, zones included, as Istio reads it
// (pkg/config/validation/agent ValidateIPAddress: netip.ParseAddr).
func validateIPAddress(id rules.ID, addr string, path *field.Path) field.ErrorList {
	if _, err := netip.ParseAddr(addr); err != nil {
		return field.ErrorList{id.On(field.Invalid(path, addr, "must be an IPv4 or IPv6 address, such as 127.0.0.1 or ::1"))}
	}
	return nil
}

// validateEnum reports a numeric enum value that has no name. The decoder
// already rejects unknown names; this catches numbers that reach us through
// other paths (protobuf, client libraries).
func validateEnum(value int32, names map[int32]string, path *field.Path) field.ErrorList {
	if _, ok := names[value]; ok {
		return nil
	}
	return field.ErrorList{rules.EnumValue.On(field.NotSupported(path, strconv.Itoa(int(value)), enumNames(names)))}
}

// enumNames lists an enum's names in declaration (numeric) order.
func enumNames(names map[int32]string) []string {
	nums := make([]int, 0, len(names))
	for n := range names {
		nums = append(nums, int(n))
	}
	sort.Ints(nums)
	out := make([]string, 0, len(nums))
	for _, n := range nums {
		out = append(out, names[int32(n)])
	}
	return out
}

// validateCaptureMode checks that mode is one of DEFAULT, IPTABLES, NONE.
func validateCaptureMode(mode networking.CaptureMode, path *field.Path) field.ErrorList {
	return validateEnum(int32(mode), networking.CaptureMode_name, path)
}
