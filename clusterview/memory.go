package clusterview

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Memory is a View held in memory, filled object by object through its Add
// methods. The offline checker builds one from YAML files and tests from
// literals. All methods are safe for concurrent use; readers get fresh slices,
// but the label maps inside them are shared and must not be modified.
//
// Objects are keyed by namespace/name (and kind for workloads), so adding an
// object again replaces the earlier version. Adding an object never creates
// its namespace: only AddNamespace and EnsureNamespace do, so a missing
// Namespace manifest shows up as a missing namespace.
type Memory struct {
	rootNamespace string

	mu sync.RWMutex
	// namespaces maps a namespace name to its labels (never nil once present).
	namespaces map[string]map[string]string
	// sidecars maps namespace, then name, to the Sidecar.
	sidecars map[string]map[string]SidecarRef
	// workloads maps namespace, then kind + "/" + name, to the workload.
	workloads map[string]map[string]Workload
	// services holds the namespace/name of every Service.
	services map[string]bool
	// clusterDomain is the cluster's DNS domain (mesh.DefaultClusterDomain
	// unless set).
	clusterDomain string
	// serviceEntries maps a namespace/name key to the ServiceEntry's hosts
	// and visibility.
	serviceEntries map[string]memoryServiceEntry
	// peerAuthentications maps namespace, then name, to the policy.
	peerAuthentications map[string]map[string]PeerAuthentication
	// webhookConfigurations maps a name to a MutatingWebhookConfiguration.
	webhookConfigurations map[string]*admissionregistrationv1.MutatingWebhookConfiguration
	// injectors is computed from webhookConfigurations on first use.
	injectors *mesh.Injectors
}

type memoryServiceEntry struct {
	namespace string
	hosts     []string
	// exportTo is nil when the entry is visible from every namespace;
	// otherwise the set of namespaces it is visible from ("." resolved).
	exportTo map[string]bool
}

// NewMemory returns an empty view whose mesh root namespace is rootNamespace.
func NewMemory(rootNamespace string) *Memory {
	return &Memory{
		rootNamespace:       rootNamespace,
		namespaces:          map[string]map[string]string{},
		sidecars:            map[string]map[string]SidecarRef{},
		workloads:           map[string]map[string]Workload{},
		services:            map[string]bool{},
		clusterDomain:       mesh.DefaultClusterDomain,
		serviceEntries:      map[string]memoryServiceEntry{},
		peerAuthentications: map[string]map[string]PeerAuthentication{},

		webhookConfigurations: map[string]*admissionregistrationv1.MutatingWebhookConfiguration{},
	}
}

// RefOf extracts what the cross-object rules need from a Sidecar. A Sidecar
// with a workloadSelector but no labels keeps a non-nil empty selector, so it
// is still told apart from a namespace-wide one.
func RefOf(s *sidecar.Sidecar) SidecarRef {
	ref := SidecarRef{
		Namespace:       s.Namespace,
		Name:            s.Name,
		Created:         s.CreationTimestamp.Time,
		ResourceVersion: s.ResourceVersion,
	}
	// Shared, not copied: refs are read-only like every answer of a View,
	// and the server builds one per cached Sidecar on every request.
	ref.Selector = sidecar.Selector(s)
	return ref
}

