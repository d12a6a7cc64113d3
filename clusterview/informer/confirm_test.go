//go:build controlplane

package informer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// liveRefs lists a namespace's Sidecars straight from the API server.
func liveRefs(t *testing.T, e *testEnv, ns string) []clusterview.SidecarRef {
	t.Helper()
	list := &networkingv1.SidecarList{}
	if err := e.direct.List(e.ctx, list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	m := clusterview.NewMemory("")
	for _, s := range list.Items {
		m.PutSidecar(clusterview.RefOf(s))
	}
	return m.Sidecars(ns)
}

func sidecarNames(refs []clusterview.SidecarRef) []string {
	out := []string{}
	for _, r := range refs {
		out = append(out, r.Name)
	}
	return out
}

func TestWithLiveSidecarsSeesUncachedSidecar(t *testing.T) {
	e := sharedEnv(t)
	ns, other := "confirm-a", "confirm-b"
	e.ensureNamespace(t, ns, nil)
	e.ensureNamespace(t, other, nil)
	e.create(t, newSidecar(ns, "old", map[string]string{"app": "old"}, false))
	e.create(t, newSidecar(other, "default", nil, false))
	testenv.Eventually(t, pollTimeout, "cache sees the existing Sidecars", func(context.Context) error {
		if got := sidecarNames(e.view.Sidecars(ns)); !cmp.Equal(got, []string{"old"}) {
			return fmt.Errorf("Sidecars(%s) = %v", ns, got)
		}
		if got := sidecarNames(e.view.Sidecars(other)); !cmp.Equal(got, []string{"default"}) {
			return fmt.Errorf("Sidecars(%s) = %v", other, got)
		}
		return nil
	})

	// Create a Sidecar and ask at once, before the cache can be relied on.
	// Its name sorts before "old", so order is checked too.
	e.create(t, newSidecar(ns, "fresh", nil, false))
	cachedAtOnce := sidecarNames(e.view.Sidecars(ns))
	live, err := informer.WithLiveSidecars(e.ctx, e.view, e.direct, ns)
	if err != nil {
		t.Fatal(err)
	}
	gotAtOnce := live.Sidecars(ns)
	t.Logf("cache at the moment of the live read: %v", cachedAtOnce)
	want := liveRefs(t, e, ns)
	if diff := cmp.Diff([]string{"fresh", "old"}, sidecarNames(want)); diff != "" {
		t.Fatalf("API server Sidecars (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, gotAtOnce); diff != "" {
		t.Errorf("live Sidecars(%s) (-api server +live):\n%s", ns, diff)
	}
	if got := live.Sidecars(ns); got[0].Selector != nil || got[1].Selector["app"] != "old" {
		t.Errorf("live Sidecars lost selectors: %+v", got)
	}

	// Other namespaces and other methods are the underlying view's.
	if diff := cmp.Diff(e.view.Sidecars(other), live.Sidecars(other)); diff != "" {
		t.Errorf("Sidecars(%s) (-view +live):\n%s", other, diff)
	}
	if live.RootNamespace() != e.view.RootNamespace() || !live.NamespaceExists(ns) || live.NamespaceExists("no-such-namespace") {
		t.Error("live view does not delegate RootNamespace/NamespaceExists")
	}

	// A deletion is seen at once too.
	if err := e.direct.Delete(e.ctx, newSidecar(ns, "old", nil, false)); err != nil {
		t.Fatal(err)
	}
	if live, err = informer.WithLiveSidecars(e.ctx, e.view, e.direct, ns); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"fresh"}, sidecarNames(live.Sidecars(ns))); diff != "" {
		t.Errorf("live Sidecars after delete (-want +got):\n%s", diff)
	}
}

// TestWithLiveSidecarsOverStaleView uses an underlying view that certainly
// lags (a hand-filled Memory), so it proves that the namespace's Sidecars come
// from the reader and every other answer from the view.
func TestWithLiveSidecarsOverStaleView(t *testing.T) {
	e := sharedEnv(t)
	ns := "confirm-stale"
	e.ensureNamespace(t, ns, nil)
	s := newSidecar(ns, "only-live", map[string]string{"app": "x"}, false)
	e.create(t, s)

	stale := clusterview.NewMemory("stale-root")
	stale.EnsureNamespace(ns)
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	stale.PutSidecar(clusterview.SidecarRef{Namespace: ns, Name: "only-cached", Created: created})
	stale.PutSidecar(clusterview.SidecarRef{Namespace: "elsewhere", Name: "not-in-cluster", Created: created})
	stale.AddPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p", Labels: map[string]string{"app": "x"}}})

	live, err := informer.WithLiveSidecars(e.ctx, stale, e.direct, ns)
	if err != nil {
		t.Fatal(err)
	}
	want := []clusterview.SidecarRef{{Namespace: ns, Name: "only-live", Created: s.CreationTimestamp.Time, Selector: map[string]string{"app": "x"}}}
	if diff := cmp.Diff(want, live.Sidecars(ns), ignoreResourceVersion); diff != "" {
		t.Errorf("Sidecars(%s) (-want +got):\n%s", ns, diff)
	}
	if diff := cmp.Diff(stale.Sidecars("elsewhere"), live.Sidecars("elsewhere")); diff != "" {
		t.Errorf("Sidecars(elsewhere) not delegated (-view +live):\n%s", diff)
	}
	if diff := cmp.Diff(sortedWorkloads(stale.Workloads(ns)), sortedWorkloads(live.Workloads(ns))); diff != "" {
		t.Errorf("Workloads not delegated (-view +live):\n%s", diff)
	}
	if got := live.RootNamespace(); got != "stale-root" {
		t.Errorf("RootNamespace() = %q, want the view's stale-root", got)
	}

	// A namespace without Sidecars reads as empty, not as the view's.
	stale.PutSidecar(clusterview.SidecarRef{Namespace: "confirm-empty", Name: "ghost"})
	e.ensureNamespace(t, "confirm-empty", nil)
	if live, err = informer.WithLiveSidecars(e.ctx, stale, e.direct, "confirm-empty"); err != nil {
		t.Fatal(err)
	}
	if got := live.Sidecars("confirm-empty"); len(got) != 0 {
		t.Errorf("Sidecars(confirm-empty) = %v, want none", got)
	}
}
