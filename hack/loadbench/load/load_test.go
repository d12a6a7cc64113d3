package load

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i))
	}
	for p, want := range map[float64]time.Duration{50: 500, 99: 990, 99.9: 999, 100: 1000, 0.01: 1} {
		if got := Percentile(s, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty samples")
	}
}

func TestRun(t *testing.T) {
	r := Run(context.Background(), TargetFunc(func(_ context.Context, seq int64) error {
		time.Sleep(time.Millisecond)
		if seq%10 == 0 {
			return errors.New("boom")
		}
		return nil
	}), 4, 200*time.Millisecond)
	if r.Requests < 40 || r.Errors == 0 || r.FirstError != "boom" || r.P50 < time.Millisecond || r.RPS <= 0 {
		t.Fatalf("unexpected result %+v", r)
	}
}

// TestRunInterleaved: the targets take turns, each for its share of
// the duration, and each result counts only its own requests.
func TestRunInterleaved(t *testing.T) {
	var mu sync.Mutex
	var order []string
	target := func(name string, fail bool) Target {
		return TargetFunc(func(context.Context, int64) error {
			mu.Lock()
			if len(order) == 0 || order[len(order)-1] != name {
				order = append(order, name)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			if fail {
				return errors.New(name + " failed")
			}
			return nil
		})
	}
	start := time.Now()
	rs := RunInterleaved(context.Background(), []Target{target("a", false), target("b", true), target("c", false)}, 2, 300*time.Millisecond, 3)
	if want := []string{"a", "b", "c", "a", "b", "c", "a", "b", "c"}; !slices.Equal(order, want) {
		t.Errorf("turns = %v, want %v", order, want)
	}
	wall := time.Since(start)
	a, b, c := rs[0], rs[1], rs[2]
	if a.Errors != 0 || c.Errors != 0 || b.Errors != b.Requests || b.FirstError != "b failed" {
		t.Errorf("errors: a %d of %d, b %d of %d (%q), c %d of %d", a.Errors, a.Requests, b.Errors, b.Requests, b.FirstError, c.Errors, c.Requests)
	}
	for name, r := range map[string]Result{"a": a, "b": b, "c": c} {
		// Its own three turns of 100ms, not the others': about a third of
		// the whole run, however slow the machine.
		if r.Elapsed < 300*time.Millisecond || r.Elapsed > wall/2 || r.Requests == 0 {
			t.Errorf("%s: %d requests in %s of a %s run, want its third of it", name, r.Requests, r.Elapsed, wall)
		}
	}
}
