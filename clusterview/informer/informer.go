// Package informer is the server's clusterview.View: every read is served
// from controller-runtime's informer caches, indexed by namespace, so a
// decision costs work proportional to the namespace involved, not to the
// cluster. Objects are trimmed as they enter the cache (see Transform), so
// 100k pods cost their labels, not their specs.
package informer

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
)

// DefaultRootNamespace is Istio's default mesh root namespace.
const DefaultRootNamespace = mesh.DefaultRootNamespace

// hostIndex indexes ServiceEntries by the host names they provide, so
// "*/foo.example.com" is one lookup, not a scan of the cluster. Services need
// no index: their host names spell out namespace and name.
const hostIndex = "sidecar-webhook.io/host"

// PodGVK is the Pod kind, watched as metadata only.
var PodGVK = schema.GroupVersionKind{Version: "v1", Kind: "Pod"}

// ServiceGVK is the Service kind, watched as metadata only: a host check
// only asks whether a Service of that name exists.
var ServiceGVK = schema.GroupVersionKind{Version: "v1", Kind: "Service"}

// NewScheme returns a scheme with every type the view reads.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, networkingv1.AddToScheme, securityv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// PodMetadata returns an empty metadata-only Pod object for cache reads.
func PodMetadata() *metav1.PartialObjectMetadata { return metadataOf(PodGVK) }

func metadataOf(gvk schema.GroupVersionKind) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(gvk)
	return m
}

// kind names an informer's store. Two informers watch the same Go type
// (metadata-only Pods and Services), so the stores are keyed by kind.
type kind string

const (
	kindSidecar            kind = "Sidecar"
	kindPod                kind = "Pod"
	kindWorkloadEntry      kind = "WorkloadEntry"
	kindNamespace          kind = "Namespace"
	kindService            kind = "Service"
	kindServiceEntry       kind = "ServiceEntry"
	kindPeerAuthentication kind = "PeerAuthentication"
)

// watched are the objects the view reads, by the kind its store is known
// by; Register creates an informer for each before the cache starts. The
// ConfigMap and webhook configuration informers feed event handlers and
// keep no store of the view's.
func watched() []struct {
	kind kind
	obj  client.Object
} {
	return []struct {
		kind kind
		obj  client.Object
	}{
		{kindSidecar, &networkingv1.Sidecar{}}, {kindPod, PodMetadata()}, {kindWorkloadEntry, &networkingv1.WorkloadEntry{}},
		{"Deployment", &appsv1.Deployment{}}, {"StatefulSet", &appsv1.StatefulSet{}}, {"DaemonSet", &appsv1.DaemonSet{}},
		{"ReplicaSet", &appsv1.ReplicaSet{}}, {"Job", &batchv1.Job{}}, {"CronJob", &batchv1.CronJob{}},
		{kindNamespace, &corev1.Namespace{}}, {kindService, metadataOf(ServiceGVK)},
		{kindServiceEntry, &networkingv1.ServiceEntry{}}, {kindPeerAuthentication, &securityv1.PeerAuthentication{}},
		{"ConfigMap", &corev1.ConfigMap{}}, {"MutatingWebhookConfiguration", &admissionregistrationv1.MutatingWebhookConfiguration{}},
	}
}

// injectorSelector picks Istio's injector configurations among the
// cluster's MutatingWebhookConfigurations: revision and tag configurations
// both carry istio.io/rev.
var injectorSelector = labels.SelectorFromSet(nil).Add(mustRequirement(mesh.LabelRevision, selection.Exists, nil))

func mustRequirement(key string, op selection.Operator, values []string) labels.Requirement {
	r, err := labels.NewRequirement(key, op, values)
	if err != nil {
		panic(err)
	}
	return *r
}

