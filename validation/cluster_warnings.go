package validation

import (
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ClusterWarnings reports admitted-but-suspicious references to cluster state.
//
// Cluster state changes independently of the Sidecar (a namespace or
// ServiceEntry may be applied a moment later by the same GitOps sync), so
// these are warnings, never denials. Malformed hosts are skipped: the
// per-object rules report them.
func ClusterWarnings(s *sidecar.Sidecar, view clusterview.View) Warnings {
	var warnings Warnings
	egressPath := field.NewPath("spec", "egress")
	for i, listener := range s.Spec.GetEgress() {
		hostsPath := egressPath.Index(i).Child("hosts")
		for j, host := range listener.GetHosts() {
			if w, ok := clusterEgressHostWarning(hostsPath.Index(j), host, s.Namespace, view); ok {
				warnings = append(warnings, w)
			}
		}
	}

	ingressPath := field.NewPath("spec", "ingress")
	var policies []clusterview.PeerAuthentication
	for i, listener := range s.Spec.GetIngress() {
		if listener.GetTls() == nil || listener.GetPort() == nil {
			continue
		}
		if policies == nil {
			policies = clusterApplicablePeerAuthentications(s, view)
		}
		port := listener.GetPort().GetNumber()
		if clusterMTLSDisabled(policies, port) {
			continue
		}
		warnings = append(warnings, Warnf(ingressPath.Index(i).Child("tls"),
			"ingress listener on port %d terminates TLS with its own settings, but no PeerAuthentication that applies to this Sidecar's workloads (in namespace %q, or mesh-wide in %q) disables mutual TLS on port %d; the Sidecar reference pairs a custom ingress TLS listener with a PeerAuthentication whose portLevelMtls sets %d to DISABLE, otherwise Istio's mutual TLS takes precedence on that port",
			port, s.Namespace, view.RootNamespace(), port, port))
	}
	return warnings
}

// clusterEgressHostWarning checks one egress host "namespace/dnsName".
func clusterEgressHostWarning(path *field.Path, host, sidecarNamespace string, view clusterview.View) (Warning, bool) {
	ns, dnsName, ok := strings.Cut(host, "/")
	if !ok || ns == "" || dnsName == "" || strings.Contains(dnsName, "/") {
		return Warning{}, false
	}
	switch ns {
	case "~":
		// No namespace: nothing to look up.
		return Warning{}, false
	case ".":
		ns = sidecarNamespace
	case "*":
	default:
		if !view.NamespaceExists(ns) {
			return Warnf(path, "namespace %q does not exist, so %q imports nothing", ns, host), true
		}
	}
	if dnsName == "*" || strings.Contains(dnsName, "*") {
		// Wildcards select whatever exists; a malformed wildcard is the
		// per-object rules' concern.
		return Warning{}, false
	}
	if view.HostExists(ns, dnsName, sidecarNamespace) {
		return Warning{}, false
	}
	if ns == "*" {
		return Warnf(path, "no Service or ServiceEntry visible from namespace %q provides host %q in any namespace",
			sidecarNamespace, dnsName), true
	}
	return Warnf(path, "no Service or ServiceEntry in namespace %q visible from namespace %q provides host %q",
		ns, sidecarNamespace, dnsName), true
}

// clusterApplicablePeerAuthentications returns the PeerAuthentications that
// certainly apply to every workload s selects: namespace-wide ones in s's
// namespace, ones whose selector labels are all among s's workloadSelector
// labels, and the mesh-wide ones in the root namespace.
func clusterApplicablePeerAuthentications(s *sidecar.Sidecar, view clusterview.View) []clusterview.PeerAuthentication {
	selector := sidecar.Selector(s)
	out := []clusterview.PeerAuthentication{}
	for _, pa := range view.PeerAuthentications(s.Namespace) {
		if len(pa.Selector) == 0 || (len(selector) > 0 && conflictIsSubset(pa.Selector, selector)) {
			out = append(out, pa)
		}
	}
	if root := view.RootNamespace(); root != "" && root != s.Namespace {
		for _, pa := range view.PeerAuthentications(root) {
			if len(pa.Selector) == 0 {
				out = append(out, pa)
			}
		}
	}
	return out
}

// clusterMTLSDisabled reports whether one of policies disables mutual TLS on
// port: a port-level DISABLE, or a policy-level DISABLE the port does not
// override.
func clusterMTLSDisabled(policies []clusterview.PeerAuthentication, port uint32) bool {
	for _, pa := range policies {
		mode := pa.Mode
		if portMode, ok := pa.PortModes[port]; ok && portMode != "" && portMode != "UNSET" {
			mode = portMode
		}
		if mode == "DISABLE" {
			return true
		}
	}
	return false
}
