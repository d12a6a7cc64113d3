package server

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
)

// Defaults of Config.StalenessCheckInterval and Config.MaxStaleness.
const (
	DefaultStalenessCheckInterval = 5 * time.Second
	DefaultMaxStaleness           = 60 * time.Second
	// maxProbeTimeout bounds one probe; a probe never outlives its interval.
	maxProbeTimeout = 5 * time.Second
)

// Names of the staleness metrics and of the readiness check.
const (
	MetricAPIServerLastContact = "sidecar_webhook_apiserver_last_contact_timestamp_seconds"
	MetricCacheStale           = "sidecar_webhook_cache_stale"
	MetricAPIServerProbeErrors = "sidecar_webhook_apiserver_probe_failures_total"
	ReadyzAPIServerContact     = "apiserver-contact"
)

// apiServerProber makes one cheap request to the API server and reports
// whether it answered healthy.
type apiServerProber func(ctx context.Context) error

// newReadyzProber probes GET /readyz with the server's own credentials.
// /readyz (rather than /version) also fails while the API server cannot
// reach etcd, which is when the informers stop receiving changes too.
func newReadyzProber(restConfig *rest.Config) (apiServerProber, error) {
	cfg := rest.CopyConfig(restConfig)
	// The probe must never wait behind the manager's client-side rate
	// limiter, nor be retried by it: one attempt per interval.
	cfg.RateLimiter = nil
	cfg.QPS, cfg.Burst = 5, 10
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building the API server probe client: %w", err)
	}
	rc := dc.RESTClient()
	return func(ctx context.Context) error {
		var status int
		res := rc.Get().AbsPath("/readyz").MaxRetries(0).Do(ctx).StatusCode(&status)
		if err := res.Error(); err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /readyz answered HTTP %d", status)
		}
		return nil
	}, nil
}

// stalenessMonitor probes the API server every interval and remembers the
// last successful contact. The informer caches keep serving while the API
// server is unreachable; this is how the webhook notices that what it
// decides from may be getting old: after maxStaleness without contact the
// readiness check "apiserver-contact" fails and sidecar_webhook_cache_stale
// is 1. Shorter blips change neither, so readiness does not flap.
//
// It runs on every replica (every replica answers admission requests).
type stalenessMonitor struct {
	probe        apiServerProber
	now          func() time.Time
	interval     time.Duration
	timeout      time.Duration
	maxStaleness time.Duration
	log          logr.Logger
	failures     prometheus.Counter

	mu          sync.Mutex
	created     time.Time // the baseline before the first contact
	lastContact time.Time // zero until the first successful probe
	lastErr     error     // of the latest probe; nil after a success
	reported    bool      // the stale state has been logged
}

func newStalenessMonitor(probe apiServerProber, interval, maxStaleness time.Duration, now func() time.Time, log logr.Logger) *stalenessMonitor {
	if interval <= 0 {
		interval = DefaultStalenessCheckInterval
	}
	if maxStaleness <= 0 {
		maxStaleness = DefaultMaxStaleness
	}
	return &stalenessMonitor{
		probe:        probe,
		now:          now,
		interval:     interval,
		timeout:      min(interval, maxProbeTimeout),
		maxStaleness: maxStaleness,
		log:          log,
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricAPIServerProbeErrors,
			Help: "Probes of the API server (GET /readyz) that failed or timed out.",
		}),
		created: now(),
	}
}

// register exposes the monitor's metrics. The gauges are computed when
// scraped, so sidecar_webhook_cache_stale turns 1 as soon as maxStaleness
// has passed, not only at the next probe.
func (m *stalenessMonitor) register(reg prometheus.Registerer) error {
	lastContact := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricAPIServerLastContact,
		Help: "Unix time of the last successful request to the API server (GET /readyz); 0 before the first one.",
	}, func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.lastContact.IsZero() {
			return 0
		}
		return float64(m.lastContact.UnixNano()) / 1e9
	})
	stale := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricCacheStale,
		Help: "1 while the API server has not been reached for longer than --max-staleness: admission decisions come from a cache that may miss recent changes.",
	}, func() float64 {
		if m.Check(nil) != nil {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{lastContact, stale, m.failures} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (m *stalenessMonitor) NeedLeaderElection() bool { return false }

// Start probes until ctx ends.
func (m *stalenessMonitor) Start(ctx context.Context) error {
	ticker := time.NewTicker(m.interval)
	defer ticker.Stop()
	for {
		m.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// probeOnce makes one probe and records its outcome.
func (m *stalenessMonitor) probeOnce(ctx context.Context) {
	probeCtx, cancel := context.WithTimeout(ctx, m.timeout)
	err := m.probe(probeCtx)
	cancel()
	if ctx.Err() != nil {
		return // shutting down: not the API server's fault
	}
	now := m.now()

	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		if m.lastErr != nil {
			m.log.Info("contact with the API server restored",
				"unreachableFor", m.sinceContactLocked(now).Round(time.Second).String(), "wasStale", m.reported)
		}
		m.lastContact, m.lastErr, m.reported = now, nil, false
		return
	}
	m.failures.Inc()
	if m.lastErr == nil {
		// The first failure: the API server may be restarting; the cache
		// keeps answering and nothing changes for readiness yet.
		m.log.Info("cannot reach the API server; answering from the cache",
			"error", err.Error(), "maxStaleness", m.maxStaleness.String())
	}
	m.lastErr = err
	if age := m.sinceContactLocked(now); age > m.maxStaleness && !m.reported {
		m.reported = true
		m.log.Error(err, "no contact with the API server for longer than the maximum staleness; the cache may be stale and the replica reports not ready",
			"unreachableFor", age.Round(time.Second).String(), "maxStaleness", m.maxStaleness.String())
	}
}

func (m *stalenessMonitor) sinceContactLocked(now time.Time) time.Duration {
	if m.lastContact.IsZero() {
		return now.Sub(m.created)
	}
	return now.Sub(m.lastContact)
}

// Check is the "apiserver-contact" readiness check: it fails only once
// maxStaleness has passed without a successful probe.
func (m *stalenessMonitor) Check(*http.Request) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	age := m.sinceContactLocked(now)
	if age <= m.maxStaleness {
		return nil
	}
	what := "since the last successful contact"
	if m.lastContact.IsZero() {
		what = "since start without any successful contact"
	}
	lastErr := "no probe finished yet"
	if m.lastErr != nil {
		lastErr = m.lastErr.Error()
	}
	return fmt.Errorf("the API server has not answered for %s %s (more than the maximum staleness %s; last error: %s); admission decisions come from a cache that may be stale",
		age.Round(time.Second), what, m.maxStaleness, lastErr)
}
