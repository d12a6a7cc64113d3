package defaults

import (
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Interception modes a proxy can run with (its ISTIO_META_INTERCEPTION_MODE,
// or the pod annotation sidecar.istio.io/interceptionMode).
const (
	InterceptionRedirect = "REDIRECT"
	InterceptionTProxy   = "TPROXY"
	InterceptionNone     = "NONE"
)

// Notes explaining an effective value that is not written in the Sidecar.
const (
	NoteEnvironmentCapture = "iptables redirection (REDIRECT/TPROXY) from the environment"
	NoteInstanceIPBind     = "binds to the instance IP (0.0.0.0 if none)"
)

// EffectiveListener is one listener as the proxy will run it.
type EffectiveListener struct {
	Direction       string   `json:"direction"` // egress or ingress
	Port            uint32   `json:"port"`
	Protocol        string   `json:"protocol,omitempty"`
	Name            string   `json:"name,omitempty"`
	Bind            string   `json:"bind"`
	CaptureMode     string   `json:"captureMode"`
	DefaultEndpoint string   `json:"defaultEndpoint,omitempty"`
	Hosts           []string `json:"hosts,omitempty"`
	Note            string   `json:"note,omitempty"`
}

// Effective returns the listeners of s as a proxy whose environment
// intercepts traffic with interceptionMode (REDIRECT, TPROXY or NONE; empty
// means Istio's default, REDIRECT) will use them. A nil Sidecar has no
// listeners. It reads the typed spec, where an absent captureMode and DEFAULT
// are the same value, which is all the proxy sees either way.
func Effective(s *sidecar.Sidecar, interceptionMode string) (egress, ingress []EffectiveListener) {
	if s == nil {
		return nil, nil
	}
	for _, l := range s.Spec.GetEgress() {
		e := EffectiveListener{
			Direction: "egress",
			Port:      l.GetPort().GetNumber(),
			Protocol:  l.GetPort().GetProtocol(),
			Name:      l.GetPort().GetName(),
			Bind:      l.GetBind(),
			Hosts:     l.GetHosts(),
		}
		e.CaptureMode, e.Note = effectiveCapture(l.GetCaptureMode(), interceptionMode)
		// The reference: "If captureMode is NONE, bind will default to
		// 127.0.0.1"; a proxy without interception is the same case. Only
		// with a port: a port-less listener is inferred from its hosts.
		if e.CaptureMode == networkingv1alpha3.CaptureMode_NONE.String() && e.Bind == "" && l.GetPort() != nil {
			e.Bind = LoopbackBind
		}
		egress = append(egress, e)
	}
	for _, l := range s.Spec.GetIngress() {
		e := EffectiveListener{
			Direction:       "ingress",
			Port:            l.GetPort().GetNumber(),
			Protocol:        l.GetPort().GetProtocol(),
			Name:            l.GetPort().GetName(),
			Bind:            l.GetBind(),
			DefaultEndpoint: l.GetDefaultEndpoint(),
		}
		e.CaptureMode, e.Note = effectiveCapture(l.GetCaptureMode(), interceptionMode)
		if e.Bind == "" {
			e.Note = joinNotes(e.Note, NoteInstanceIPBind)
		}
		ingress = append(ingress, e)
	}
	return egress, ingress
}

// effectiveCapture resolves DEFAULT ("the default capture mode defined by
// the environment") against the proxy's interception mode. An explicit
// IPTABLES or NONE is kept as written.
func effectiveCapture(mode networkingv1alpha3.CaptureMode, interceptionMode string) (string, string) {
	if mode != networkingv1alpha3.CaptureMode_DEFAULT {
		return mode.String(), ""
	}
	if interceptionMode == InterceptionNone {
		return networkingv1alpha3.CaptureMode_NONE.String(), ""
	}
	return CaptureModeDefault, NoteEnvironmentCapture
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
