// Package mesh is a pure model of the decisions Istio makes about workloads
// that are not about one Sidecar: whether a workload runs a proxy at all (the
// injector's webhook selectors and its own veto), of which kind (sidecar,
// gateway or waypoint), whether it is in ambient mode, and the mesh-wide
// settings read from Istio's mesh config. No I/O: the cluster view hands it
// labels, annotations and the injector configurations it has read.
package mesh

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Labels and annotations Istio reads or writes, defined once for the project.
const (
	// LabelInjection is the namespace label istio-injection=enabled|disabled.
	LabelInjection = "istio-injection"
	// LabelRevision selects a control-plane revision (or tag), on a
	// namespace or a pod.
	LabelRevision = "istio.io/rev"
	// LabelTag marks the injector configuration of a revision tag.
	LabelTag = "istio.io/tag"
	// KeySidecarInject is the per-pod opt-in/opt-out, as a label (preferred)
	// or an annotation.
	KeySidecarInject = "sidecar.istio.io/inject"
	// LabelDataplaneMode puts a namespace (or pod) in ambient mode.
	LabelDataplaneMode = "istio.io/dataplane-mode"
	// LabelGatewayManaged marks the pods of gateways and waypoints that
	// istiod deploys itself (Gateway API); they run a proxy without being
	// injected.
	LabelGatewayManaged = "gateway.istio.io/managed"
	// LabelNamespaceName is set by the API server on every namespace; webhook
	// namespaceSelectors can match it.
	LabelNamespaceName = "kubernetes.io/metadata.name"

	// AnnotationStatus is written by the injector into every pod it
	// injects: proof of a proxy.
	AnnotationStatus = "sidecar.istio.io/status"
	// AnnotationTemplates names the injection templates; "gateway" makes the
	// proxy a gateway.
	AnnotationTemplates = "inject.istio.io/templates"
	// AnnotationAmbientRedirection is set by istio-cni on pods enrolled in
	// ambient mode.
	AnnotationAmbientRedirection = "ambient.istio.io/redirection"
	// AnnotationInterceptionMode overrides the proxy's interception mode.
	AnnotationInterceptionMode = "sidecar.istio.io/interceptionMode"

	// DataplaneModeAmbient is the value of LabelDataplaneMode for ambient.
	DataplaneModeAmbient = "ambient"
	// AmbientRedirectionEnabled is the value of AnnotationAmbientRedirection
	// on an enrolled pod.
	AmbientRedirectionEnabled = "enabled"
	// GatewayTemplate is the injection template of gateways.
	GatewayTemplate = "gateway"
)

// IgnoredNamespaces never get a proxy from the injector, whatever their
// labels (pkg/kube/inject IgnoredNamespaces).
var IgnoredNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}

// ProxyKind is the kind of Istio proxy a workload runs.
type ProxyKind string

const (
	// NoProxy: the workload has no Istio proxy (or only ztunnel, in ambient
	// mode); no Sidecar applies to it.
	NoProxy ProxyKind = ""
	// SidecarProxy: an injected sidecar, configured by a Sidecar resource.
	SidecarProxy ProxyKind = "sidecar"
	// GatewayProxy: a gateway or waypoint; istiod gives it its default scope
	// and never a Sidecar (push_context.go getSidecarScope, Router and
	// Waypoint).
	GatewayProxy ProxyKind = "gateway"
)

// Stage says how far a workload has come, which decides what is evidence of
// a proxy.
type Stage int

const (
	// StageTemplate is a pod template or a pod not yet created: the injector's
	// selectors and veto predict what it will do.
	StageTemplate Stage = iota
	// StageAdmission is a pod being created, as the webhooks after Istio's
	// injector see it: when an injector is installed it has already run
	// (its configurations sort before this project's), so its status
	// annotation is the whole answer.
	StageAdmission
	// StageRunning is a pod that exists. Injection happened at creation and
	// never changes: relabelling its namespace later adds or removes no
	// proxy. Without an installed injector, this project's own annotation,
	// written at admission, records the decision.
	StageRunning
)

// Workload is what the proxy decision reads of a pod (or pod template).
type Workload struct {
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
	HostNetwork bool
	Stage       Stage
	// RecordedKind is the proxy kind this project recorded on a running pod
	// at admission ("" if it recorded none); read only at StageRunning when no
	// injector is installed.
	RecordedKind ProxyKind
}

// Proxy is the decision and its reason, phrased for a message.
type Proxy struct {
	Kind ProxyKind
	// Ambient is set when the workload has no sidecar because it is in
	// ambient mode (its namespace, or istio-cni enrolled it).
	Ambient bool
	Reason  string
}

