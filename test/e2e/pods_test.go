//go:build controlplane

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The pod annotations (webhook/pods.go).
const (
	annotationSidecar  = "sidecar-webhook.io/sidecar"
	annotationScope    = "sidecar-webhook.io/sidecar-scope"
	annotationConflict = "sidecar-webhook.io/sidecar-conflict"
)

// reconcileTimeout is how soon existing pods must show a Sidecar change.
const reconcileTimeout = 10 * time.Second

var injected = map[string]string{"istio-injection": "enabled"}

// podState is what the webhook's annotations say about a pod.
type podState struct {
	Sidecar, Scope, Conflict string
}

func (s podState) String() string {
	return fmt.Sprintf("sidecar=%q scope=%q conflict=%q", s.Sidecar, s.Scope, s.Conflict)
}

func stateOf(annotations map[string]string) podState {
	return podState{Sidecar: annotations[annotationSidecar], Scope: annotations[annotationScope], Conflict: annotations[annotationConflict]}
}

// requireControllerManager skips (fails under CI=true) without
// kube-controller-manager, which turns Deployments into pods.
func requireControllerManager(t *testing.T) {
	t.Helper()
	if env.controllerManager {
		return
	}
	msg := "bin/kube-controller-manager is missing, so Deployments create no pods (run `make controlplane`)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestPodAnnotationsFollowSidecars: pods of a Deployment are annotated with
// the namespace-wide Sidecar, switch to a workload Sidecar created later and
// back when it is deleted (the reconciler re-resolves existing pods).
func TestPodAnnotationsFollowSidecars(t *testing.T) {
	t.Parallel()
	requireControllerManager(t)
	ns := createLabelledNamespace(t, "pods-follow", injected)
	applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
	applyAdmitted(t, deploymentManifest(ns, "web", 2, map[string]string{"app": "web"}))

	namespaceWide := podState{Sidecar: ns + "/default", Scope: "namespace"}
	start := time.Now()
	// The controller manager creates the pods; allow it some time.
	waitPods(t, ns, "app=web", 2, namespaceWide, 60*time.Second)
	t.Logf("the Deployment's 2 pods carry %v after %s", namespaceWide, time.Since(start).Round(100*time.Millisecond))

	applyAdmitted(t, withNamespace(selectorSidecar("web", "app", "web"), ns))
	start = time.Now()
	waitPods(t, ns, "app=web", 2, podState{Sidecar: ns + "/web", Scope: "workload"}, reconcileTimeout)
	t.Logf("re-annotated with the workload Sidecar in %s", time.Since(start).Round(100*time.Millisecond))

	mustKubectl(t, "", "delete", "sidecar", "web", "-n", ns)
	start = time.Now()
	waitPods(t, ns, "app=web", 2, namespaceWide, reconcileTimeout)
	t.Logf("back to the namespace-wide Sidecar in %s", time.Since(start).Round(100*time.Millisecond))
}

// TestPodMeshScope: a pod in an injected namespace without Sidecars gets
// the root namespace's namespace-wide Sidecar, the mesh default.
func TestPodMeshScope(t *testing.T) {
	t.Parallel()
	root := "istio-system" // dev's default mesh root namespace
	ensureNamespace(t, root)
	meshDefault := withNamespace(wideSidecar("default"), root)
	applyAdmitted(t, meshDefault)
	t.Cleanup(func() { kubectl(t, "", "delete", "sidecar", "default", "-n", root, "--ignore-not-found") })

	ns := createLabelledNamespace(t, "pods-mesh", injected)
	mustKubectl(t, podManifest(ns, "lonely", map[string]string{"app": "lonely"}, nil), "create", "-f", "-")
	waitPods(t, ns, "app=lonely", 1, podState{Sidecar: root + "/default", Scope: "mesh"}, cacheTimeout)
}

// TestPodsNotAnnotated: pods without a proxy get no annotations: those in
// a namespace without injection, and those labelled
// sidecar.istio.io/inject=false. A pod that does get a proxy, created with
// them, shows the webhook and the reconciler were at work meanwhile.
func TestPodsNotAnnotated(t *testing.T) {
	t.Parallel()
	plain := createNamespace(t, "pods-plain")
	applyAdmitted(t, withNamespace(wideSidecar("default"), plain))
	withProxy := createLabelledNamespace(t, "pods-optout", injected)
	applyAdmitted(t, withNamespace(wideSidecar("default"), withProxy))

	for _, p := range []string{
		podManifest(plain, "no-injection", map[string]string{"app": "web"}, nil),
		podManifest(withProxy, "opted-out", map[string]string{"app": "web", "sidecar.istio.io/inject": "false"}, nil),
	} {
		created := createPod(t, p)
		if owned := ownedAnnotations(created.GetAnnotations()); len(owned) > 0 {
			t.Errorf("pod %s/%s was created with %v, want no sidecar-webhook.io annotations", created.GetNamespace(), created.GetName(), owned)
		}
	}
	createPod(t, podManifest(withProxy, "control", map[string]string{"app": "web"}, nil))
	waitPods(t, withProxy, "app=web,sidecar.istio.io/inject!=false", 1, podState{Sidecar: withProxy + "/default", Scope: "namespace"}, cacheTimeout)
	// Give the reconciler, which saw all three pods created, a moment more.
	time.Sleep(2 * time.Second)
	for _, p := range []struct{ ns, name string }{{plain, "no-injection"}, {withProxy, "opted-out"}} {
		got := getPod(t, p.ns, p.name)
		if owned := ownedAnnotations(got.GetAnnotations()); len(owned) > 0 {
			t.Errorf("pod %s/%s has %v, want no sidecar-webhook.io annotations", p.ns, p.name, owned)
		}
	}
}

// TestPodForgedAnnotations: what a user writes under the webhook's keys is
// overwritten (or removed) at admission; other annotations stay.
func TestPodForgedAnnotations(t *testing.T) {
	t.Parallel()
	ns := createLabelledNamespace(t, "pods-forged", injected)
	applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
	want := podState{Sidecar: ns + "/default", Scope: "namespace"}
	// Wait until the webhook's cache holds the Sidecar: then admission
	// alone (not the reconciler) must get the annotations right.
	waitPodDryRun(t, podManifest(ns, "probe", map[string]string{"app": "web"}, nil), want)

	forged := map[string]string{
		annotationSidecar:  "evil/x",
		annotationScope:    "workload",
		annotationConflict: "evil/x,evil/y",
		"example.com/team": "payments",
	}
	created := createPod(t, podManifest(ns, "forged", map[string]string{"app": "web"}, forged))
	got := created.GetAnnotations()
	if s := stateOf(got); s != want {
		t.Errorf("pod created with %v, want %v", s, want)
	}
	if got["example.com/team"] != "payments" {
		t.Errorf("the pod's own annotation example.com/team was not kept: %v", got)
	}
	if s := stateOf(getPod(t, ns, "forged").GetAnnotations()); s != want {
		t.Errorf("stored pod has %v, want %v", s, want)
	}
}

// TestPodConflictAnnotation: two Sidecars selecting one pod (created while
// the validating webhook was not registered, as if they predated it): the
// pod is admitted with a warning and names both in an annotation.
func TestPodConflictAnnotation(t *testing.T) {
	ns := createLabelledNamespace(t, "pods-conflict", injected)
	restore := unregisterWebhooks(t, true, false)
	applyAdmitted(t, withNamespace(selectorSidecar("a", "app", "web"), ns))
	applyAdmitted(t, withNamespace(selectorSidecar("b", "app", "web", "version", "v1"), ns))
	restore()
	t.Parallel()

	pod := podManifest(ns, "web", map[string]string{"app": "web", "version": "v1"}, nil)
	want := podState{Sidecar: ns + "/a", Scope: "workload", Conflict: ns + "/a," + ns + "/b"}
	waitPodDryRun(t, pod, want)

	stdout, stderr, err := kubectl(t, pod, "create", "-f", "-", "-o", "json")
	if err != nil {
		t.Fatalf("kubectl create: %v (want the pod admitted with a warning)\n%s", err, stderr)
	}
	wantWarning := fmt.Sprintf("Warning: sidecar-webhook: more than one Sidecar applies to this pod (%s/a, %s/b); Istio's choice is undefined and in practice it applies %s/a, the oldest", ns, ns, ns)
	if lines := warningLines(t, stderr); !containsLine(lines, wantWarning) {
		t.Errorf("kubectl's stderr:\n%s\nwant the line:\n%s", stderr, wantWarning)
	}
	var created unstructured.Unstructured
	if err := json.Unmarshal([]byte(stdout), &created.Object); err != nil {
		t.Fatal(err)
	}
	if s := stateOf(created.GetAnnotations()); s != want {
		t.Errorf("pod created with %v, want %v", s, want)
	}
}

// TestPodCreationWithPodWebhookDown: with the pod webhook unreachable
// (failurePolicy Ignore) pods are still created, unannotated; the reconciler
// annotates them afterwards. The shared server keeps running: the pod
// webhooks are pointed at a closed port for a moment.
func TestPodCreationWithPodWebhookDown(t *testing.T) {
	ns := createLabelledNamespace(t, "pods-webhook-down", injected)
	applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
	want := podState{Sidecar: ns + "/default", Scope: "namespace"}
	probe := podManifest(ns, "probe", map[string]string{"app": "probe"}, nil)
	waitPodDryRun(t, probe, want)

	restore := breakPodWebhooks(t)
	waitPodDryRun(t, probe, podState{})
	stdout, stderr, err := kubectl(t, "", "run", "web", "-n", ns, "--image=registry.k8s.io/pause:3.10", "--labels=app=web", "-o", "json")
	restore()
	waitPodDryRun(t, probe, want)
	if err != nil {
		t.Fatalf("kubectl run with the pod webhook unreachable: %v\nstderr:\n%s", err, stderr)
	}
	var created unstructured.Unstructured
	if err := json.Unmarshal([]byte(stdout), &created.Object); err != nil {
		t.Fatalf("kubectl run -o json: %v\n%s", err, stdout)
	}
	if owned := ownedAnnotations(created.GetAnnotations()); len(owned) > 0 {
		t.Errorf("pod created with %v while the webhook was unreachable; want none (was the webhook called?)", owned)
	}
	t.Parallel()
	waitPods(t, ns, "app=web", 1, want, cacheTimeout)
}

// breakPodWebhooks points the pod webhooks of dev's
// MutatingWebhookConfiguration at a closed port; the returned function (also
// run at cleanup) puts them back and waits until they are called again.
func breakPodWebhooks(t *testing.T) (restore func()) {
	t.Helper()
	ctx := context.Background()
	mutating := clientset(t).AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := mutating.Get(ctx, webhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	saved := cfg.DeepCopy().Webhooks
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String() + "/mutate/pods"
	l.Close()
	broken := 0
	for i := range cfg.Webhooks {
		if strings.Contains(cfg.Webhooks[i].Name, ".pods.") {
			cfg.Webhooks[i].ClientConfig.URL = &closed
			broken++
		}
	}
	if broken == 0 {
		t.Fatalf("the MutatingWebhookConfiguration has no pod webhook: %v", cfg.Webhooks)
	}
	if _, err := mutating.Update(ctx, cfg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		current, err := mutating.Get(ctx, webhookConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Errorf("restoring the pod webhooks: %v", err)
			return
		}
		current.Webhooks = saved
		if _, err := mutating.Update(ctx, current, metav1.UpdateOptions{}); err != nil {
			t.Errorf("restoring the pod webhooks: %v", err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// createPod creates a pod with kubectl and returns it as the API server
// stored it.
func createPod(t testing.TB, manifest string) *unstructured.Unstructured {
	t.Helper()
	stdout := mustKubectl(t, manifest, "create", "-f", "-", "-o", "json")
	var created unstructured.Unstructured
	if err := json.Unmarshal([]byte(stdout), &created.Object); err != nil {
		t.Fatalf("kubectl create -o json: %v\n%s", err, stdout)
	}
	return &created
}

var podsGVR = resources["Pod"]

func getPod(t testing.TB, ns, name string) *unstructured.Unstructured {
	t.Helper()
	pod, err := env.dynamic.Resource(podsGVR).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// ownedAnnotations returns the sidecar-webhook.io annotations.
func ownedAnnotations(annotations map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range annotations {
		if strings.HasPrefix(k, "sidecar-webhook.io/") {
			out[k] = v
		}
	}
	return out
}

// waitPods waits until selector selects n pods in ns, each annotated as
// want.
func waitPods(t testing.TB, ns, selector string, n int, want podState, timeout time.Duration) {
	t.Helper()
	waitUntil(t, timeout, fmt.Sprintf("%d pods %s in %s with %v", n, selector, ns, want), func() (bool, string) {
		list, err := env.dynamic.Resource(podsGVR).Namespace(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		ok := len(list.Items) == n
		for _, p := range list.Items {
			s := stateOf(p.GetAnnotations())
			ok = ok && s == want
			seen = append(seen, p.GetName()+": "+s.String())
		}
		slices.Sort(seen)
		return ok, strings.Join(seen, "\n")
	})
}

// waitPodDryRun waits until a dry-run create of the pod comes back
// annotated as want (the zero podState: not annotated).
func waitPodDryRun(t testing.TB, manifest string, want podState) {
	t.Helper()
	waitUntil(t, cacheTimeout, fmt.Sprintf("a dry-run pod to be annotated with %v", want), func() (bool, string) {
		obj, status := dryRunCreate(t, manifest)
		if status != nil {
			return false, status.Message
		}
		got := obj.GetAnnotations()
		return stateOf(got) == want, fmt.Sprint(got)
	})
}