// CacheOptions returns the options of the cache the view reads: every
// object trimmed on the way in (NewTransform), ConfigMaps limited to
// istiod's namespace (the mesh config) and webhook configurations to
// Istio's injectors (the webhook has no business caching every ConfigMap
// in the cluster). A read of a kind the view does not watch fails instead
// of silently starting an informer, and a typed read of a kind stored as a
// stub fails too (the cache names the stored type): nothing reads these
// stores but the view.
func CacheOptions(scheme *runtime.Scheme, istioNamespace string) cache.Options {
	if istioNamespace == "" {
		istioNamespace = mesh.DefaultIstioNamespace
	}
	return cache.Options{
		Scheme:           scheme,
		DefaultTransform: NewTransform(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{istioNamespace: {}}},
			&admissionregistrationv1.MutatingWebhookConfiguration{}: {Label: injectorSelector},
		},
		ReaderFailOnMissingInformer: true,
	}
}

// Options say where Istio's configuration lives.
type Options struct {
	// RootNamespace overrides the mesh config's rootNamespace when set.
	RootNamespace string
	// IstioNamespace is istiod's namespace, which holds the mesh config
	// (default istio-system).
	IstioNamespace string
	// Revision is the control-plane revision whose mesh config is read
	// (ConfigMap istio-<revision>); "" for the default revision (istio).
	Revision string
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
}

// View reads the caches. RootNamespace is the --root-namespace flag when set,
// else the live mesh config's rootNamespace, else istio-system.
type View struct {
	cache          cache.Cache
	rootOverride   string
	istioNamespace string
	meshConfigName string
	clusterDomain  string
	synced         atomic.Bool

	// stores are the informers' own stores by the type each watches:
	// reading a store by namespace hands out the cached objects themselves,
	// where a List through the cache first copies every object into a fresh
	// list (and could not hold the stubs Transform stores).
	stores map[kind]toolscache.Indexer
	// meshConfig is Istio's mesh config as read, kept current by an event
	// handler so that a request never parses YAML.
	meshConfig atomic.Pointer[mesh.Config]
	// injectors are Istio's injector webhooks, rebuilt by an event handler
	// whenever an injector configuration changes.
	injectors atomic.Pointer[mesh.Injectors]
	// workloadLists keeps each namespace's workloads converted, kept
	// current by event handlers (nil until Register).
	workloadLists *workloadLists
}

// New returns a View over c. Call Register before the cache starts, and
// WaitForSync after.
func New(c cache.Cache, opts Options) *View {
	ns := opts.IstioNamespace
	if ns == "" {
		ns = mesh.DefaultIstioNamespace
	}
	v := &View{cache: c, rootOverride: opts.RootNamespace, istioNamespace: ns, meshConfigName: mesh.MeshConfigMapName(opts.Revision),
		clusterDomain: cmp.Or(opts.ClusterDomain, mesh.DefaultClusterDomain)}
	defaults := mesh.DefaultInjectors()
	v.injectors.Store(&defaults)
	return v
}

