package validation

import (
	"k8s.io/apimachinery/pkg/labels"

	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
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
	// The root namespace's namespace-wide Sidecar is every namespace's
	// default, and istiod reads its "./" as each workload's own namespace
	// (push_context.go convertToSidecarScope with the proxy's namespace).
	meshDefault := !sidecar.HasSelector(s) && s.Namespace == view.RootNamespace()
	for i, listener := range s.Spec.GetEgress() {
		hostsPath := egressPath.Index(i).Child("hosts")
		for j, host := range listener.GetHosts() {
			if w, ok := clusterEgressHostWarning(hostsPath.Index(j), host, s.Namespace, meshDefault, view); ok {
				warnings = append(warnings, w)
			}
		}
	}

	ingressPath := field.NewPath("spec", "ingress")
	var targets []map[string]string
	for i, listener := range s.Spec.GetIngress() {
		if listener.GetTls() == nil || listener.GetPort() == nil {
			continue
		}
		if targets == nil {
			targets = clusterTLSTargets(s, view)
		}
		port := listener.GetPort().GetNumber()
		for _, labels := range targets {
			decision := composeMTLS(view, s.Namespace, labels, port)
			if decision.mode == mtlsDisable {
				continue
			}
			warnings = append(warnings, Warnf(rules.IngressTLSMutualTLS, ingressPath.Index(i).Child("tls"),
				"ingress listener on port %d terminates TLS with its own settings, but mutual TLS on port %d is %s for %s (%s; istiod composes PeerAuthentications workload over namespace over mesh, port-level settings only from the workload's); the Sidecar reference pairs a custom ingress TLS listener with a PeerAuthentication whose portLevelMtls sets %d to DISABLE, otherwise Istio's mutual TLS takes precedence on that port",
				port, port, decision.mode, clusterDescribeTarget(s, labels), decision.from, port))
			break
		}
	}
	return warnings
}

// clusterTLSTargets are the label sets whose mutual TLS mode an ingress TLS
// listener depends on: those of the workloads with a sidecar proxy the
// Sidecar applies to, or, when none exists yet, the fewest labels such a
// workload would carry (the selector's own; none for a namespace-wide
// Sidecar).
func clusterTLSTargets(s *sidecar.Sidecar, view clusterview.View) []map[string]string {
	selector := sidecar.Selector(s)
	selects := labels.SelectorFromValidatedSet(selector)
	judge := clusterview.NewProxyJudge(view)
	var out []map[string]string
	seen := map[string]bool{}
	for _, w := range view.Workloads(s.Namespace) {
		if (sidecar.HasSelector(s) && !selects.Matches(labels.Set(w.Labels))) || judge.ProxyOf(w).Kind != mesh.SidecarProxy {
			continue
		}
		if key := conflictFormatLabels(w.Labels); !seen[key] {
			seen[key] = true
			out = append(out, w.Labels)
		}
	}
	if len(out) == 0 {
		out = append(out, selector)
	}
	slices.SortFunc(out, func(a, b map[string]string) int {
		return strings.Compare(conflictFormatLabels(a), conflictFormatLabels(b))
	})
	return out
}

func clusterDescribeTarget(s *sidecar.Sidecar, workloadLabels map[string]string) string {
	if len(workloadLabels) == 0 {
		return "the workloads of namespace " + strconv.Quote(s.Namespace)
	}
	return "workloads labelled " + conflictFormatLabels(workloadLabels)
}

// mtlsDisable is the PeerAuthentication mode a custom ingress TLS listener
// needs on its port.
const mtlsDisable = "DISABLE"

type mtlsDecision struct {
	mode string
	// from names what decided, for the message.
	from string
}

// composeMTLS is the mutual TLS mode on port for a workload of namespace
// carrying labels, composed as istiod does (pilot/pkg/security/authn
// ComposePeerAuthentication): the oldest policy without selector in the
// root namespace (mesh), then the oldest without selector in the namespace,
// then the oldest with a selector matching the workload (not in the root
// namespace); each level with a mode overrides the one before, starting
// from PERMISSIVE; port-level settings come only from that workload-level
// policy, UNSET inheriting the composed mode.
func composeMTLS(view clusterview.View, namespace string, workloadLabels map[string]string, port uint32) mtlsDecision {
	root := view.RootNamespace()
	var meshPA, namespacePA, workloadPA *clusterview.PeerAuthentication
	older := func(cur *clusterview.PeerAuthentication, pa clusterview.PeerAuthentication) *clusterview.PeerAuthentication {
		if cur == nil || pa.Created.Before(cur.Created) {
			return &pa
		}
		return cur
	}
	for _, pa := range view.PeerAuthentications(root) {
		if len(pa.Selector) == 0 {
			meshPA = older(meshPA, pa)
		}
	}
	if namespace != root {
		for _, pa := range view.PeerAuthentications(namespace) {
			switch {
			case len(pa.Selector) == 0:
				namespacePA = older(namespacePA, pa)
			case labels.SelectorFromValidatedSet(pa.Selector).Matches(labels.Set(workloadLabels)):
				workloadPA = older(workloadPA, pa)
			}
		}
	}
	d := mtlsDecision{mode: "PERMISSIVE", from: "no PeerAuthentication sets a mode: Istio's default"}
	for _, level := range []struct {
		pa   *clusterview.PeerAuthentication
		name string
	}{{meshPA, "mesh-wide"}, {namespacePA, "namespace-wide"}, {workloadPA, "workload"}} {
		if level.pa != nil && level.pa.Mode != "" && level.pa.Mode != "UNSET" {
			d = mtlsDecision{mode: level.pa.Mode, from: fmt.Sprintf("%s PeerAuthentication %s/%s", level.name, level.pa.Namespace, level.pa.Name)}
		}
	}
	if workloadPA != nil {
		if portMode, ok := workloadPA.PortModes[port]; ok && portMode != "" && portMode != "UNSET" {
			d = mtlsDecision{mode: portMode, from: fmt.Sprintf("portLevelMtls of PeerAuthentication %s/%s", workloadPA.Namespace, workloadPA.Name)}
		}
	}
	return d
}

// clusterEgressHostWarning checks one egress host "namespace/dnsName", or
// an exclusion "~namespace/dnsName".
func clusterEgressHostWarning(path *field.Path, host, sidecarNamespace string, meshDefault bool, view clusterview.View) (Warning, bool) {
	ns, dnsName, ok := strings.Cut(host, "/")
	if !ok || ns == "" || dnsName == "" || strings.Contains(dnsName, "/") {
		return Warning{}, false
	}
	verb := "imports"
	if bare, excluded := strings.CutPrefix(ns, ExcludePrefix); excluded {
		verb = "excludes"
		// A bare ~ is the wildcard namespace.
		if ns = bare; ns == "" {
			ns = "*"
		}
	}
	switch ns {
	case ".":
		if meshDefault {
			// Each workload's own namespace: nothing to look up here.
			return Warning{}, false
		}
		ns = sidecarNamespace
	case "*":
	default:
		if !view.NamespaceExists(ns) {
			return Warnf(rules.HostNotInCluster, path, "namespace %q does not exist, so %q %s nothing", ns, host, verb), true
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
		return Warnf(rules.HostNotInCluster, path, "no Service or ServiceEntry visible from namespace %q provides host %q in any namespace, so %q %s nothing",
			sidecarNamespace, dnsName, host, verb), true
	}
	return Warnf(rules.HostNotInCluster, path, "no Service or ServiceEntry in namespace %q visible from namespace %q provides host %q, so %q %s nothing",
		ns, sidecarNamespace, dnsName, host, verb), true
}
