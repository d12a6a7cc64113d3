package defaults

import (
	"fmt"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Notes explaining an effective value that is not written in the Sidecar.
const (
	NoteIPTables = "receives what iptables redirects (REDIRECT/TPROXY); not bound to the port"
	// NotePortless: a port-less egress listener becomes one listener per
	// port of each service its hosts import.
	NotePortless = "one listener per port of each service the hosts import"
	// NoteServiceInbound: under interception NONE istiod builds no inbound
	// listener from the pod's Services; only the Sidecar's ingress listeners.
	NoteServiceInbound = "under interception NONE istiod builds no inbound listeners from the pod's Services, only these"
	// NoteInstanceIP: an ingress listener without bind listens on the pod's
	// IP (the wildcard address if it has no global unicast one).
	NoteInstanceIP = "binds to the pod's IP (the wildcard address if it has none)"
)

// EffectiveOptions describe the proxy the listeners run in.
type EffectiveOptions struct {
	// InterceptionMode is REDIRECT, TPROXY or NONE (mesh.EffectiveInterceptionMode);
	// empty means REDIRECT.
	InterceptionMode string
	// IPFamily is the pod's IP family; empty means IPv4.
	IPFamily mesh.IPFamily
}

// EffectiveListener is one listener of the Sidecar as istiod builds it for
// the proxy (pilot/pkg/networking/core listener.go
// buildSidecarOutboundListeners, listener_inbound.go).
type EffectiveListener struct {
	Direction string `json:"direction"` // egress or ingress
	// Port is 0 for a port-less egress listener (ports come from the
	// services its hosts import) and for a Unix domain socket.
	Port     uint32 `json:"port"`
	Protocol string `json:"protocol,omitempty"`
	Name     string `json:"name,omitempty"`
	// BindToPort: the proxy listens on the port itself. Otherwise iptables
	// sends it the traffic (REDIRECT/TPROXY) and Binds is empty.
	BindToPort bool `json:"bindToPort"`
	// Binds are the addresses listened on when BindToPort: the Sidecar's
	// bind, else the pod's loopback addresses (egress) or its IP (ingress,
	// empty here; see the note).
	Binds []string `json:"binds"`
	// CaptureMode is as written (absent reads DEFAULT).
	CaptureMode     string   `json:"captureMode"`
	DefaultEndpoint string   `json:"defaultEndpoint,omitempty"`
	Hosts           []string `json:"hosts,omitempty"`
	// Skipped explains why istiod builds no listener for this entry.
	Skipped string `json:"skipped,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Effective returns the listeners of s as istiod builds them for a proxy
// described by opts. A nil Sidecar has no listeners.
func Effective(s *sidecar.Sidecar, opts EffectiveOptions) (egress, ingress []EffectiveListener) {
	if s == nil {
		return nil, nil
	}
	noneMode := opts.InterceptionMode == mesh.InterceptionNone
	for _, l := range s.Spec.GetEgress() {
		e := EffectiveListener{
			Direction:   "egress",
			Port:        l.GetPort().GetNumber(),
			Protocol:    l.GetPort().GetProtocol(),
			Name:        l.GetPort().GetName(),
			CaptureMode: l.GetCaptureMode().String(),
			Hosts:       l.GetHosts(),
		}
		// Interception NONE binds every listener whatever its captureMode;
		// so does captureMode NONE, and a Unix socket always.
		e.BindToPort = noneMode || l.GetCaptureMode() == networkingv1alpha3.CaptureMode_NONE || sidecar.IsUnixAddress(l.GetBind())
		switch {
		case l.GetBind() != "":
			e.Binds = []string{l.GetBind()}
		case e.BindToPort:
			e.Binds = opts.IPFamily.LoopbackAddresses()
		}
		if !e.BindToPort {
			e.Note = NoteIPTables
		}
		if l.GetPort() == nil {
			e.Note = joinNotes(NotePortless, e.Note)
		} else if why := reservedConflict(e, opts.IPFamily); why != "" {
			e.Skipped = why
		}
		egress = append(egress, e)
	}
	for _, l := range s.Spec.GetIngress() {
		e := EffectiveListener{
			Direction:       "ingress",
			Port:            l.GetPort().GetNumber(),
			Protocol:        l.GetPort().GetProtocol(),
			Name:            l.GetPort().GetName(),
			CaptureMode:     l.GetCaptureMode().String(),
			DefaultEndpoint: l.GetDefaultEndpoint(),
		}
		// An ingress listener's DEFAULT follows the interception mode
		// (listener_inbound.go getBindToPort).
		if l.GetCaptureMode() == networkingv1alpha3.CaptureMode_DEFAULT {
			e.BindToPort = noneMode
		} else {
			e.BindToPort = l.GetCaptureMode() == networkingv1alpha3.CaptureMode_NONE
		}
		switch {
		case !e.BindToPort && noneMode:
			// It would be a filter chain of the iptables-fed inbound
			// listener, which interception NONE does not build.
			e.Skipped = SkippedInboundWithoutIPTables
		case !e.BindToPort:
			e.Note = NoteIPTables
		case l.GetBind() != "":
			e.Binds = []string{l.GetBind()}
		default:
			e.Note = NoteInstanceIP
		}
		if noneMode {
			e.Note = joinNotes(e.Note, NoteServiceInbound)
		}
		if e.Skipped == "" {
			e.Skipped = reservedInboundConflict(e.Port, l.GetBind(), e.Protocol, opts.IPFamily)
		}
		ingress = append(ingress, e)
	}
	return egress, ingress
}

// SkippedInboundWithoutIPTables explains an ingress listener that waits for
// iptables under interception NONE.
const SkippedInboundWithoutIPTables = "captureMode IPTABLES needs the inbound listener iptables feeds, which istiod does not build under interception NONE: nothing listens on this port"

// reservedInboundPorts are the proxy's status and Prometheus ports (the
// pilot-agent defaults): an ingress listener on one of them on the wildcard
// address, or HTTP without a bind, is skipped (the outbound capture ports do
// not apply inbound).
var reservedInboundPorts = []uint32{15021, 15090}

func reservedInboundConflict(port uint32, bind, protocol string, family mesh.IPFamily) string {
	if !slices.Contains(reservedInboundPorts, port) {
		return ""
	}
	wildcard := family.WildcardAddresses()[0]
	if (bind != "" && bind != wildcard) || (bind == "" && !isHTTP(protocol)) {
		return ""
	}
	return fmt.Sprintf("port %d is one of the proxy's own listeners (%s); istiod skips this listener", port, joinPorts(reservedInboundPorts))
}

// reservedPorts are the proxy's own listeners (the mesh defaults: outbound
// and inbound capture, status and Prometheus ports): istiod skips a
// listener on the wildcard address of one of them, and an HTTP listener
// without a bind (model.Proxy CanBindToPort, conflictWithReservedListener).
var reservedPorts = []uint32{15001, 15006, 15021, 15090}

func reservedConflict(e EffectiveListener, family mesh.IPFamily) string {
	if !slices.Contains(reservedPorts, e.Port) {
		return ""
	}
	primary := ""
	if len(e.Binds) > 0 {
		primary = e.Binds[0]
	}
	wildcard := family.WildcardAddresses()[0]
	if (primary != "" && primary != wildcard) || (primary == "" && !isHTTP(e.Protocol)) {
		return ""
	}
	return fmt.Sprintf("port %d is one of the proxy's own listeners (%s); istiod skips this listener", e.Port, joinPorts(reservedPorts))
}

// isHTTP reports whether an Istio protocol name is an HTTP one
// (pkg/config/protocol Instance.IsHTTP).
func isHTTP(protocol string) bool {
	switch strings.ToUpper(protocol) {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY":
		return true
	}
	return false
}

func joinPorts(ports []uint32) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		parts[i] = fmt.Sprint(p)
	}
	return strings.Join(parts, ", ")
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "; " + b
}
