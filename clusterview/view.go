// Package clusterview is the read-only picture of cluster state that the
// cross-object rules (validation) and pod resolution read. The server fills it
// from informers, the offline checker from files, tests from literals; the
// rules never know which.
package clusterview

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
)

// SidecarRef is what the cross-object rules need to know about an existing
// Sidecar: identity, age (Istio's tie-breaker) and its selector.
type SidecarRef struct {
	Namespace string
	Name      string
	// Created orders Sidecars the way Istio does when several apply: oldest
	// first, then by name.
	Created time.Time
	// Selector is nil for a namespace-wide Sidecar (no workloadSelector).
	Selector map[string]string
	// ResourceVersion identifies the stored version, when known; the
	// confirming read uses it to tell a current cache entry from a stale one.
	ResourceVersion string
}

// Key is the namespace/name of the Sidecar.
func (s SidecarRef) Key() string { return s.Namespace + "/" + s.Name }

// Workload is anything a workloadSelector can select: a Pod, a WorkloadEntry,
// or the pod template of a workload controller (so a conflict is caught before
// any pod exists).
type Workload struct {
	// Kind is Pod, WorkloadEntry, Deployment, StatefulSet, DaemonSet, Job,
	// CronJob or ReplicaSet.
	Kind      string
	Namespace string
	Name      string
	Labels    map[string]string
	// Annotations are the pod's (or pod template's) annotations that decide
	// whether it runs a proxy (mesh.ProxyAnnotation) and this project's own;
	// the rest is not kept.
	Annotations map[string]string
	// HostNetwork is the pod's (or template's) spec.hostNetwork, when known:
	// the server caches pods as metadata only and leaves it false for them.
	HostNetwork bool
	// Manifest marks a Pod read from a file, not yet created: it is judged
	// like a template, before Istio's injector has seen it.
	Manifest bool
}

// ProxyOf decides whether a workload runs an Istio proxy, and which kind,
// against the view's injectors and the labels of its namespace (see
// ProxyJudge).
func ProxyOf(view View, w Workload) mesh.Proxy {
	return NewProxyJudge(view).ProxyOf(w)
}

// ProxyJudge decides, for many workloads, whether each runs an Istio proxy:
// it reads the view's injectors once and each namespace's labels once. A
// WorkloadEntry stands for a VM or remote workload whose proxy istiod
// configures as a sidecar; a controller's template is judged as the pods it
// will create; a Pod as the pod it is (a Pod read from a manifest as a
// template).
type ProxyJudge struct {
	view            View
	injectors       *mesh.Injectors
	namespaceLabels map[string]map[string]string
}

// NewProxyJudge returns a judge reading view. It is not safe for concurrent
// use; make one per decision.
func NewProxyJudge(view View) *ProxyJudge {
	return &ProxyJudge{view: view}
}

// ProxyOf judges one workload.
func (j *ProxyJudge) ProxyOf(w Workload) mesh.Proxy {
	if w.Kind == KindWorkloadEntry {
		return mesh.Proxy{Kind: mesh.SidecarProxy, Reason: "a WorkloadEntry's proxy is a sidecar"}
	}
	mw := mesh.Workload{
		Namespace:   w.Namespace,
		Labels:      w.Labels,
		Annotations: w.Annotations,
		HostNetwork: w.HostNetwork,
		Stage:       mesh.StageTemplate,
	}
	if w.Kind == KindPod && !w.Manifest {
		mw.Stage = mesh.StageRunning
		mw.RecordedKind = RecordedKind(w.Annotations)
	}
	if j.injectors == nil {
		inj := j.view.Injectors()
		j.injectors = &inj
	}
	labels, ok := j.namespaceLabels[w.Namespace]
	if !ok {
		labels = j.view.NamespaceLabels(w.Namespace)
		if j.namespaceLabels == nil {
			j.namespaceLabels = map[string]map[string]string{}
		}
		j.namespaceLabels[w.Namespace] = labels
	}
	return mesh.ProxyOf(*j.injectors, labels, mw)
}

// Kinds of Workload that are not workload controllers.
const (
	KindPod           = "Pod"
	KindWorkloadEntry = "WorkloadEntry"
)

