package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// scriptedProber answers with err, which the test changes between probes.
type scriptedProber struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (p *scriptedProber) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *scriptedProber) probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.err
}

// logLines collects log lines (message and key/values) for assertions.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

type monitorFixture struct {
	clock  *fakeClock
	prober *scriptedProber
	logs   *logLines
	reg    *prometheus.Registry
	m      *stalenessMonitor
}

func newMonitorFixture(t *testing.T, interval, maxStaleness time.Duration) *monitorFixture {
	t.Helper()
	f := &monitorFixture{
		clock:  &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		prober: &scriptedProber{},
		logs:   &logLines{},
		reg:    prometheus.NewRegistry(),
	}
	f.m = newStalenessMonitor(f.prober.probe, interval, maxStaleness, f.clock.now, f.logs.logger())
	if err := f.m.register(f.reg); err != nil {
		t.Fatal(err)
	}
	return f
}

// metric returns the value of the named gauge or counter.
func (f *monitorFixture) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if g := m.GetGauge(); g != nil {
			return g.GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// step advances the clock by d and probes once, as one tick of Start.
func (f *monitorFixture) step(d time.Duration) {
	f.clock.advance(d)
	f.m.probeOnce(context.Background())
}

func TestStalenessDefaults(t *testing.T) {
	m := newStalenessMonitor(func(context.Context) error { return nil }, 0, 0, time.Now, logr.Discard())
	if m.interval != DefaultStalenessCheckInterval || m.maxStaleness != DefaultMaxStaleness {
		t.Errorf("defaults: interval %s, maxStaleness %s; want %s and %s", m.interval, m.maxStaleness, DefaultStalenessCheckInterval, DefaultMaxStaleness)
	}
	if m.timeout != DefaultStalenessCheckInterval {
		t.Errorf("probe timeout %s, want the interval %s", m.timeout, DefaultStalenessCheckInterval)
	}
	if m := newStalenessMonitor(nil, time.Minute, 10*time.Minute, time.Now, logr.Discard()); m.timeout != maxProbeTimeout {
		t.Errorf("probe timeout with a 1m interval is %s, want it capped at %s", m.timeout, maxProbeTimeout)
	}
	if m.NeedLeaderElection() {
		t.Error("the monitor must run on every replica, not only the leader")
	}
}

func TestStalenessOutageAndRecovery(t *testing.T) {
	const interval, maxStaleness = 5 * time.Second, 60 * time.Second
	f := newMonitorFixture(t, interval, maxStaleness)

	f.step(0)
	contact := f.clock.now()
	if err := f.m.Check(nil); err != nil {
		t.Fatalf("after a successful probe: %v", err)
	}
	if got, want := f.metric(t, MetricAPIServerLastContact), float64(contact.Unix()); got != want {
		t.Errorf("%s = %v, want %v", MetricAPIServerLastContact, got, want)
	}
	if got := f.metric(t, MetricCacheStale); got != 0 {
		t.Errorf("%s = %v after contact, want 0", MetricCacheStale, got)
	}

	// The API server goes away: nothing changes for maxStaleness.
	f.prober.set(errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"))
	for elapsed := interval; elapsed <= maxStaleness; elapsed += interval {
		f.step(interval)
		if err := f.m.Check(nil); err != nil {
			t.Fatalf("%s after the last contact (max staleness %s): readiness already fails: %v", elapsed, maxStaleness, err)
		}
		if got := f.metric(t, MetricCacheStale); got != 0 {
			t.Fatalf("%s after the last contact: %s = %v, want 0", elapsed, MetricCacheStale, got)
		}
	}
	// The gauges are computed when read: one second past maxStaleness the
	// cache counts as stale even before the next probe.
	f.clock.advance(time.Second)
	err := f.m.Check(nil)
	if err == nil {
		t.Fatalf("%s without contact (max staleness %s): readiness still passes", f.clock.now().Sub(contact), maxStaleness)
	}
	for _, want := range []string{"1m1s", "connection refused", "maximum staleness 1m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("readiness error %q does not mention %q", err, want)
		}
	}
	if got := f.metric(t, MetricCacheStale); got != 1 {
		t.Errorf("%s = %v past the maximum staleness, want 1", MetricCacheStale, got)
	}
	if got, want := f.metric(t, MetricAPIServerLastContact), float64(contact.Unix()); got != want {
		t.Errorf("%s = %v during the outage, want the last contact %v", MetricAPIServerLastContact, got, want)
	}
	f.step(interval - time.Second)
	f.step(interval)
	if got, want := f.metric(t, MetricAPIServerProbeErrors), float64(maxStaleness/interval+2); got != want {
		t.Errorf("%s = %v, want %v", MetricAPIServerProbeErrors, got, want)
	}

	// It comes back: ready and fresh at the first successful probe.
	f.prober.set(nil)
	f.step(interval)
	if err := f.m.Check(nil); err != nil {
		t.Errorf("after contact was restored: %v", err)
	}
	if got := f.metric(t, MetricCacheStale); got != 0 {
		t.Errorf("%s = %v after contact was restored, want 0", MetricCacheStale, got)
	}
	if got, want := f.metric(t, MetricAPIServerLastContact), float64(f.clock.now().Unix()); got != want {
		t.Errorf("%s = %v after contact was restored, want %v", MetricAPIServerLastContact, got, want)
	}

	// One line per transition, not one per failed probe.
	for substr, want := range map[string]int{
		"cannot reach the API server":          1,
		"longer than the maximum staleness":    1,
		"contact with the API server restored": 1,
	} {
		if got := f.logs.count(substr); got != want {
			t.Errorf("%d log lines with %q, want %d; logs:\n%s", got, substr, want, f.logs)
		}
	}
}

func TestStalenessBlipsDoNotFlap(t *testing.T) {
	const interval, maxStaleness = time.Second, 10 * time.Second
	f := newMonitorFixture(t, interval, maxStaleness)
	f.step(0)
	// 9 s down, 1 s up, repeatedly: never stale.
	for cycle := 0; cycle < 5; cycle++ {
		f.prober.set(errors.New("timeout"))
		for i := 0; i < 9; i++ {
			f.step(interval)
			if err := f.m.Check(nil); err != nil {
				t.Fatalf("cycle %d, %d s into a 9 s blip: %v", cycle, i+1, err)
			}
		}
		f.prober.set(nil)
		f.step(interval)
	}
	if got := f.logs.count("longer than the maximum staleness"); got != 0 {
		t.Errorf("logged staleness %d times for blips shorter than the maximum", got)
	}
	if got := f.logs.count("cannot reach the API server"); got != 5 {
		t.Errorf("logged %d lost contacts for 5 blips; logs:\n%s", got, f.logs)
	}
}

func TestStalenessNoContactSinceStart(t *testing.T) {
	f := newMonitorFixture(t, time.Second, 10*time.Second)
	f.prober.set(errors.New("no route to host"))
	if err := f.m.Check(nil); err != nil {
		t.Fatalf("right after start: %v", err)
	}
	f.step(10 * time.Second)
	if err := f.m.Check(nil); err != nil {
		t.Fatalf("at exactly the maximum staleness: %v", err)
	}
	f.step(time.Second)
	err := f.m.Check(nil)
	if err == nil || !strings.Contains(err.Error(), "without any successful contact") || !strings.Contains(err.Error(), "no route to host") {
		t.Errorf("11 s after start without contact: got %v, want an error naming the missing contact and the last error", err)
	}
	if got := f.metric(t, MetricAPIServerLastContact); got != 0 {
		t.Errorf("%s = %v before any contact, want 0", MetricAPIServerLastContact, got)
	}
	if got := f.metric(t, MetricCacheStale); got != 1 {
		t.Errorf("%s = %v, want 1", MetricCacheStale, got)
	}
}

func TestStalenessProbeTimeout(t *testing.T) {
	const interval = 50 * time.Millisecond
	m := newStalenessMonitor(func(ctx context.Context) error {
		<-ctx.Done() // an API server that accepts the connection and never answers
		return ctx.Err()
	}, interval, time.Second, time.Now, logr.Discard())
	reg := prometheus.NewRegistry()
	if err := m.register(reg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m.probeOnce(context.Background())
	if took := time.Since(start); took > 20*interval {
		t.Errorf("a hanging probe took %s, want it cut off after about %s", took, interval)
	}
	if !errors.Is(m.lastErr, context.DeadlineExceeded) {
		t.Errorf("last error %v, want the probe's deadline", m.lastErr)
	}
}

func TestStalenessShutdownIsNotAnOutage(t *testing.T) {
	f := newMonitorFixture(t, time.Second, 10*time.Second)
	f.step(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.prober.set(context.Canceled)
	f.m.probeOnce(ctx)
	if got := f.metric(t, MetricAPIServerProbeErrors); got != 0 {
		t.Errorf("a probe cancelled by shutdown counted as %v failures", got)
	}
	if got := f.logs.count("cannot reach"); got != 0 {
		t.Errorf("a probe cancelled by shutdown was logged as lost contact:\n%s", f.logs)
	}
}

func TestStalenessStartProbesUntilCancelled(t *testing.T) {
	var calls atomic.Int32
	m := newStalenessMonitor(func(context.Context) error { calls.Add(1); return nil },
		10*time.Millisecond, time.Second, time.Now, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	deadline := time.After(10 * time.Second)
	for calls.Load() < 3 {
		select {
		case <-deadline:
			t.Fatalf("%d probes in 10s with a 10ms interval", calls.Load())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v on cancellation, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after its context was cancelled")
	}
}

func TestReadyzProber(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	var paths sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path, true)
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()

	probe, err := newReadyzProber(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := probe(ctx); err != nil {
		t.Errorf("healthy API server: %v", err)
	}
	if _, ok := paths.Load("/readyz"); !ok {
		t.Error("the probe did not request /readyz")
	}
	status.Store(http.StatusInternalServerError)
	if err := probe(ctx); err == nil {
		t.Error("an API server answering /readyz with 500 counts as reached")
	}
	srv.Close()
	if err := probe(ctx); err == nil {
		t.Error("a stopped API server counts as reached")
	}
}

func TestValidateStaleness(t *testing.T) {
	base := Config{CertDir: "/certs", Port: 9443, PodConflicts: "warn",
		Validation: validation.Options{Enforcement: validation.EnforcementDeny}}
	for _, tc := range []struct {
		name               string
		interval, maxStale time.Duration
		wantErr            string
	}{
		{name: "defaults", interval: 0, maxStale: 0},
		{name: "explicit", interval: time.Second, maxStale: 15 * time.Second},
		{name: "exactly twice", interval: 5 * time.Second, maxStale: 10 * time.Second},
		{name: "too tight", interval: 5 * time.Second, maxStale: 9 * time.Second, wantErr: "at least twice"},
		{name: "interval too long for the default", interval: 45 * time.Second, maxStale: 0, wantErr: "at least twice"},
		{name: "negative", interval: -time.Second, maxStale: 0, wantErr: "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.StalenessCheckInterval, cfg.MaxStaleness = tc.interval, tc.maxStale
			err := cfg.Validate()
			if tc.wantErr == "" && err != nil {
				t.Errorf("Validate: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestRunManagerBoundsShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stuck := func(context.Context) error { select {} }
	done := make(chan error, 1)
	go func() { done <- runManager(ctx, stuck, 50*time.Millisecond) }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a manager that does not stop must be reported, got nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runManager did not return after its timeout")
	}

	ctx, cancel = context.WithCancel(context.Background())
	clean := func(ctx context.Context) error { <-ctx.Done(); return nil }
	go func() { done <- runManager(ctx, clean, time.Minute) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("a clean stop must return nil, got %v", err)
	}
}
