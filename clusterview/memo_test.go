package clusterview_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// countingView counts the questions that reach it.
type countingView struct {
	clusterview.View
	asked map[string]int
}

func (c *countingView) Sidecars(ns string) []clusterview.SidecarRef {
	c.asked["Sidecars "+ns]++
	return c.View.Sidecars(ns)
}

func (c *countingView) Workloads(ns string) []clusterview.Workload {
	c.asked["Workloads "+ns]++
	return c.View.Workloads(ns)
}

func (c *countingView) PeerAuthentications(ns string) []clusterview.PeerAuthentication {
	c.asked["PeerAuthentications "+ns]++
	return c.View.PeerAuthentications(ns)
}

func (c *countingView) RootNamespace() string {
	c.asked["RootNamespace"]++
	return c.View.RootNamespace()
}

func TestMemoizeAsksOncePerQuestion(t *testing.T) {
	m := clusterview.NewMemory("istio-system")
	m.AddPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "ratings-1", Labels: map[string]string{"app": "ratings"}}})
	m.AddPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "dev", Name: "ratings-2", Labels: map[string]string{"app": "ratings"}}})
	counting := &countingView{View: m, asked: map[string]int{}}
	memo := clusterview.Memoize(counting)
	for range 3 {
		for _, ns := range []string{"prod", "dev", "empty"} {
			if diff := cmp.Diff(m.Workloads(ns), memo.Workloads(ns)); diff != "" {
				t.Errorf("Workloads(%s) (-direct +memo):\n%s", ns, diff)
			}
			if diff := cmp.Diff(m.Sidecars(ns), memo.Sidecars(ns)); diff != "" {
				t.Errorf("Sidecars(%s) (-direct +memo):\n%s", ns, diff)
			}
			memo.PeerAuthentications(ns)
		}
		if got := memo.RootNamespace(); got != "istio-system" {
			t.Errorf("RootNamespace = %q", got)
		}
	}
	want := map[string]int{"RootNamespace": 1}
	for _, ns := range []string{"prod", "dev", "empty"} {
		want["Workloads "+ns], want["Sidecars "+ns], want["PeerAuthentications "+ns] = 1, 1, 1
	}
	if diff := cmp.Diff(want, counting.asked); diff != "" {
		t.Errorf("questions that reached the view (-want +got):\n%s", diff)
	}
}