// AddNamespace records a namespace and its labels.
func (m *Memory) AddNamespace(ns *corev1.Namespace) {
	labels := maps.Clone(ns.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.namespaces[ns.Name] = labels
}

// EnsureNamespace records a namespace without labels unless it is already
// known (its labels are then kept).
func (m *Memory) EnsureNamespace(name string) {
	m.EnsureNamespaceLabelled(name, nil)
}

// EnsureNamespaceLabelled records a namespace with labels unless it is
// already known (its labels are then kept).
func (m *Memory) EnsureNamespaceLabelled(name string, labels map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.namespaces[name]; !ok {
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		m.namespaces[name] = labels
	}
}

// PutSidecar adds a Sidecar or replaces the one with the same namespace/name.
func (m *Memory) PutSidecar(ref SidecarRef) {
	if ref.Selector != nil {
		ref.Selector = maps.Clone(ref.Selector)
		if ref.Selector == nil {
			ref.Selector = map[string]string{}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byName := m.sidecars[ref.Namespace]
	if byName == nil {
		byName = map[string]SidecarRef{}
		m.sidecars[ref.Namespace] = byName
	}
	byName[ref.Name] = ref
}

// DeleteSidecar removes a Sidecar; removing one that is absent does nothing.
func (m *Memory) DeleteSidecar(namespace, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sidecars[namespace], name)
}

// AddPod records a Pod that exists in the cluster, selected by its own
// labels.
func (m *Memory) AddPod(pod *corev1.Pod) {
	m.addWorkload(KindPod, pod.ObjectMeta, pod.ObjectMeta, pod.Spec.HostNetwork)
}

// AddPodManifest records a Pod read from a manifest: not created yet, so
// Istio's injector has not seen it (Workload.Manifest).
func (m *Memory) AddPodManifest(pod *corev1.Pod) {
	m.addWorkload(KindPod, pod.ObjectMeta, pod.ObjectMeta, pod.Spec.HostNetwork)
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workloads[pod.Namespace][KindPod+"/"+pod.Name]
	w.Manifest = true
	m.workloads[pod.Namespace][KindPod+"/"+pod.Name] = w
}

// AddWorkloadEntry records a WorkloadEntry, selected by its spec.labels (the
// labels a Sidecar's workloadSelector matches for a VM).
func (m *Memory) AddWorkloadEntry(we *networkingv1.WorkloadEntry) {
	m.addWorkload(KindWorkloadEntry, we.ObjectMeta, metav1.ObjectMeta{Labels: we.Spec.GetLabels()}, false)
}

// AddDeployment records a Deployment's pod template, so a conflict is found
// before any of its pods exists.
func (m *Memory) AddDeployment(d *appsv1.Deployment) {
	m.addTemplate("Deployment", d.ObjectMeta, d.Spec.Template)
}

// AddStatefulSet records a StatefulSet's pod template.
func (m *Memory) AddStatefulSet(s *appsv1.StatefulSet) {
	m.addTemplate("StatefulSet", s.ObjectMeta, s.Spec.Template)
}

// AddDaemonSet records a DaemonSet's pod template.
func (m *Memory) AddDaemonSet(d *appsv1.DaemonSet) {
	m.addTemplate("DaemonSet", d.ObjectMeta, d.Spec.Template)
}

// AddReplicaSet records a ReplicaSet's pod template, unless a Deployment owns
// it: the Deployment already stands for that template.
func (m *Memory) AddReplicaSet(rs *appsv1.ReplicaSet) {
	if memoryOwnedBy(rs.ObjectMeta, "Deployment") {
		return
	}
	m.addTemplate("ReplicaSet", rs.ObjectMeta, rs.Spec.Template)
}

// AddJob records a Job's pod template, unless a CronJob owns it: the CronJob
// already stands for that template.
func (m *Memory) AddJob(j *batchv1.Job) {
	if memoryOwnedBy(j.ObjectMeta, "CronJob") {
		return
	}
	m.addTemplate("Job", j.ObjectMeta, j.Spec.Template)
}

// AddCronJob records the pod template of a CronJob's job template.
func (m *Memory) AddCronJob(cj *batchv1.CronJob) {
	m.addTemplate("CronJob", cj.ObjectMeta, cj.Spec.JobTemplate.Spec.Template)
}

// AddMutatingWebhookConfiguration records a MutatingWebhookConfiguration;
// Istio's injector configurations among them decide which pods get a proxy.
func (m *Memory) AddMutatingWebhookConfiguration(cfg *admissionregistrationv1.MutatingWebhookConfiguration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.webhookConfigurations[cfg.Name] = cfg.DeepCopy()
	m.injectors = nil
}

func memoryOwnedBy(meta metav1.ObjectMeta, kind string) bool {
	for _, o := range meta.OwnerReferences {
		if o.Kind == kind {
			return true
		}
	}
	return false
}

func (m *Memory) addTemplate(kind string, meta metav1.ObjectMeta, template corev1.PodTemplateSpec) {
	m.addWorkload(kind, meta, template.ObjectMeta, template.Spec.HostNetwork)
}

// addWorkload records a workload named by meta, selected and judged by the
// labels and annotations of selected (the object's own, or its pod
// template's).
func (m *Memory) addWorkload(kind string, meta, selected metav1.ObjectMeta, hostNetwork bool) {
	w := Workload{
		Kind:        kind,
		Namespace:   meta.Namespace,
		Name:        meta.Name,
		Labels:      maps.Clone(selected.Labels),
		Annotations: KeepAnnotations(selected.Annotations),
		HostNetwork: hostNetwork,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byKey := m.workloads[w.Namespace]
	if byKey == nil {
		byKey = map[string]Workload{}
		m.workloads[w.Namespace] = byKey
	}
	byKey[kind+"/"+w.Name] = w
}

// SetClusterDomain sets the cluster's DNS domain, which Service host names
// end in (name.namespace.svc.DOMAIN).
func (m *Memory) SetClusterDomain(domain string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clusterDomain = domain
}

// AddService records a Service: it provides name.namespace.svc.DOMAIN and
// name.namespace.svc.
func (m *Memory) AddService(svc *corev1.Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.services[svc.Namespace+"/"+svc.Name] = true
}

// AddServiceEntry records a ServiceEntry's hosts and the namespaces it is
// exported to: an empty exportTo or "*" means every namespace, "." its own
// namespace, "~" none, and other values name namespaces.
func (m *Memory) AddServiceEntry(se *networkingv1.ServiceEntry) {
	entry := memoryServiceEntry{
		namespace: se.Namespace,
		hosts:     slices.Clone(se.Spec.GetHosts()),
	}
	if exportTo := se.Spec.GetExportTo(); len(exportTo) > 0 && !slices.Contains(exportTo, "*") {
		entry.exportTo = map[string]bool{}
		for _, ns := range exportTo {
			switch ns {
			case ".":
				entry.exportTo[se.Namespace] = true
			case "~":
				// Exported nowhere: contributes no namespace.
			default:
				entry.exportTo[ns] = true
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.serviceEntries[se.Namespace+"/"+se.Name] = entry
}

// AddPeerAuthentication records a PeerAuthentication. A policy without a
// selector, or with a selector that has no labels, is namespace-wide (mesh-wide
// in the root namespace), as Istio treats it; its Selector is then nil.
func (m *Memory) AddPeerAuthentication(pa *securityv1.PeerAuthentication) {
	p := PeerAuthenticationOf(pa)
	m.mu.Lock()
	defer m.mu.Unlock()
	byName := m.peerAuthentications[p.Namespace]
	if byName == nil {
		byName = map[string]PeerAuthentication{}
		m.peerAuthentications[p.Namespace] = byName
	}
	byName[p.Name] = p
}

// PeerAuthenticationOf extracts what the rules need from a PeerAuthentication.
func PeerAuthenticationOf(pa *securityv1.PeerAuthentication) PeerAuthentication {
	p := PeerAuthentication{
		Namespace: pa.Namespace,
		Name:      pa.Name,
		Mode:      pa.Spec.GetMtls().GetMode().String(),
		Created:   pa.CreationTimestamp.Time,
	}
	if labels := pa.Spec.GetSelector().GetMatchLabels(); len(labels) > 0 {
		p.Selector = maps.Clone(labels)
	}
	if portLevel := pa.Spec.GetPortLevelMtls(); len(portLevel) > 0 {
		p.PortModes = make(map[uint32]string, len(portLevel))
		for port, mtls := range portLevel {
			p.PortModes[port] = mtls.GetMode().String()
		}
	}
	return p
}

// RootNamespace implements View.
func (m *Memory) RootNamespace() string { return m.rootNamespace }

// Sidecars implements View; the result is sorted by name.
func (m *Memory) Sidecars(namespace string) []SidecarRef {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := slices.Collect(maps.Values(m.sidecars[namespace]))
	slices.SortFunc(out, func(a, b SidecarRef) int {
		return strings.Compare(a.Key(), b.Key())
	})
	return out
}

// Workloads implements View; the result is sorted by kind, then name.
func (m *Memory) Workloads(namespace string) []Workload {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := slices.Collect(maps.Values(m.workloads[namespace]))
	SortWorkloads(out)
	return out
}

// Namespaces implements View.
func (m *Memory) Namespaces() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.namespaces))
}

// NamespaceExists implements View.
func (m *Memory) NamespaceExists(namespace string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.namespaces[namespace]
	return ok
}

// NamespaceLabels implements View: nil when the namespace does not exist, an
// empty map when it exists without labels.
func (m *Memory) NamespaceLabels(namespace string) map[string]string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.namespaces[namespace]
}

// HostExists implements View. Services are visible from every namespace. A
// ServiceEntry host "*.example.com" provides any name under example.com, as
// it does for Istio's own host matching.
func (m *Memory) HostExists(namespace, host, fromNamespace string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if name, ns, ok := ServiceOfHost(host, m.clusterDomain); ok && (namespace == "*" || namespace == ns) && m.services[ns+"/"+name] {
		return true
	}
	for _, se := range m.serviceEntries {
		if namespace != "*" && namespace != se.namespace {
			continue
		}
		if se.exportTo != nil && !se.exportTo[fromNamespace] {
			continue
		}
		for _, h := range se.hosts {
			if memoryHostProvides(h, host) {
				return true
			}
		}
	}
	return false
}

// memoryHostProvides reports whether a registry host (possibly a wildcard
// "*.example.com" or "*") provides the exact name host.
func memoryHostProvides(registryHost, host string) bool {
	if registryHost == host || registryHost == "*" {
		return true
	}
	if suffix, ok := strings.CutPrefix(registryHost, "*"); ok && strings.HasPrefix(suffix, ".") {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return false
}

// PeerAuthentications implements View; the result is sorted by name.
func (m *Memory) PeerAuthentications(namespace string) []PeerAuthentication {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := slices.Collect(maps.Values(m.peerAuthentications[namespace]))
	slices.SortFunc(out, func(a, b PeerAuthentication) int {
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Injectors implements View.
func (m *Memory) Injectors() mesh.Injectors {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.injectors == nil {
		configs := make([]*admissionregistrationv1.MutatingWebhookConfiguration, 0, len(m.webhookConfigurations))
		for _, name := range slices.Sorted(maps.Keys(m.webhookConfigurations)) {
			configs = append(configs, m.webhookConfigurations[name])
		}
		inj := mesh.InjectorsFrom(configs)
		m.injectors = &inj
	}
	return *m.injectors
}

var _ View = (*Memory)(nil)
