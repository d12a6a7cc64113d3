//go:build controlplane

package informer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// pollTimeout bounds how long an assertion waits for the caches to catch up
// with the API server (two shared cores, so be generous).
const pollTimeout = 30 * time.Second

// testEnv is the one control plane, cache and view every test of this file
// (and confirm_test.go) shares: starting a control plane costs seconds.
type testEnv struct {
	ctx     context.Context
	cancel  context.CancelFunc
	cluster *localcluster.Cluster
	// direct reads and writes the API server without a cache.
	direct client.Client
	cache  cache.Cache
	view   *informer.View
	// readyBeforeSync and readyAfterSync are view.Ready() just before the
	// cache started and just after WaitForSync.
	readyBeforeSync, readyAfterSync error
	startup                         time.Duration
	cacheErr                        chan error
}

var shared struct {
	once sync.Once
	env  *testEnv
	err  error
}

func TestMain(m *testing.M) {
	crlog.SetLogger(logr.Discard())
	code := m.Run()
	if shared.env != nil {
		shared.env.stop()
	}
	os.Exit(code)
}

// sharedEnv returns the shared control plane, starting it on first use. It
// skips the test when the control-plane binaries are missing, unless
// CI=true, where that is a failure.
func sharedEnv(t *testing.T) *testEnv {
	t.Helper()
	if err := localcluster.CheckAssets(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (build them into bin/)", err)
		}
		t.Skipf("skipping: %v (build them into bin/ or set %s; under CI=true this fails)", err, localcluster.EnvAssets)
	}
	shared.once.Do(func() { shared.env, shared.err = startEnv() })
	if shared.err != nil {
		t.Fatalf("starting the shared control plane: %v", shared.err)
	}
	return shared.env
}

