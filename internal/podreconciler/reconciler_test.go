package podreconciler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apinetworkingv1 "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
)

func testView() *clusterview.Memory {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	v := clusterview.NewMemory("istio-system")
	v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"istio-injection": "enabled"}}})
	v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "canary", Labels: map[string]string{"istio.io/rev": "1-32"}}})
	v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}})
	v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "istio-system", Name: "default", Created: t0})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "prod", Name: "default", Created: t0})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "prod", Name: "ratings", Created: t0, Selector: map[string]string{"app": "ratings"}})
	return v
}

func pod(ns, name string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: annotations}}
}

type harness struct {
	client  client.Client
	patches int
}

func newHarness(t *testing.T, objs ...client.Object) *harness {
	t.Helper()
	h := &harness{}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	h.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithInterceptorFuncs(interceptor.Funcs{
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				h.patches++
				return c.Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	return h
}

func (h *harness) reconciler(view clusterview.View) *Reconciler {
	return &Reconciler{Client: h.client, Reader: h.client, Views: func(context.Context) (clusterview.View, error) { return view, nil }}
}

func (h *harness) annotations(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	var p corev1.Pod
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return p.Annotations
}

func request(ns, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name        string
		pod         *corev1.Pod
		wantPatches int
		wantAnno    map[string]string
	}{
		{
			name:        "unannotated pod is annotated",
			pod:         pod("prod", "r", map[string]string{"app": "ratings"}, nil),
			wantPatches: 1,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name: "stale annotation is patched, other annotations kept",
			pod: pod("prod", "r", map[string]string{"app": "reviews"}, map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
				"team":                         "a",
			}),
			wantPatches: 1,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/default",
				resolve.AnnotationSidecarScope: "namespace",
				"team":                         "a",
			},
		},
		{
			name: "correct annotations are left untouched",
			pod: pod("prod", "r", map[string]string{"app": "ratings"}, map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			}),
			wantPatches: 0,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name: "user-forged annotations are overwritten and removed",
			pod: pod("canary", "c", nil, map[string]string{
				resolve.AnnotationSidecar:         "canary/forged",
				resolve.AnnotationSidecarScope:    "workload",
				resolve.AnnotationSidecarConflict: "a/b,c/d",
			}),
			wantPatches: 1,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "istio-system/default",
				resolve.AnnotationSidecarScope: "mesh",
			},
		},
		{
			name:        "pod without a proxy: forged annotations removed",
			pod:         pod("plain", "p", nil, map[string]string{resolve.AnnotationSidecar: "forged/x", "team": "a"}),
			wantPatches: 1,
			wantAnno:    map[string]string{"team": "a"},
		},
		{
			name:        "pod without a proxy and nothing owned: untouched",
			pod:         pod("plain", "p", map[string]string{"app": "ratings"}, nil),
			wantPatches: 0,
		},
		{
			name: "a pod annotated at admission keeps its proxy after its namespace lost the label, and stays current",
			pod: pod("plain", "p", map[string]string{"app": "ratings"}, map[string]string{
				resolve.AnnotationSidecar:      "plain/gone",
				resolve.AnnotationSidecarScope: "workload",
			}),
			wantPatches: 1,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "istio-system/default",
				resolve.AnnotationSidecarScope: "mesh",
			},
		},
		{
			name:        "waypoint deployed by istiod: scope gateway, no Sidecar",
			pod:         pod("plain", "w", map[string]string{"gateway.istio.io/managed": "istio.io-mesh-controller", "sidecar.istio.io/inject": "false"}, nil),
			wantPatches: 1,
			wantAnno:    map[string]string{resolve.AnnotationSidecarScope: "gateway"},
		},
		{
			name: "hostNetwork pod never seen at admission: the spec is read, no proxy",
			pod: func() *corev1.Pod {
				p := pod("prod", "h", map[string]string{"app": "ratings"}, nil)
				p.Spec.HostNetwork = true
				return p
			}(),
			wantPatches: 0,
		},
		{
			name:        "pod that opted out of injection is ignored",
			pod:         pod("prod", "o", map[string]string{"sidecar.istio.io/inject": "false", "app": "ratings"}, nil),
			wantPatches: 0,
			wantAnno:    nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.pod)
			r := h.reconciler(testView())
			res, err := r.Reconcile(context.Background(), request(tc.pod.Namespace, tc.pod.Name))
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			if res != (reconcile.Result{}) {
				t.Errorf("result = %+v, want no requeue", res)
			}
			if h.patches != tc.wantPatches {
				t.Errorf("patches = %d, want %d", h.patches, tc.wantPatches)
			}
			if diff := cmp.Diff(tc.wantAnno, h.annotations(t, tc.pod.Namespace, tc.pod.Name)); diff != "" {
				t.Errorf("annotations (-want +got):\n%s", diff)
			}
			// A second pass finds nothing to do.
			before := h.patches
			if _, err := r.Reconcile(context.Background(), request(tc.pod.Namespace, tc.pod.Name)); err != nil {
				t.Fatalf("second Reconcile: %v", err)
			}
			if h.patches != before {
				t.Errorf("second Reconcile patched again")
			}
		})
	}
}

