package load

import (
	"context"
	"errors"
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

func TestTemplate(t *testing.T) {
	tpl := NewTemplate([]byte(`{"uid":"X-@U@","name":"n-@N@","u":"@U@"}`), "@N@", "@U@")
	if got := string(tpl.Fill("a", "42")); got != `{"uid":"X-42","name":"n-a","u":"42"}` {
		t.Fatal(got)
	}
}