func startEnv() (_ *testEnv, retErr error) {
	begin := time.Now()
	crdFile, err := crds.IstioCRDs()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &testEnv{ctx: ctx, cancel: cancel, cacheErr: make(chan error, 1)}
	defer func() {
		if retErr != nil {
			e.stop()
		}
	}()
	if e.cluster, err = localcluster.Start(ctx, localcluster.Options{CRDPaths: []string{crdFile}}); err != nil {
		return nil, err
	}
	scheme, err := informer.NewScheme()
	if err != nil {
		return nil, err
	}
	if e.direct, err = client.New(e.cluster.Config, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if e.cache, err = cache.New(e.cluster.Config, informer.CacheOptions(scheme, "")); err != nil {
		return nil, err
	}
	e.view = informer.New(e.cache, informer.Options{})
	if err := e.view.Register(ctx); err != nil {
		return nil, err
	}
	e.readyBeforeSync = e.view.Ready()
	go func() { e.cacheErr <- e.cache.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, 90*time.Second)
	defer syncCancel()
	if !e.view.WaitForSync(syncCtx) {
		select {
		case err := <-e.cacheErr:
			return nil, fmt.Errorf("cache stopped before syncing: %v", err)
		default:
		}
		return nil, errors.New("caches did not sync within 90s")
	}
	e.readyAfterSync = e.view.Ready()
	e.startup = time.Since(begin)
	return e, nil
}

func (e *testEnv) stop() {
	e.cancel()
	if e.cluster != nil {
		_ = e.cluster.Stop()
	}
}

// diffErr turns a cmp.Diff into an error for eventually.
// ignoreResourceVersion leaves out what the API server assigns: fixtures
// cannot know it in advance.
var ignoreResourceVersion = cmpopts.IgnoreFields(clusterview.SidecarRef{}, "ResourceVersion")

// ignorePeerAuthCreated leaves out creation times, which the API server
// sets; TestViewReadsCluster checks they are read.
var ignorePeerAuthCreated = cmpopts.IgnoreFields(clusterview.PeerAuthentication{}, "Created")

func diffErr(want, got any, opts ...cmp.Option) error {
	opts = append(opts, ignoreResourceVersion, ignorePeerAuthCreated)
	if d := cmp.Diff(want, got, opts...); d != "" {
		return fmt.Errorf("(-want +got):\n%s", d)
	}
	return nil
}

func (e *testEnv) create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := e.direct.Create(e.ctx, obj); err != nil {
		t.Fatalf("creating %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// ensureNamespace creates a namespace unless it exists.
func (e *testEnv) ensureNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := e.direct.Create(e.ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

func meta(ns, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/app:1"}}}
}

func template(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
}

func jobTemplate(labels map[string]string) corev1.PodTemplateSpec {
	t := template(labels)
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return t
}

func selectorFor(labels map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: labels}
}

func ownerRef(apiVersion, kind string, owner client.Object) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID()}
}

func newSidecar(ns, name string, selector map[string]string, withEmptySelector bool) *networkingv1.Sidecar {
	s := &networkingv1.Sidecar{
		ObjectMeta: meta(ns, name, nil),
		Spec: networkingv1alpha3.Sidecar{
			Egress: []*networkingv1alpha3.IstioEgressListener{{Hosts: []string{"./*"}}},
		},
	}
	if selector != nil || withEmptySelector {
		s.Spec.WorkloadSelector = &networkingv1alpha3.WorkloadSelector{Labels: selector}
	}
	return s
}

func newServiceEntry(ns, name string, hosts, exportTo []string) *networkingv1.ServiceEntry {
	return &networkingv1.ServiceEntry{
		ObjectMeta: meta(ns, name, nil),
		Spec: networkingv1alpha3.ServiceEntry{
			Hosts:      hosts,
			ExportTo:   exportTo,
			Location:   networkingv1alpha3.ServiceEntry_MESH_EXTERNAL,
			Resolution: networkingv1alpha3.ServiceEntry_NONE,
			Ports:      []*networkingv1alpha3.ServicePort{{Number: 443, Name: "tls", Protocol: "TLS"}},
		},
	}
}

func newService(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: meta(ns, name, map[string]string{"app": name}),
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
}

// fixture is what seed created: two namespaces, a (full of objects) and b
// (a Service and a Sidecar), and what the view should report for them.
type fixture struct {
	a, b string
	// workloadsA is Workloads(a), sorted by kind then name.
	workloadsA []clusterview.Workload
	// sidecarsA is Sidecars(a), sorted by name.
	sidecarsA []clusterview.SidecarRef
	// peerAuthsA is PeerAuthentications(a), sorted by name.
	peerAuthsA []clusterview.PeerAuthentication
	// hosts are host names worth asking HostExists about.
	hosts []string
}

// seed creates, under the namespace prefix p, one of every object kind the
// view reads.
func seed(t *testing.T, e *testEnv, p string) fixture {
	t.Helper()
	f := fixture{a: p + "-a", b: p + "-b"}
	a, b := f.a, f.b
	e.ensureNamespace(t, a, map[string]string{"team": "a", "istio-injection": "enabled"})
	e.ensureNamespace(t, b, nil)

	ratings := map[string]string{"app": "ratings", "version": "v1"}

	// Pods: one with labels and a mix of annotations, one without labels.
	pod := &corev1.Pod{ObjectMeta: meta(a, "ratings-pod", ratings), Spec: podSpec()}
	pod.Annotations = map[string]string{
		clusterview.OwnAnnotationPrefix + "applied": "sidecar-a",
		"other.example.com/big":                     strings.Repeat("x", 1000),
		// Only its presence is kept: the injector's JSON is long.
		"sidecar.istio.io/status": `{"containers":["istio-proxy"],"revision":"default"}`,
	}
	e.create(t, pod)
	e.create(t, &corev1.Pod{ObjectMeta: meta(a, "bare-pod", nil), Spec: podSpec()})

	// Workload controllers. No controllers run in this control plane, so
	// the ReplicaSet and Job "created" by the Deployment and CronJob are
	// created here, with owner references set by hand.
	dep := &appsv1.Deployment{
		ObjectMeta: meta(a, "ratings", map[string]string{"meta-only": "ignored"}),
		Spec:       appsv1.DeploymentSpec{Selector: selectorFor(ratings), Template: template(ratings)},
	}
	e.create(t, dep)
	ownedRS := &appsv1.ReplicaSet{
		ObjectMeta: meta(a, "ratings-7c9f", ratings),
		Spec:       appsv1.ReplicaSetSpec{Selector: selectorFor(ratings), Template: template(ratings)},
	}
	ownedRS.OwnerReferences = []metav1.OwnerReference{ownerRef("apps/v1", "Deployment", dep)}
	e.create(t, ownedRS)
	bareRSLabels := map[string]string{"app": "bare"}
	e.create(t, &appsv1.ReplicaSet{
		ObjectMeta: meta(a, "bare-rs", nil),
		Spec:       appsv1.ReplicaSetSpec{Selector: selectorFor(bareRSLabels), Template: template(bareRSLabels)},
	})
	nightly := map[string]string{"app": "nightly"}
	cj := &batchv1.CronJob{
		ObjectMeta: meta(a, "nightly", nil),
		Spec: batchv1.CronJobSpec{
			Schedule:    "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTemplate(nightly)}},
		},
	}
	e.create(t, cj)
	ownedJob := &batchv1.Job{ObjectMeta: meta(a, "nightly-123", nil), Spec: batchv1.JobSpec{Template: jobTemplate(nightly)}}
	ownedJob.OwnerReferences = []metav1.OwnerReference{ownerRef("batch/v1", "CronJob", cj)}
	e.create(t, ownedJob)
	job := &batchv1.Job{ObjectMeta: meta(a, "migrate", nil), Spec: batchv1.JobSpec{Template: jobTemplate(map[string]string{"app": "migrate"})}}
	e.create(t, job) // the API server adds job-name/controller-uid labels to its template
	db := map[string]string{"app": "db"}
	e.create(t, &appsv1.StatefulSet{
		ObjectMeta: meta(a, "db", nil),
		Spec:       appsv1.StatefulSetSpec{Selector: selectorFor(db), Template: template(db)},
	})
	agent := map[string]string{"app": "agent"}
	e.create(t, &appsv1.DaemonSet{
		ObjectMeta: meta(a, "agent", nil),
		Spec:       appsv1.DaemonSetSpec{Selector: selectorFor(agent), Template: template(agent)},
	})
	e.create(t, &networkingv1.WorkloadEntry{
		ObjectMeta: meta(a, "vm-1", map[string]string{"meta-only": "ignored"}),
		Spec:       networkingv1alpha3.WorkloadEntry{Address: "10.0.0.5", Labels: map[string]string{"app": "legacy"}},
	})
	// A workload in b, which must not show up in a.
	e.create(t, &corev1.Pod{ObjectMeta: meta(b, "ratings-pod", ratings), Spec: podSpec()})

	f.workloadsA = []clusterview.Workload{
		{Kind: "CronJob", Namespace: a, Name: "nightly", Labels: nightly},
		{Kind: "DaemonSet", Namespace: a, Name: "agent", Labels: agent},
		{Kind: "Deployment", Namespace: a, Name: "ratings", Labels: ratings},
		{Kind: "Job", Namespace: a, Name: "migrate", Labels: job.Spec.Template.Labels},
		{Kind: "Pod", Namespace: a, Name: "bare-pod"},
		{Kind: "Pod", Namespace: a, Name: "ratings-pod", Labels: ratings, Annotations: map[string]string{clusterview.OwnAnnotationPrefix + "applied": "sidecar-a", "sidecar.istio.io/status": ""}},
		{Kind: "ReplicaSet", Namespace: a, Name: "bare-rs", Labels: bareRSLabels},
		{Kind: "StatefulSet", Namespace: a, Name: "db", Labels: db},
		{Kind: "WorkloadEntry", Namespace: a, Name: "vm-1", Labels: map[string]string{"app": "legacy"}},
	}

	// Sidecars: namespace-wide, with a selector, with an empty selector.
	// Created out of name order.
	sRatings := newSidecar(a, "ratings", map[string]string{"app": "ratings"}, false)
	sDefault := newSidecar(a, "default", nil, false)
	sEmpty := newSidecar(a, "empty-selector", nil, true)
	for _, s := range []*networkingv1.Sidecar{sRatings, sDefault, sEmpty} {
		e.create(t, s)
	}
	e.create(t, newSidecar(b, "default", nil, false))
	f.sidecarsA = []clusterview.SidecarRef{
		{Namespace: a, Name: "default", Created: sDefault.CreationTimestamp.Time},
		{Namespace: a, Name: "empty-selector", Created: sEmpty.CreationTimestamp.Time, Selector: map[string]string{}},
		{Namespace: a, Name: "ratings", Created: sRatings.CreationTimestamp.Time, Selector: map[string]string{"app": "ratings"}},
	}

	// Services and ServiceEntries.
	e.create(t, newService(a, "ratings"))
	e.create(t, newService(b, "reviews"))
	e.create(t, newServiceEntry(a, "local-only", []string{p + "-local.example.com"}, []string{"."}))
	e.create(t, newServiceEntry(a, "to-b", []string{p + "-to-b.example.com"}, []string{b}))
	e.create(t, newServiceEntry(a, "hidden", []string{p + "-hidden.example.com"}, []string{"~"}))
	e.create(t, newServiceEntry(a, "wild", []string{"*." + p + "-wild.example.com", p + "-exact.example.com"}, nil))
	e.create(t, newServiceEntry(b, "everywhere", []string{p + "-everywhere.example.com"}, []string{"*"}))
	f.hosts = []string{
		"ratings." + a + ".svc.cluster.local", "ratings." + a + ".svc", "ratings." + a, "ratings",
		"reviews." + b + ".svc.cluster.local", "reviews." + b + ".svc", "reviews." + a + ".svc.cluster.local",
		p + "-local.example.com", p + "-to-b.example.com", p + "-hidden.example.com",
		"x." + p + "-wild.example.com", "x.y." + p + "-wild.example.com", p + "-wild.example.com",
		"*." + p + "-wild.example.com", p + "-exact.example.com", p + "-everywhere.example.com",
		"nothing.example.com",
	}

	// PeerAuthentications.
	e.create(t, &securityv1.PeerAuthentication{
		ObjectMeta: meta(a, "ns-wide", nil),
		Spec: securityv1beta1.PeerAuthentication{
			Mtls: &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_STRICT},
		},
	})
	e.create(t, &securityv1.PeerAuthentication{
		ObjectMeta: meta(a, "ratings", nil),
		Spec: securityv1beta1.PeerAuthentication{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "ratings"}},
			Mtls:     &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE},
			PortLevelMtls: map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{
				8080: {Mode: securityv1beta1.PeerAuthentication_MutualTLS_DISABLE},
				8443: {Mode: securityv1beta1.PeerAuthentication_MutualTLS_STRICT},
			},
		},
	})
	e.create(t, &securityv1.PeerAuthentication{ObjectMeta: meta(a, "bare", nil)})
	f.peerAuthsA = []clusterview.PeerAuthentication{
		{Namespace: a, Name: "bare", Mode: "UNSET"},
		{Namespace: a, Name: "ns-wide", Mode: "STRICT"},
		{
			Namespace: a, Name: "ratings", Mode: "PERMISSIVE",
			Selector:  map[string]string{"app": "ratings"},
			PortModes: map[uint32]string{8080: "DISABLE", 8443: "STRICT"},
		},
	}
	return f
}