// TestReconcileWithInjectorInstalled: once Istio's injector is installed, its
// status annotation alone says which running pods have a proxy: a pod
// created before its namespace was labelled has none until it restarts.
func TestReconcileWithInjectorInstalled(t *testing.T) {
	view := testView()
	view.AddMutatingWebhookConfiguration(&admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector", Labels: map[string]string{"istio.io/rev": "default"}},
	})
	injected := pod("prod", "injected", map[string]string{"app": "ratings"}, map[string]string{"sidecar.istio.io/status": "{}"})
	old := pod("prod", "old", map[string]string{"app": "ratings"}, map[string]string{resolve.AnnotationSidecarScope: "workload"})
	h := newHarness(t, injected, old)
	r := h.reconciler(view)
	for _, p := range []*corev1.Pod{injected, old} {
		if _, err := r.Reconcile(context.Background(), request(p.Namespace, p.Name)); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.annotations(t, "prod", "injected")[resolve.AnnotationSidecar]; got != "prod/ratings" {
		t.Errorf("injected pod: sidecar annotation %q, want prod/ratings", got)
	}
	if got := h.annotations(t, "prod", "old"); len(got) != 0 {
		t.Errorf("pod without the injector's status: annotations %v, want none", got)
	}
}

func TestReconcileMissingPod(t *testing.T) {
	h := newHarness(t)
	if _, err := h.reconciler(testView()).Reconcile(context.Background(), request("prod", "gone")); err != nil {
		t.Errorf("Reconcile of a deleted pod: %v, want nil", err)
	}
}

func TestReconcileViewNotReady(t *testing.T) {
	h := newHarness(t, pod("prod", "r", nil, nil))
	r := &Reconciler{Client: h.client, Views: func(context.Context) (clusterview.View, error) {
		return nil, errors.New("not synced")
	}}
	res, err := r.Reconcile(context.Background(), request("prod", "r"))
	if err != nil || res.RequeueAfter != DefaultNotReadyRequeue {
		t.Errorf("Reconcile = %+v, %v; want a requeue after %v", res, err, DefaultNotReadyRequeue)
	}
	if h.patches != 0 {
		t.Errorf("patched while the view was not ready")
	}
}

func TestPodsForSidecar(t *testing.T) {
	h := newHarness(t,
		pod("prod", "a", nil, nil),
		pod("prod", "b", nil, nil),
		pod("canary", "c", nil, nil),
		pod("plain", "d", nil, nil),
		pod("istio-system", "e", nil, nil),
	)
	r := h.reconciler(testView())
	sc := func(ns string, selector map[string]string) *networkingv1.Sidecar {
		s := &networkingv1.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s"}}
		if selector != nil {
			s.Spec.WorkloadSelector = &apinetworkingv1.WorkloadSelector{Labels: selector}
		}
		return s
	}
	tests := []struct {
		name    string
		sidecar *networkingv1.Sidecar
		want    []reconcile.Request
	}{
		{"namespace Sidecar: its namespace's injected pods", sc("prod", nil), []reconcile.Request{request("prod", "a"), request("prod", "b")}},
		{"mesh default: every injected pod", sc("istio-system", nil), []reconcile.Request{request("canary", "c"), request("prod", "a"), request("prod", "b")}},
		{"selector Sidecar in the root namespace: only its namespace", sc("istio-system", map[string]string{"app": "x"}), []reconcile.Request{}},
		{"namespace without injection: nothing", sc("plain", nil), []reconcile.Request{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := r.podsForSidecar(context.Background(), tc.sidecar)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetupWithManager(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := networkingv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	// No API server is contacted before Start.
	mgr, err := ctrl.NewManager(&rest.Config{Host: "https://127.0.0.1:1"}, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reconciler{Client: mgr.GetClient(), Views: func(context.Context) (clusterview.View, error) { return testView(), nil }}
	if err := r.SetupWithManager(mgr, 20); err != nil {
		t.Fatalf("SetupWithManager: %v", err)
	}
	if r.patches == nil || r.patches.Limit() != 20 {
		t.Errorf("patch limiter = %v, want 20/s", r.patches)
	}
	if err := (&Reconciler{}).SetupWithManager(mgr, 1); err == nil {
		t.Error("SetupWithManager without Client and Views succeeded")
	}
}

// The server's cache keeps only sidecar-webhook.io/ annotations on pods. A
// patch computed from such a trimmed copy must leave the others alone.
func TestReconcileFromTrimmedCache(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	server := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(pod("prod", "r", map[string]string{"app": "ratings"}, map[string]string{
			"team":                         "a",
			resolve.AnnotationSidecar:      "prod/old",
			resolve.AnnotationSidecarScope: "workload",
		})).Build()
	trimmed := interceptor.NewClient(server, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			kept := map[string]string{}
			for k, v := range obj.GetAnnotations() {
				if strings.HasPrefix(k, "sidecar-webhook.io/") {
					kept[k] = v
				}
			}
			obj.SetAnnotations(kept)
			return nil
		},
	})
	r := &Reconciler{Client: trimmed, Views: func(context.Context) (clusterview.View, error) { return testView(), nil }}
	if _, err := r.Reconcile(context.Background(), request("prod", "r")); err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := server.Get(context.Background(), types.NamespacedName{Namespace: "prod", Name: "r"}, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"team": "a", resolve.AnnotationSidecar: "prod/ratings", resolve.AnnotationSidecarScope: "workload"}
	if diff := cmp.Diff(want, got.Annotations); diff != "" {
		t.Errorf("annotations on the server (-want +got):\n%s", diff)
	}
}
