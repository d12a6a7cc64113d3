package informer

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// listOf returns a build function answering n workloads named after round,
// and counts its calls.
func listOf(n int, round string, calls *int) func() []clusterview.Workload {
	return func() []clusterview.Workload {
		*calls++
		out := make([]clusterview.Workload, n)
		for i := range out {
			out[i] = clusterview.Workload{Kind: clusterview.KindPod, Name: fmt.Sprintf("%s-%d", round, i)}
		}
		return out
	}
}

func TestWorkloadListsRebuildOnlyAfterAChange(t *testing.T) {
	pod := func(ns string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}}
	}
	tests := []struct {
		name string
		// event reaches the handler between the first and the second read.
		event     func(h toolscache.ResourceEventHandlerFuncs)
		wantBuild int
	}{
		{name: "no change", event: func(toolscache.ResourceEventHandlerFuncs) {}, wantBuild: 1},
		{name: "change in another namespace", event: func(h toolscache.ResourceEventHandlerFuncs) { h.OnAdd(pod("other"), false) }, wantBuild: 1},
		{name: "added", event: func(h toolscache.ResourceEventHandlerFuncs) { h.OnAdd(pod("ns"), false) }, wantBuild: 2},
		{name: "updated", event: func(h toolscache.ResourceEventHandlerFuncs) { h.OnUpdate(pod("ns"), pod("ns")) }, wantBuild: 2},
		{name: "deleted", event: func(h toolscache.ResourceEventHandlerFuncs) { h.OnDelete(pod("ns")) }, wantBuild: 2},
		{name: "deleted, last state unknown", event: func(h toolscache.ResourceEventHandlerFuncs) {
			h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod("ns")})
		}, wantBuild: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newWorkloadLists()
			h := l.handler().(toolscache.ResourceEventHandlerFuncs)
			calls := 0
			first := l.get("ns", listOf(3, "first", &calls))
			tt.event(h)
			second := l.get("ns", listOf(3, "second", &calls))
			if calls != tt.wantBuild {
				t.Errorf("built %d times, want %d", calls, tt.wantBuild)
			}
			wantName := "first-0"
			if tt.wantBuild == 2 {
				wantName = "second-0"
			}
			if first[0].Name != "first-0" || second[0].Name != wantName {
				t.Errorf("lists start with %s, %s; want first-0, %s", first[0].Name, second[0].Name, wantName)
			}
		})
	}
}

// A change that lands while a list is being built must not leave that list
// cached: it may have been read before the store held the change.
func TestWorkloadListsDropAListBuiltAcrossAChange(t *testing.T) {
	l := newWorkloadLists()
	h := l.handler().(toolscache.ResourceEventHandlerFuncs)
	calls := 0
	racing := func() []clusterview.Workload {
		calls++
		h.OnAdd(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}, false)
		return []clusterview.Workload{{Name: "before"}}
	}
	if got := l.get("ns", racing); got[0].Name != "before" {
		t.Fatalf("first read = %v", got)
	}
	if got := l.get("ns", listOf(1, "after", &calls)); got[0].Name != "after-0" || calls != 2 {
		t.Errorf("second read = %v after %d builds, want after-0 from a second build", got, calls)
	}
}

func TestWorkloadListsStayWithinTheirBound(t *testing.T) {
	l := newWorkloadLists()
	calls := 0
	half := maxCachedWorkloads / 2
	l.get("a", listOf(half, "a", &calls))
	l.get("b", listOf(half, "b", &calls))
	l.get("c", listOf(half, "c", &calls)) // evicts a or b
	if l.cached > maxCachedWorkloads || len(l.lists) != 2 {
		t.Errorf("%d workloads in %d lists cached, want at most %d in 2", l.cached, len(l.lists), maxCachedWorkloads)
	}
	if _, ok := l.lists["c"]; !ok {
		t.Error("the newest list was not kept")
	}
	// A list larger than the bound is answered but not kept.
	got := l.get("huge", listOf(maxCachedWorkloads+1, "huge", &calls))
	if len(got) != maxCachedWorkloads+1 || l.cached > maxCachedWorkloads {
		t.Errorf("huge list: answered %d, %d cached", len(got), l.cached)
	}
	if _, ok := l.lists["huge"]; ok {
		t.Error("a list over the bound was kept")
	}
}