func TestReady(t *testing.T) {
	e := sharedEnv(t)
	t.Logf("shared control plane and caches ready in %s", e.startup.Round(time.Millisecond))
	if e.readyBeforeSync == nil {
		t.Error("Ready() before the caches started = nil, want an error")
	}
	if e.readyAfterSync != nil {
		t.Errorf("Ready() after WaitForSync = %v, want nil", e.readyAfterSync)
	}
	if err := e.view.Ready(); err != nil {
		t.Errorf("Ready() = %v, want nil", err)
	}

	// A view over a cache that never starts: WaitForSync gives up with its
	// context and the view stays not ready.
	scheme, err := informer.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(e.cluster.Config, informer.CacheOptions(scheme, ""))
	if err != nil {
		t.Fatal(err)
	}
	v := informer.New(c, informer.Options{})
	if err := v.Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 200*time.Millisecond)
	defer cancel()
	if v.WaitForSync(ctx) {
		t.Error("WaitForSync on a cache that never started = true, want false")
	}
	if v.Ready() == nil {
		t.Error("Ready() after a failed WaitForSync = nil, want an error")
	}
}

func TestViewReadsCluster(t *testing.T) {
	e := sharedEnv(t)
	f := seed(t, e, "view")
	v := e.view

	t.Run("Workloads", func(t *testing.T) {
		testenv.Eventually(t, pollTimeout, "Workloads(a)", func(context.Context) error { return diffErr(f.workloadsA, sortedWorkloads(v.Workloads(f.a))) })
		want := []clusterview.Workload{{Kind: "Pod", Namespace: f.b, Name: "ratings-pod", Labels: map[string]string{"app": "ratings", "version": "v1"}}}
		testenv.Eventually(t, pollTimeout, "Workloads(b)", func(context.Context) error { return diffErr(want, sortedWorkloads(v.Workloads(f.b))) })
		if got := v.Workloads("no-such-namespace"); len(got) != 0 {
			t.Errorf("Workloads(missing) = %v, want none", got)
		}
	})

	t.Run("Sidecars", func(t *testing.T) {
		testenv.Eventually(t, pollTimeout, "Sidecars(a)", func(context.Context) error { return diffErr(f.sidecarsA, v.Sidecars(f.a)) })
		for _, s := range v.Sidecars(f.a) {
			if s.Created.IsZero() {
				t.Errorf("Sidecar %s has no creation time", s.Key())
			}
		}
		testenv.Eventually(t, pollTimeout, "Sidecars(b)", func(context.Context) error {
			got := v.Sidecars(f.b)
			if len(got) != 1 || got[0].Name != "default" || got[0].Selector != nil {
				return fmt.Errorf("got %+v, want only the namespace-wide default", got)
			}
			return nil
		})
		if got := v.Sidecars("no-such-namespace"); len(got) != 0 {
			t.Errorf("Sidecars(missing) = %v, want none", got)
		}
	})

	t.Run("Namespaces", func(t *testing.T) {
		testenv.Eventually(t, pollTimeout, "Namespaces()", func(context.Context) error {
			got := v.Namespaces()
			if !slices.IsSorted(got) {
				return fmt.Errorf("not sorted: %v", got)
			}
			for _, want := range []string{"default", "kube-system", f.a, f.b} {
				if !slices.Contains(got, want) {
					return fmt.Errorf("%v lacks %s", got, want)
				}
			}
			return nil
		})
		wantA := map[string]string{"team": "a", "istio-injection": "enabled", "kubernetes.io/metadata.name": f.a}
		if diff := cmp.Diff(wantA, v.NamespaceLabels(f.a)); diff != "" {
			t.Errorf("NamespaceLabels(a) (-want +got):\n%s", diff)
		}
		if got := v.NamespaceLabels(f.b); got["kubernetes.io/metadata.name"] != f.b {
			t.Errorf("NamespaceLabels(b) = %v, want the API server's name label", got)
		}
		if got := v.NamespaceLabels("no-such-namespace"); got != nil {
			t.Errorf("NamespaceLabels(missing) = %v, want nil", got)
		}
		if !v.NamespaceExists(f.a) || !v.NamespaceExists("default") {
			t.Error("NamespaceExists = false for an existing namespace")
		}
		if v.NamespaceExists("no-such-namespace") {
			t.Error("NamespaceExists(missing) = true")
		}

		// A namespace created later, with no labels of its own, shows up.
		late := "view-late"
		e.ensureNamespace(t, late, nil)
		testenv.Eventually(t, pollTimeout, "late namespace", func(context.Context) error {
			if !slices.Contains(v.Namespaces(), late) || !v.NamespaceExists(late) {
				return fmt.Errorf("%s not listed", late)
			}
			return diffErr(map[string]string{"kubernetes.io/metadata.name": late}, v.NamespaceLabels(late))
		})
	})

	t.Run("HostExists", func(t *testing.T) {
		a, b := f.a, f.b
		svc := "ratings." + a + ".svc.cluster.local"
		cases := []struct {
			namespace, host, from string
			want                  bool
		}{
			// Services: both name forms, in their namespace or "*", from
			// anywhere; not in another namespace, not shorter forms.
			{a, svc, a, true},
			{a, svc, b, true},
			{"*", svc, "elsewhere", true},
			{a, "ratings." + a + ".svc", a, true},
			{"*", "ratings." + a + ".svc", b, true},
			{b, svc, a, false},
			{b, "ratings." + a + ".svc", b, false},
			{a, "ratings." + a, a, false},
			{a, "ratings", a, false},
			{a, "reviews." + a + ".svc.cluster.local", a, false},
			{b, "reviews." + b + ".svc.cluster.local", a, true},
			// exportTo ".": only from its own namespace.
			{a, "view-local.example.com", a, true},
			{"*", "view-local.example.com", a, true},
			{a, "view-local.example.com", b, false},
			{"*", "view-local.example.com", b, false},
			// exportTo a named namespace.
			{a, "view-to-b.example.com", b, true},
			{a, "view-to-b.example.com", a, false},
			// exportTo "~": nowhere.
			{"*", "view-hidden.example.com", a, false},
			// Wildcard entry (no exportTo: visible everywhere).
			{a, "a.view-wild.example.com", a, true},
			{"*", "a.view-wild.example.com", b, true},
			{"*", "a.b.view-wild.example.com", "elsewhere", true},
			{"*", "view-wild.example.com", a, false},
			{b, "a.view-wild.example.com", b, false},
			{"*", "view-exact.example.com", b, true},
			{"*", "x.view-exact.example.com", b, false},
			// exportTo "*".
			{"*", "view-everywhere.example.com", a, true},
			{a, "view-everywhere.example.com", a, false},
			{"*", "nothing.example.com", a, false},
		}
		testenv.Eventually(t, pollTimeout, "HostExists", func(context.Context) error {
			var bad []string
			for _, tc := range cases {
				if got := v.HostExists(tc.namespace, tc.host, tc.from); got != tc.want {
					bad = append(bad, fmt.Sprintf("HostExists(%q, %q, %q) = %v, want %v", tc.namespace, tc.host, tc.from, got, tc.want))
				}
			}
			if len(bad) > 0 {
				return errors.New(strings.Join(bad, "\n"))
			}
			return nil
		})
	})

	t.Run("PeerAuthentications", func(t *testing.T) {
		testenv.Eventually(t, pollTimeout, "PeerAuthentications(a)", func(context.Context) error { return diffErr(f.peerAuthsA, v.PeerAuthentications(f.a)) })
		for _, pa := range v.PeerAuthentications(f.a) {
			if pa.Created.IsZero() {
				t.Errorf("PeerAuthentication %s/%s: no creation time (istiod takes the oldest of a level)", pa.Namespace, pa.Name)
			}
		}
		if got := v.PeerAuthentications(f.b); len(got) != 0 {
			t.Errorf("PeerAuthentications(b) = %v, want none", got)
		}
	})

	t.Run("CachedObjectsAreTrimmed", func(t *testing.T) {
		key := client.ObjectKey{Namespace: f.a, Name: "ratings-pod"}
		testenv.Eventually(t, pollTimeout, "cached pod", func(context.Context) error {
			p := informer.PodMetadata()
			if err := e.cache.Get(e.ctx, key, p); err != nil {
				return err
			}
			// Our own annotations, and the injector's status reduced to its presence.
			want := map[string]string{clusterview.OwnAnnotationPrefix + "applied": "sidecar-a", "sidecar.istio.io/status": ""}
			if err := diffErr(want, p.Annotations); err != nil {
				return fmt.Errorf("annotations %w", err)
			}
			if err := diffErr(map[string]string{"app": "ratings", "version": "v1"}, p.Labels); err != nil {
				return fmt.Errorf("labels %w", err)
			}
			if p.ManagedFields != nil {
				return fmt.Errorf("managedFields kept: %v", p.ManagedFields)
			}
			return nil
		})

		// What the pod informer actually stores: metadata only, trimmed.
		inf, err := e.cache.GetInformer(e.ctx, informer.PodMetadata())
		if err != nil {
			t.Fatal(err)
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			t.Fatalf("pod informer is a %T, not a SharedIndexInformer", inf)
		}
		obj, exists, err := sii.GetStore().GetByKey(key.String())
		if err != nil || !exists {
			t.Fatalf("pod %s not in the informer's store (exists=%v, err=%v)", key, exists, err)
		}
		stored, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			t.Fatalf("stored pod is a %T, want *PartialObjectMetadata (no spec)", obj)
		}
		for k := range stored.Annotations {
			if !strings.HasPrefix(k, clusterview.OwnAnnotationPrefix) && !mesh.ProxyAnnotation(k) {
				t.Errorf("stored pod keeps annotation %q", k)
			}
		}

		// A Deployment is stored as a stub: identity and template labels
		// (which Workloads reports, checked above), no pod spec.
		depInf, err := e.cache.GetInformer(e.ctx, &appsv1.Deployment{})
		if err != nil {
			t.Fatal(err)
		}
		depObj, exists, err := depInf.(toolscache.SharedIndexInformer).GetStore().GetByKey(f.a + "/ratings")
		if err != nil || !exists {
			t.Fatalf("Deployment %s/ratings not in the informer's store (exists=%v, err=%v)", f.a, exists, err)
		}
		if _, whole := depObj.(*appsv1.Deployment); whole || !strings.HasSuffix(fmt.Sprintf("%T", depObj), "workloadStub") {
			t.Errorf("stored Deployment is a %T, want the view's stub", depObj)
		}

		// ConfigMaps are cached only in istio-system.
		if err := e.cache.Get(e.ctx, client.ObjectKey{Namespace: f.a, Name: "istio"}, &corev1.ConfigMap{}); err == nil {
			t.Error("cache served a ConfigMap outside istio-system")
		}
	})

	t.Run("Updates", func(t *testing.T) {
		// Relabelling a pod and deleting a Sidecar reach the view.
		pod := &corev1.Pod{}
		if err := e.direct.Get(e.ctx, client.ObjectKey{Namespace: f.a, Name: "bare-pod"}, pod); err != nil {
			t.Fatal(err)
		}
		pod.Labels = map[string]string{"app": "relabelled"}
		if err := e.direct.Update(e.ctx, pod); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, pollTimeout, "relabelled pod", func(context.Context) error {
			for _, w := range v.Workloads(f.a) {
				if w.Kind == "Pod" && w.Name == "bare-pod" {
					return diffErr(map[string]string{"app": "relabelled"}, w.Labels)
				}
			}
			return errors.New("bare-pod missing")
		})
		// A pod created, then deleted, in a namespace whose workloads the
		// view has already listed (and keeps between requests).
		late := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.a, Name: "late-pod", Labels: map[string]string{"app": "late"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app"}}}}
		hasLatePod := func(want bool) func(context.Context) error {
			return func(context.Context) error {
				found := slices.ContainsFunc(v.Workloads(f.a), func(w clusterview.Workload) bool { return w.Kind == "Pod" && w.Name == "late-pod" })
				if found != want {
					return fmt.Errorf("late-pod listed: %v, want %v", found, want)
				}
				return nil
			}
		}
		e.create(t, late)
		testenv.Eventually(t, pollTimeout, "created pod", hasLatePod(true))
		if err := e.direct.Delete(e.ctx, late); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, pollTimeout, "deleted pod", hasLatePod(false))
		if err := e.direct.Delete(e.ctx, newSidecar(f.a, "empty-selector", nil, false)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, pollTimeout, "deleted Sidecar", func(context.Context) error {
			var names []string
			for _, s := range v.Sidecars(f.a) {
				names = append(names, s.Name)
			}
			return diffErr([]string{"default", "ratings"}, names)
		})
	})
}