// Register creates the informers and indexes (they start with the cache).
func (v *View) Register(ctx context.Context) error {
	if err := v.cache.IndexField(ctx, &networkingv1.ServiceEntry{}, hostIndex, func(o client.Object) []string {
		se, ok := o.(*networkingv1.ServiceEntry)
		if !ok {
			return nil
		}
		return append([]string(nil), se.Spec.GetHosts()...)
	}); err != nil {
		return fmt.Errorf("indexing ServiceEntries by host: %w", err)
	}
	for _, w := range watched() {
		obj := w.obj
		inf, err := v.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, ok := obj.(*corev1.ConfigMap); ok {
			// Only the mesh config is read, through this handler.
			if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc:    func(obj any) { v.meshConfigChanged(obj, false) },
				UpdateFunc: func(_, obj any) { v.meshConfigChanged(obj, false) },
				DeleteFunc: func(obj any) { v.meshConfigChanged(obj, true) },
			}); err != nil {
				return fmt.Errorf("following Istio's mesh config: %w", err)
			}
			continue
		}
		if _, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
			store := indexerOf(inf)
			if store == nil {
				return fmt.Errorf("watching %T: the cache does not expose the informer's store", obj)
			}
			rebuild := func(any) { v.injectorsChanged(store) }
			if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
				AddFunc:    rebuild,
				UpdateFunc: func(_, obj any) { rebuild(obj) },
				DeleteFunc: rebuild,
			}); err != nil {
				return fmt.Errorf("following Istio's injector configurations: %w", err)
			}
			continue
		}
		store := indexerOf(inf)
		if store == nil {
			return fmt.Errorf("watching %T: the cache does not expose the informer's store, which the view reads in place", obj)
		}
		if v.stores == nil {
			v.stores = map[kind]toolscache.Indexer{}
			v.workloadLists = newWorkloadLists()
		}
		v.stores[w.kind] = store
		if isWorkloadKind(w.kind) {
			if _, err := inf.AddEventHandler(v.workloadLists.handler()); err != nil {
				return fmt.Errorf("following %T changes: %w", obj, err)
			}
		}
	}
	return nil
}

// injectorsChanged rebuilds the injector webhooks from the informer's store
// (an event handler runs after the store has the change).
func (v *View) injectorsChanged(store toolscache.Store) {
	var configs []*admissionregistrationv1.MutatingWebhookConfiguration
	for _, obj := range store.List() {
		if cfg, ok := obj.(*admissionregistrationv1.MutatingWebhookConfiguration); ok {
			configs = append(configs, cfg)
		}
	}
	slices.SortFunc(configs, func(a, b *admissionregistrationv1.MutatingWebhookConfiguration) int {
		return strings.Compare(a.Name, b.Name)
	})
	inj := mesh.InjectorsFrom(configs)
	v.injectors.Store(&inj)
}

// Injectors implements clusterview.View.
func (v *View) Injectors() mesh.Injectors { return *v.injectors.Load() }

// InjectorSummary says in one line which injectors decide which pods get a
// proxy, for the readiness log.
func (v *View) InjectorSummary() string {
	inj := v.Injectors()
	if !inj.Installed {
		return "no Istio injector installed: pods are judged by the default injector selectors alone"
	}
	return fmt.Sprintf("Istio injector installed: %d pod webhook(s) decide which pods get a proxy", len(inj.Webhooks))
}

// WaitForSync blocks until every informer has synced (or ctx ends) and then
// marks the view ready. Until then Ready reports an error and the webhook
// refuses to decide.
func (v *View) WaitForSync(ctx context.Context) bool {
	if !v.cache.WaitForCacheSync(ctx) {
		return false
	}
	v.synced.Store(true)
	return true
}

// Ready reports nil once the caches have synced.
func (v *View) Ready() error {
	if !v.synced.Load() {
		return fmt.Errorf("the cluster-state caches have not synced yet")
	}
	return nil
}

// indexerOf returns the store behind a controller-runtime informer (a
// client-go shared informer), or nil when it has none to offer.
func indexerOf(inf cache.Informer) toolscache.Indexer {
	withStore, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
	if !ok {
		return nil
	}
	store := withStore.GetIndexer()
	if _, err := store.ByIndex(toolscache.NamespaceIndex, ""); err != nil {
		return nil // no namespace index: the view cannot read it
	}
	return store
}

// eachCached calls fn with every object of type T in namespace ("" for all
// namespaces) in the store of the informer watching kind k, in no
// particular order. Objects are read in place, without the copies a List
// through the cache makes: they are the cache's own and must not be
// modified. Objects of
// another type in the same store (the bare stubs Transform stores for owned
// ReplicaSets and Jobs) are skipped.
func eachCached[T client.Object](v *View, k kind, namespace string, fn func(T)) {
	store := v.stores[k]
	if store == nil {
		return // Register refuses to run without every store
	}
	var objs []any
	if namespace == "" {
		objs = store.List()
	} else {
		var err error
		if objs, err = store.ByIndex(toolscache.NamespaceIndex, namespace); err != nil {
			return
		}
	}
	for _, obj := range objs {
		if typed, ok := obj.(T); ok {
			fn(typed)
		}
	}
}