// RecordedKind reads back the proxy kind this project recorded on a pod: the
// scope annotation is present only on pods judged to run a proxy, and says
// "gateway" on gateways. NoProxy when absent.
func RecordedKind(annotations map[string]string) mesh.ProxyKind {
	scope, ok := annotations[AnnotationSidecarScope]
	switch {
	case !ok:
		return mesh.NoProxy
	case scope == string(mesh.GatewayProxy):
		return mesh.GatewayProxy
	}
	return mesh.SidecarProxy
}

// The annotations this project writes on pods (resolve.AnnotationsFor writes
// them; the cluster view reads them back).
const (
	// OwnAnnotationPrefix marks every annotation this project owns.
	OwnAnnotationPrefix = "sidecar-webhook.io/"
	// AnnotationSidecarScope is workload, namespace, mesh, none or gateway,
	// present only on pods that run a proxy.
	AnnotationSidecarScope = OwnAnnotationPrefix + "sidecar-scope"
)

// KeepAnnotations returns the annotations a Workload keeps: those that decide
// whether it runs a proxy, and this project's own. Nil when none.
func KeepAnnotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if !mesh.ProxyAnnotation(k) && !strings.HasPrefix(k, OwnAnnotationPrefix) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if k == mesh.AnnotationStatus {
			// Only its presence matters; its JSON would cost every pod
			// hundreds of bytes in the cache.
			v = ""
		}
		out[k] = v
	}
	return out
}

// SortWorkloads orders workloads by kind, then namespace and name: the order
// in which messages name them.
func SortWorkloads(ws []Workload) {
	slices.SortFunc(ws, func(a, b Workload) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
}

// String names the workload for denial messages: "Deployment prod/ratings".
func (w Workload) String() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// PeerAuthentication is the part of an Istio PeerAuthentication that decides
// whether a custom ingress TLS listener can work: mutual TLS must be disabled
// for its port.
type PeerAuthentication struct {
	Namespace string
	Name      string
	// Selector is nil for a namespace-wide (or, in the root namespace,
	// mesh-wide) policy.
	Selector map[string]string
	// Mode is the policy-level mTLS mode (UNSET, DISABLE, PERMISSIVE, STRICT).
	Mode string
	// PortModes maps a port number to its port-level mTLS mode.
	PortModes map[uint32]string
	// Created orders policies of one level: istiod takes the oldest.
	Created time.Time
}

// View is the cluster state the rules read. Implementations must be safe for
// concurrent use and must return data the caller may not modify.
type View interface {
	// RootNamespace is the mesh root namespace (Istio's rootNamespace).
	RootNamespace() string
	// Sidecars lists the Sidecars in a namespace.
	Sidecars(namespace string) []SidecarRef
	// Workloads lists the selectable workloads in a namespace, in no
	// particular order (see SortWorkloads). The list may be shared with
	// other callers: read it, never modify it.
	Workloads(namespace string) []Workload
	// Namespaces lists every namespace, sorted.
	Namespaces() []string
	// NamespaceExists reports whether a namespace exists.
	NamespaceExists(namespace string) bool
	// NamespaceLabels returns a namespace's labels (nil if it does not exist).
	NamespaceLabels(namespace string) map[string]string
	// HostExists reports whether an exact host name is provided by a Service
	// (as name.namespace.svc.<domain>, or a shorter form of it) or a
	// ServiceEntry host visible from namespace fromNamespace. namespace "*"
	// means any namespace.
	HostExists(namespace, host, fromNamespace string) bool
	// PeerAuthentications lists the PeerAuthentications in a namespace.
	PeerAuthentications(namespace string) []PeerAuthentication
	// Injectors are Istio's injector webhooks as installed, or the default
	// injector selectors when none is (mesh.InjectorsFrom).
	Injectors() mesh.Injectors
}

// ServiceOfHost reads a Service's name and namespace from one of its host
// names: name.namespace.svc.DOMAIN or name.namespace.svc. Neither name nor
// namespace can contain a dot, so the reading is unambiguous.
func ServiceOfHost(host, clusterDomain string) (name, namespace string, ok bool) {
	rest, found := strings.CutSuffix(host, ".svc."+clusterDomain)
	if !found {
		if rest, found = strings.CutSuffix(host, ".svc"); !found {
			return "", "", false
		}
	}
	name, namespace, found = strings.Cut(rest, ".")
	if !found || name == "" || namespace == "" || strings.Contains(namespace, ".") {
		return "", "", false
	}
	return name, namespace, true
}