func TestRootNamespace(t *testing.T) {
	e := sharedEnv(t)
	v := e.view
	if got := v.RootNamespace(); got != informer.DefaultRootNamespace {
		t.Fatalf("RootNamespace() without mesh config = %q, want %q", got, informer.DefaultRootNamespace)
	}
	custom := informer.New(e.cache, informer.Options{RootNamespace: "custom"})
	if got := custom.RootNamespace(); got != "custom" {
		t.Errorf("override RootNamespace() = %q, want custom", got)
	}

	// An "istio" ConfigMap outside istio-system is not the mesh config.
	e.ensureNamespace(t, "root-other", nil)
	e.create(t, &corev1.ConfigMap{
		ObjectMeta: meta("root-other", mesh.MeshConfigMapName(""), nil),
		Data:       map[string]string{mesh.MeshConfigKey: "rootNamespace: wrong\n"},
	})

	e.ensureNamespace(t, mesh.DefaultIstioNamespace, nil)
	cm := &corev1.ConfigMap{
		ObjectMeta: meta(mesh.DefaultIstioNamespace, mesh.MeshConfigMapName(""), nil),
		Data:       map[string]string{mesh.MeshConfigKey: "rootNamespace: istio-config\n"},
	}
	e.create(t, cm)
	t.Cleanup(func() {
		_ = e.direct.Delete(context.Background(), cm)
		// Leave the default behind for the tests that follow.
		testenv.Eventually(t, pollTimeout, "mesh config removed", func(context.Context) error {
			if got := v.RootNamespace(); got != informer.DefaultRootNamespace {
				return fmt.Errorf("RootNamespace() = %q", got)
			}
			return nil
		})
	})
	want := func(root string) func(context.Context) error {
		return func(context.Context) error {
			if got := v.RootNamespace(); got != root {
				return fmt.Errorf("RootNamespace() = %q, want %q", got, root)
			}
			return nil
		}
	}
	testenv.Eventually(t, pollTimeout, "mesh config created", want("istio-config"))
	if got := custom.RootNamespace(); got != "custom" {
		t.Errorf("override RootNamespace() with a mesh config = %q, want custom", got)
	}
	for _, tc := range []struct {
		name  string
		root  string
		mutor func(*corev1.ConfigMap)
	}{
		{"updated", "mesh-root", func(c *corev1.ConfigMap) {
			c.Data[mesh.MeshConfigKey] = "defaultConfig:\n  discoveryAddress: istiod:15012\nrootNamespace: mesh-root\n"
		}},
		{"rootNamespace removed", informer.DefaultRootNamespace, func(c *corev1.ConfigMap) {
			c.Data[mesh.MeshConfigKey] = "accessLogFile: /dev/stdout\n"
		}},
		{"set again", "istio-config-2", func(c *corev1.ConfigMap) {
			c.Data[mesh.MeshConfigKey] = "rootNamespace: istio-config-2\n"
		}},
		{"unreadable YAML", informer.DefaultRootNamespace, func(c *corev1.ConfigMap) {
			c.Data[mesh.MeshConfigKey] = "rootNamespace: [unterminated\n"
		}},
		{"mesh key missing", informer.DefaultRootNamespace, func(c *corev1.ConfigMap) {
			c.Data = map[string]string{"meshNetworks": "networks: {}\n"}
		}},
		{"back", "istio-config", func(c *corev1.ConfigMap) {
			c.Data = map[string]string{mesh.MeshConfigKey: "rootNamespace: istio-config\n"}
		}},
	} {
		if err := e.direct.Get(e.ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
			t.Fatal(err)
		}
		tc.mutor(cm)
		if err := e.direct.Update(e.ctx, cm); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		testenv.Eventually(t, pollTimeout, "mesh config "+tc.name, want(tc.root))
	}

	// LoadMemory reads the same mesh config; an override wins there too.
	m, err := informer.LoadMemory(e.ctx, e.direct, informer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.RootNamespace(); got != "istio-config" {
		t.Errorf("LoadMemory RootNamespace() = %q, want istio-config", got)
	}
	if m, err = informer.LoadMemory(e.ctx, e.direct, informer.Options{RootNamespace: "custom"}); err != nil {
		t.Fatal(err)
	}
	if got := m.RootNamespace(); got != "custom" {
		t.Errorf("LoadMemory override RootNamespace() = %q, want custom", got)
	}
}

// TestRevisionedMeshConfig: with --istio-revision the view reads that
// revision's mesh config (ConfigMap istio-<rev>) and its interception mode,
// and ignores the default revision's.
func TestRevisionedMeshConfig(t *testing.T) {
	e := sharedEnv(t)
	e.ensureNamespace(t, "istio-canary-ns", nil)
	for name, root := range map[string]string{"istio": "default-root", "istio-canary": "canary-root"} {
		e.create(t, &corev1.ConfigMap{
			ObjectMeta: meta("istio-canary-ns", name, nil),
			Data:       map[string]string{mesh.MeshConfigKey: "rootNamespace: " + root + "\ndefaultConfig:\n  interceptionMode: NONE\n"},
		})
	}
	scheme, err := informer.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(e.cluster.Config, informer.CacheOptions(scheme, "istio-canary-ns"))
	if err != nil {
		t.Fatal(err)
	}
	v := informer.New(c, informer.Options{IstioNamespace: "istio-canary-ns", Revision: "canary"})
	if err := v.Register(e.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	t.Cleanup(cancel)
	go func() { _ = c.Start(ctx) }()
	if !v.WaitForSync(ctx) {
		t.Fatal("cache did not sync")
	}
	testenv.Eventually(t, pollTimeout, "revisioned mesh config", func(context.Context) error {
		if got := v.RootNamespace(); got != "canary-root" {
			return fmt.Errorf("RootNamespace() = %q, want canary-root", got)
		}
		if got := v.MeshConfig().InterceptionMode; got != mesh.InterceptionNone {
			return fmt.Errorf("MeshConfig().InterceptionMode = %q, want NONE", got)
		}
		return nil
	})
	m, err := informer.LoadMemory(e.ctx, e.direct, informer.Options{IstioNamespace: "istio-canary-ns", Revision: "canary"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.RootNamespace(); got != "canary-root" {
		t.Errorf("LoadMemory RootNamespace() = %q, want canary-root", got)
	}
}

// TestViewMatchesMemory checks the informer view against the reference
// semantics: a clusterview.Memory loaded from the same API server must
// answer every View method identically.
func TestViewMatchesMemory(t *testing.T) {
	e := sharedEnv(t)
	f1 := seed(t, e, "eq1")
	f2 := seed(t, e, "eq2")
	// A mesh-wide Sidecar in the root namespace.
	e.ensureNamespace(t, "istio-system", nil)
	e.create(t, newSidecar("istio-system", "eq-default", nil, false))

	namespaces := []string{f1.a, f1.b, f2.a, f2.b, "istio-system", "default", "no-such-namespace"}
	hosts := slices.Concat(f1.hosts, f2.hosts)
	scopes := append(slices.Clone(namespaces), "*")
	froms := []string{f1.a, f1.b, f2.a, "elsewhere"}

	// A cache that hides its informers' stores is refused: the view reads
	// them in place.
	if err := informer.New(listOnlyCache{e.cache}, informer.Options{}).Register(e.ctx); err == nil || !strings.Contains(err.Error(), "does not expose the informer's store") {
		t.Errorf("Register over a cache without stores: err = %v, want a refusal", err)
	}

	compare := func(context.Context) error {
		return compareWithMemory(e, e.view, namespaces, hosts, scopes, froms, f2)
	}
	testenv.Eventually(t, pollTimeout, "informer view equals LoadMemory", compare)

	// And the reference agrees with what seed says it created.
	m, err := informer.LoadMemory(e.ctx, e.direct, informer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []fixture{f1, f2} {
		if diff := cmp.Diff(f.workloadsA, m.Workloads(f.a)); diff != "" {
			t.Errorf("memory Workloads(%s) (-want +got):\n%s", f.a, diff)
		}
		if diff := cmp.Diff(f.sidecarsA, m.Sidecars(f.a), ignoreResourceVersion); diff != "" {
			t.Errorf("memory Sidecars(%s) (-want +got):\n%s", f.a, diff)
		}
		if diff := cmp.Diff(f.peerAuthsA, m.PeerAuthentications(f.a), ignorePeerAuthCreated); diff != "" {
			t.Errorf("memory PeerAuthentications(%s) (-want +got):\n%s", f.a, diff)
		}
	}
}

// sortedWorkloads puts a view's answer (in no particular order) in the order
// of the in-memory view and the fixtures, in a copy: the view's list is
// shared.
func sortedWorkloads(ws []clusterview.Workload) []clusterview.Workload {
	ws = slices.Clone(ws)
	clusterview.SortWorkloads(ws)
	return ws
}

// orEmpty makes nil and empty slices compare equal.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// compareWithMemory compares every answer of v with the in-memory view
// loaded straight from the API server.
func compareWithMemory(e *testEnv, v *informer.View, namespaces, hosts, scopes, froms []string, f2 fixture) error {
	m, err := informer.LoadMemory(e.ctx, e.direct, informer.Options{})
	if err != nil {
		return err
	}
	var diffs []string
	check := func(what string, want, got any) {
		if d := cmp.Diff(want, got); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s (-memory +informer):\n%s", what, d))
		}
	}
	check("RootNamespace", m.RootNamespace(), v.RootNamespace())
	check("Namespaces", m.Namespaces(), v.Namespaces())
	for _, ns := range namespaces {
		check("Workloads("+ns+")", orEmpty(m.Workloads(ns)), orEmpty(sortedWorkloads(v.Workloads(ns))))
		check("Sidecars("+ns+")", orEmpty(m.Sidecars(ns)), orEmpty(v.Sidecars(ns)))
		check("PeerAuthentications("+ns+")", orEmpty(m.PeerAuthentications(ns)), orEmpty(v.PeerAuthentications(ns)))
		check("NamespaceExists("+ns+")", m.NamespaceExists(ns), v.NamespaceExists(ns))
		check("NamespaceLabels("+ns+")", m.NamespaceLabels(ns), v.NamespaceLabels(ns))
	}
	var hostDiffs []string
	for _, scope := range scopes {
		for _, host := range hosts {
			for _, from := range froms {
				if mg, vg := m.HostExists(scope, host, from), v.HostExists(scope, host, from); mg != vg {
					hostDiffs = append(hostDiffs, fmt.Sprintf("HostExists(%q, %q, %q): memory %v, informer %v", scope, host, from, mg, vg))
				}
			}
		}
	}
	diffs = append(diffs, hostDiffs...)
	// The comparison is only meaningful if the fixtures are all there.
	if len(diffs) == 0 {
		if got := len(m.Workloads(f2.a)); got != len(f2.workloadsA) {
			diffs = append(diffs, fmt.Sprintf("memory has %d workloads in %s, want %d", got, f2.a, len(f2.workloadsA)))
		}
	}
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "\n"))
	}
	return nil
}

// listOnlyCache hides the informers' stores; its indexes were registered
// by the shared view already.
type listOnlyCache struct{ cache.Cache }

func (c listOnlyCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	inf, err := c.Cache.GetInformer(ctx, obj, opts...)
	if err != nil {
		return nil, err
	}
	return struct{ cache.Informer }{inf}, nil
}

func (c listOnlyCache) IndexField(context.Context, client.Object, string, client.IndexerFunc) error {
	return nil
}

// TestInjectorsFollowConfigurations: the view reads Istio's injector
// MutatingWebhookConfigurations (labelled istio.io/rev) as they come and go,
// ignores other webhook configurations, and LoadMemory reads the same.
func TestInjectorsFollowConfigurations(t *testing.T) {
	e := sharedEnv(t)
	v := e.view
	if inj := v.Injectors(); inj.Installed {
		t.Fatalf("Injectors() before any injector: installed %v", inj.Webhooks)
	}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	hook := func(name string) admissionregistrationv1.MutatingWebhook {
		url := "https://127.0.0.1:1/inject"
		none := admissionregistrationv1.SideEffectClassNone
		ignore := admissionregistrationv1.Ignore
		return admissionregistrationv1.MutatingWebhook{
			Name: name, Rules: rules, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url},
			SideEffects: &none, FailurePolicy: &ignore, AdmissionReviewVersions: []string{"v1"},
			// Selects no namespace, so no other test's pods are sent to it.
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "selected"}},
		}
	}
	other := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "not-istio"}, Webhooks: []admissionregistrationv1.MutatingWebhook{hook("x.example.com")}}
	injector := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-canary", Labels: map[string]string{mesh.LabelRevision: "canary"}},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{hook("rev.namespace.sidecar-injector.istio.io")},
	}
	for _, cfg := range []*admissionregistrationv1.MutatingWebhookConfiguration{other, injector} {
		e.create(t, cfg)
	}
	t.Cleanup(func() { _ = e.direct.Delete(context.Background(), other) })
	testenv.Eventually(t, pollTimeout, "the injector installed", func(context.Context) error {
		inj := v.Injectors()
		if !inj.Installed || len(inj.Webhooks) != 1 || inj.Webhooks[0].Name != "istio-sidecar-injector-canary/rev.namespace.sidecar-injector.istio.io" {
			return fmt.Errorf("Injectors() = installed %v, %v", inj.Installed, inj.Webhooks)
		}
		return nil
	})
	m, err := informer.LoadMemory(e.ctx, e.direct, informer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if inj := m.Injectors(); !inj.Installed || len(inj.Webhooks) != 1 {
		t.Errorf("LoadMemory Injectors() = installed %v, %v; want the canary injector", inj.Installed, inj.Webhooks)
	}
	if err := e.direct.Delete(e.ctx, injector); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, pollTimeout, "the injector removed", func(context.Context) error {
		if inj := v.Injectors(); inj.Installed {
			return fmt.Errorf("Injectors() still installed: %v", inj.Webhooks)
		}
		return nil
	})
}