// list reads from the cache without deep copies: the view never modifies
// what it reads and converts objects into its own types at once.
func (v *View) list(list client.ObjectList, opts ...client.ListOption) bool {
	opts = append(opts, client.UnsafeDisableDeepCopy)
	return v.cache.List(context.Background(), list, opts...) == nil
}

// RootNamespace implements clusterview.View.
func (v *View) RootNamespace() string {
	if v.rootOverride != "" {
		return v.rootOverride
	}
	if cfg := v.meshConfig.Load(); cfg != nil && cfg.RootNamespace != "" {
		return cfg.RootNamespace
	}
	return DefaultRootNamespace
}

// MeshConfig is Istio's mesh config as last read (zero when absent or
// unreadable).
func (v *View) MeshConfig() mesh.Config {
	if cfg := v.meshConfig.Load(); cfg != nil {
		return *cfg
	}
	return mesh.Config{}
}

// meshConfigChanged records Istio's mesh config whenever the informer sees
// its ConfigMap change (or go away).
func (v *View) meshConfigChanged(obj any, deleted bool) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj, deleted = tombstone.Obj, true
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Namespace != v.istioNamespace || cm.Name != v.meshConfigName {
		return
	}
	var cfg mesh.Config
	if !deleted {
		// An unreadable mesh config counts as none, as before: istiod
		// would refuse it too.
		cfg, _ = mesh.ParseConfig(cm.Data[mesh.MeshConfigKey])
	}
	v.meshConfig.Store(&cfg)
}

// Sidecars implements clusterview.View.
func (v *View) Sidecars(namespace string) []clusterview.SidecarRef {
	// An empty namespace would list every namespace's objects; no caller
	// means that, and the in-memory view answers nothing for it too.
	if namespace == "" {
		return nil
	}
	var out []clusterview.SidecarRef
	eachCached(v, kindSidecar, namespace, func(s *networkingv1.Sidecar) {
		out = append(out, clusterview.RefOf(s))
	})
	slices.SortFunc(out, func(a, b clusterview.SidecarRef) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Workloads implements clusterview.View. The answer is in no particular
// order: sorting a namespace's hundreds of pods on every request costs more
// than the rules that read them, which sort what they report. It is kept
// between requests until the namespace's workloads change (workloadLists).
func (v *View) Workloads(namespace string) []clusterview.Workload {
	if namespace == "" {
		return nil
	}
	if v.workloadLists == nil {
		return v.readWorkloads(namespace)
	}
	return v.workloadLists.get(namespace, func() []clusterview.Workload { return v.readWorkloads(namespace) })
}

// readWorkloads converts namespace's workloads from the stores.
func (v *View) readWorkloads(namespace string) []clusterview.Workload {
	var out []clusterview.Workload
	eachCached(v, kindPod, namespace, func(p *metav1.PartialObjectMetadata) {
		out = append(out, clusterview.Workload{Kind: clusterview.KindPod, Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, Annotations: p.Annotations})
	})
	eachCached(v, kindWorkloadEntry, namespace, func(we *networkingv1.WorkloadEntry) {
		out = append(out, clusterview.Workload{Kind: clusterview.KindWorkloadEntry, Namespace: we.Namespace, Name: we.Name, Labels: we.Spec.GetLabels()})
	})
	for _, k := range workloadKinds {
		eachCached(v, k, namespace, func(w *workloadStub) {
			out = append(out, clusterview.Workload{Kind: string(k), Namespace: w.Namespace, Name: w.Name,
				Labels: w.TemplateLabels, Annotations: w.TemplateAnnotations, HostNetwork: w.HostNetwork})
		})
	}
	return out
}

// workloadKinds are the workload controllers whose pod templates a
// selector can select; the cache holds them as workloadStubs.
var workloadKinds = []kind{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// isWorkloadKind reports whether k's store holds workloads (Workloads reads
// it).
func isWorkloadKind(k kind) bool {
	return k == kindPod || k == kindWorkloadEntry || slices.Contains(workloadKinds, k)
}

func ownedBy(obj metav1.Object, kind string) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == kind {
			return true
		}
	}
	return false
}

// Namespaces implements clusterview.View.
func (v *View) Namespaces() []string {
	var out []string
	eachCached(v, kindNamespace, "", func(ns *corev1.Namespace) { out = append(out, ns.Name) })
	slices.Sort(out)
	return out
}

// NamespaceExists implements clusterview.View.
func (v *View) NamespaceExists(namespace string) bool {
	return v.NamespaceLabels(namespace) != nil
}

// NamespaceLabels implements clusterview.View. The namespace is read in
// place from the informer's store: the pod path asks for every pod.
func (v *View) NamespaceLabels(namespace string) map[string]string {
	store := v.stores[kindNamespace]
	if store == nil || namespace == "" {
		return nil
	}
	obj, exists, err := store.GetByKey(namespace)
	if err != nil || !exists {
		return nil
	}
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil
	}
	if ns.Labels == nil {
		return map[string]string{}
	}
	return ns.Labels
}