// ProxyOf decides whether w runs an Istio proxy, and of which kind, the way
// Istio's injector (pkg/kube/inject inject.go injectRequired, and the
// webhook selectors of the istio-discovery chart's mutatingwebhook.yaml) and
// istiod (proxy types) decide. namespaceLabels are the labels of w's
// namespace (nil if unknown).
func ProxyOf(inj Injectors, namespaceLabels map[string]string, w Workload) Proxy {
	if _, injected := w.Annotations[AnnotationStatus]; injected {
		return Proxy{Kind: kindOfInjected(w.Annotations), Reason: "injected by Istio (" + AnnotationStatus + ")"}
	}
	if v := w.Labels[LabelGatewayManaged]; v != "" {
		return Proxy{Kind: GatewayProxy, Reason: "gateway or waypoint deployed by istiod (" + LabelGatewayManaged + "=" + v + ")"}
	}
	if w.Stage != StageTemplate && inj.Installed {
		return notInjected(namespaceLabels, w, "not injected: Istio's injector is installed and the pod carries no "+AnnotationStatus)
	}
	if w.Stage == StageRunning && w.RecordedKind != NoProxy {
		return Proxy{Kind: w.RecordedKind, Reason: "recorded when the pod was admitted"}
	}
	if w.HostNetwork {
		return notInjected(namespaceLabels, w, "hostNetwork pods are never injected")
	}
	if slices.Contains(IgnoredNamespaces, w.Namespace) {
		return notInjected(namespaceLabels, w, "namespace "+w.Namespace+" is never injected")
	}
	hook, ok := inj.match(w.Namespace, namespaceLabels, w.Labels)
	if !ok {
		return notInjected(namespaceLabels, w, "no injector webhook selects the pod ("+inj.describe()+")")
	}
	if required, why := injectRequired(w.Labels, w.Annotations); !required {
		return notInjected(namespaceLabels, w, why)
	}
	return Proxy{Kind: kindOfInjected(w.Annotations), Reason: "injected by " + hook}
}

func notInjected(namespaceLabels map[string]string, w Workload, reason string) Proxy {
	p := Proxy{Kind: NoProxy, Reason: reason}
	switch {
	case w.Annotations[AnnotationAmbientRedirection] == AmbientRedirectionEnabled:
		p.Ambient = true
		p.Reason = "in ambient mode (" + AnnotationAmbientRedirection + "=" + AmbientRedirectionEnabled + ")"
	case NamespaceAmbient(namespaceLabels):
		p.Ambient = true
		p.Reason = "namespace " + w.Namespace + " is in ambient mode (" + LabelDataplaneMode + "=" + DataplaneModeAmbient + ") and the pod is not injected"
	}
	return p
}

// kindOfInjected reads the injection templates, applied in order, each
// later one overriding the proxy container's arguments: the last of them
// that sets the proxy's type decides (the gateway template runs
// `pilot-agent proxy router`; sidecar and grpc-agent make a
// sidecar). Templates this project does not know leave the type as it was.
func kindOfInjected(annotations map[string]string) ProxyKind {
	kind := SidecarProxy
	for _, t := range strings.Split(annotations[AnnotationTemplates], ",") {
		switch strings.TrimSpace(t) {
		case GatewayTemplate:
			kind = GatewayProxy
		case "sidecar", "grpc-agent":
			kind = SidecarProxy
		}
	}
	return kind
}

// injectRequired is the injector's own decision once a webhook selected the
// pod, with the injector's default configuration (policy enabled, no
// never/always selectors): the sidecar.istio.io/inject label, else the
// annotation of that name; only "true" and "false" count, anything else
// falls back to the policy.
func injectRequired(podLabels, annotations map[string]string) (bool, string) {
	value, source := annotations[KeySidecarInject], "annotation"
	if v, ok := podLabels[KeySidecarInject]; ok {
		value, source = v, "label"
	}
	if value == "false" {
		return false, "not injected: " + source + " " + KeySidecarInject + "=false"
	}
	return true, ""
}

// NamespaceAmbient reports whether a namespace is in ambient mode: labelled
// istio.io/dataplane-mode=ambient and not labelled for sidecar injection
// (pkg/config/analysis/analyzers/util NamespaceInAmbientMode).
func NamespaceAmbient(namespaceLabels map[string]string) bool {
	if namespaceLabels[LabelInjection] == "enabled" || namespaceLabels[LabelRevision] != "" {
		return false
	}
	return namespaceLabels[LabelDataplaneMode] == DataplaneModeAmbient
}

// namespaceSelectorLabels adds the label the API server sets on every
// namespace, which webhook namespaceSelectors may match, when a caller's copy
// lacks it (namespaces read from files).
func namespaceSelectorLabels(namespace string, namespaceLabels map[string]string) labels.Set {
	if _, ok := namespaceLabels[LabelNamespaceName]; ok || namespace == "" {
		return labels.Set(namespaceLabels)
	}
	out := make(labels.Set, len(namespaceLabels)+1)
	for k, v := range namespaceLabels {
		out[k] = v
	}
	out[LabelNamespaceName] = namespace
	return out
}

// ProxyAnnotation reports whether an annotation key takes part in the proxy
// decision; caches keep only those.
func ProxyAnnotation(key string) bool {
	switch key {
	case AnnotationStatus, AnnotationTemplates, KeySidecarInject, AnnotationAmbientRedirection, AnnotationInterceptionMode:
		return true
	}
	return false
}