// TestCacheReadsOnlyWhatTheViewStores: the cache holds stubs, not the typed
// objects, so a typed read of a stubbed kind must fail loudly rather than
// hand out something half-empty, and a read of a kind the view does not
// watch must fail rather than quietly start a second informer.
func TestCacheReadsOnlyWhatTheViewStores(t *testing.T) {
	e := sharedEnv(t)
	ns := "cache-reads"
	e.ensureNamespace(t, ns, nil)
	e.create(t, &appsv1.Deployment{
		ObjectMeta: meta(ns, "web", nil),
		Spec:       appsv1.DeploymentSpec{Selector: selectorFor(map[string]string{"app": "web"}), Template: template(map[string]string{"app": "web"})},
	})
	e.create(t, newService(ns, "web"))
	testenv.Eventually(t, pollTimeout, "the Service in the view", func(context.Context) error {
		if !e.view.HostExists(ns, "web."+ns+".svc.cluster.local", ns) {
			return errors.New("not yet")
		}
		return nil
	})
	testenv.Eventually(t, pollTimeout, "the Deployment in the view", func(context.Context) error {
		for _, w := range e.view.Workloads(ns) {
			if w.Kind == "Deployment" {
				return nil
			}
		}
		return errors.New("not yet")
	})

	key := client.ObjectKey{Namespace: ns, Name: "web"}
	err := e.cache.Get(e.ctx, key, &appsv1.Deployment{})
	if err == nil || !strings.Contains(err.Error(), "workloadStub") {
		t.Errorf("typed Get of a stubbed Deployment: err = %v, want an error naming the stored stub", err)
	}
	err = e.cache.Get(e.ctx, key, &corev1.Service{})
	var notCached *cache.ErrResourceNotCached
	if !errors.As(err, &notCached) {
		t.Errorf("typed Get of a Service (watched as metadata only): err = %v, want ErrResourceNotCached", err)
	}
	svc := &metav1.PartialObjectMetadata{}
	svc.SetGroupVersionKind(informer.ServiceGVK)
	if err := e.cache.Get(e.ctx, key, svc); err != nil {
		t.Errorf("metadata Get of the Service: %v", err)
	} else if len(svc.Labels) != 0 || svc.Name != "web" {
		t.Errorf("the cached Service = %+v, want its identity only", svc.ObjectMeta)
	}
}