// HostExists implements clusterview.View.
func (v *View) HostExists(namespace, host, fromNamespace string) bool {
	if namespace == "" {
		return false
	}
	var opts []client.ListOption
	if namespace != "*" {
		opts = append(opts, client.InNamespace(namespace))
	}
	if name, ns, ok := clusterview.ServiceOfHost(host, v.clusterDomain); ok && (namespace == "*" || namespace == ns) && v.serviceExists(ns, name) {
		return true
	}
	// ServiceEntries: exact hosts through the index, then wildcard entries
	// ("*.example.com") for the host's parent domains, one lookup each.
	for _, candidate := range wildcardCandidates(host) {
		entries := &networkingv1.ServiceEntryList{}
		if !v.list(entries, append(opts, client.MatchingFields{hostIndex: candidate})...) {
			continue
		}
		for _, se := range entries.Items {
			if visibleFrom(se.Spec.GetExportTo(), se.Namespace, fromNamespace) {
				return true
			}
		}
	}
	return false
}

// wildcardCandidates lists host itself and the wildcard names that would
// provide it: a.b.c → a.b.c, *.b.c, *.c, *.
func wildcardCandidates(host string) []string {
	out := []string{host}
	rest := host
	for {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		out = append(out, "*."+rest)
	}
	return append(out, "*")
}

func visibleFrom(exportTo []string, namespace, from string) bool {
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		if e == "*" || e == from || (e == "." && namespace == from) {
			return true
		}
	}
	return false
}

// serviceExists looks one Service up by key in the metadata informer's
// store.
func (v *View) serviceExists(namespace, name string) bool {
	store := v.stores[kindService]
	if store == nil {
		return false // Register refuses to run without every store
	}
	_, exists, err := store.GetByKey(namespace + "/" + name)
	return err == nil && exists
}

// PeerAuthentications implements clusterview.View.
func (v *View) PeerAuthentications(namespace string) []clusterview.PeerAuthentication {
	if namespace == "" {
		return nil
	}
	var out []clusterview.PeerAuthentication
	eachCached(v, kindPeerAuthentication, namespace, func(pa *securityv1.PeerAuthentication) {
		out = append(out, clusterview.PeerAuthenticationOf(pa))
	})
	slices.SortFunc(out, func(a, b clusterview.PeerAuthentication) int { return strings.Compare(a.Name, b.Name) })
	return out
}

var _ clusterview.View = (*View)(nil)
