package webhook

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

func sidecarNames(refs []clusterview.SidecarRef) []string {
	names := []string{}
	for _, r := range refs {
		names = append(names, r.Name)
	}
	return names
}

func TestPendingOverlay(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	selectorA := map[string]string{"app": "a"}

	t.Run("an admitted Sidecar counts until the view shows it", func(t *testing.T) {
		p := NewPending(clock)
		view := clusterview.NewMemory("istio-system")
		p.Add(clusterview.SidecarRef{Namespace: "ns", Name: "default"})
		if got := sidecarNames(p.Overlay(view, "ns").Sidecars("ns")); !cmp.Equal(got, []string{"default"}) {
			t.Fatalf("before it is stored: got %v", got)
		}
		if got := p.Overlay(view, "other").Sidecars("other"); len(got) != 0 {
			t.Fatalf("other namespaces are untouched, got %v", got)
		}
		view.PutSidecar(clusterview.SidecarRef{Namespace: "ns", Name: "default"})
		p.Overlay(view, "ns") // the view shows it: no longer pending
		view.DeleteSidecar("ns", "default")
		if got := p.Overlay(view, "ns").Sidecars("ns"); len(got) != 0 {
			t.Fatalf("a deleted Sidecar must not linger as pending, got %v", sidecarNames(got))
		}
	})

	t.Run("an entry that never shows up expires", func(t *testing.T) {
		p := NewPending(clock)
		view := clusterview.NewMemory("istio-system")
		p.Add(clusterview.SidecarRef{Namespace: "ns", Name: "lost"})
		now = now.Add(PendingTTL + time.Second)
		if got := p.Overlay(view, "ns").Sidecars("ns"); len(got) != 0 {
			t.Fatalf("expired entry still pending: %v", sidecarNames(got))
		}
	})

	t.Run("an update in flight replaces the stored version", func(t *testing.T) {
		p := NewPending(clock)
		view := clusterview.NewMemory("istio-system")
		view.PutSidecar(clusterview.SidecarRef{Namespace: "ns", Name: "web", Selector: selectorA})
		p.Add(clusterview.SidecarRef{Namespace: "ns", Name: "web", Selector: map[string]string{"app": "b"}})
		got := p.Overlay(view, "ns").Sidecars("ns")
		if len(got) != 1 || got[0].Selector["app"] != "b" {
			t.Fatalf("want the pending selector app=b, got %+v", got)
		}
	})
}

func TestPendingLockSerializesANamespace(t *testing.T) {
	p := NewPending(time.Now)
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := p.Lock("ns")
			defer unlock()
			mu.Lock()
			inside++
			if inside > maxInside {
				maxInside = inside
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d admissions ran at once in one namespace; want 1", maxInside)
	}
}
