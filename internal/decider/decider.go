// Package decider lets one replica at a time decide every Sidecar that could
// start a conflict: the leader of the Lease sidecar-webhook-decider. The
// leader advertises its address in its identity; the others forward it
// their reviews over TLS and return its answer. The leader decides from its
// cache plus what it admitted that the cache does not show yet, without
// reading the API server. A new leader confirms with direct reads until its
// cache has shown that it lacks nothing, and a follower that cannot reach a
// leader decides itself with a direct read, serialized with every other
// such decision through a ledger in the API server. docs/decisions.md has
// the reasoning and the timings.
package decider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/certs"
	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// LeaseName is the decision Lease, in the webhook's namespace next to the
// manager's own (which elects the audit and the reconciler, with long
// timings that suit them and would not suit this).
const LeaseName = "sidecar-webhook-decider"

// Timings. The leader decides only while its last successful renewal is at
// most ValidFor old. A renewal observed at t was written at t −
// LeaseClientTimeout at the earliest, and no other replica takes the Lease
// before LeaseDuration after that write; so the old leader's last decision
// comes at least LeaseDuration − LeaseClientTimeout − ValidFor = 6 s before
// a new leader's first, more than the API server's webhook timeout (5 s)
// within which it stores or drops what was admitted.
const (
	LeaseDuration      = 15 * time.Second
	RenewDeadline      = 8 * time.Second
	RetryPeriod        = 2 * time.Second
	LeaseClientTimeout = 2 * time.Second
	ValidFor           = 7 * time.Second
	// ForwardTimeout bounds one attempt to reach the leader.
	ForwardTimeout = 500 * time.Millisecond
	// Settle is how long after a leader stopped answering (or handed over)
	// what it admitted last is assumed stored: the API server stores an
	// object right after its validating webhooks answer.
	Settle = time.Second
	// WarmupFloor: no namespace is decided from a new leader's cache alone
	// before this, the webhook timeout plus Settle, so that decisions other
	// replicas started before this term are stored.
	WarmupFloor = time.Duration(webhook.SidecarTimeoutSeconds)*time.Second + Settle
	// failureStreakGap: a failure this long after the last one starts a new
	// streak (and a new Settle).
	failureStreakGap = 10 * time.Second
	// comparisonAttempts bound the full comparisons of a warm-up; after
	// them, namespaces still cold warm up one by one.
	comparisonAttempts = 10
	comparisonInterval = 2 * time.Second
)

// Metric names.
const (
	MetricLeader    = "sidecar_webhook_decision_leader"
	MetricWarmingUp = "sidecar_webhook_decision_warming_up"
)

// Config is what the decider needs from the server.
type Config struct {
	// Namespace holds the decision Lease and the ledgers.
	Namespace string
	// PodName names this replica in its identity.
	PodName string
	// Address is this replica's host:port, where the others forward to.
	Address string
	// CertDir holds ca.crt, the CA of every replica's serving certificate.
	CertDir string
	// ServerName is the DNS name the leader's certificate is checked for.
	ServerName string
	RestConfig *rest.Config
	// Reader reads the API server directly (not a cache).
	Reader client.Reader
	// Cached returns namespace's Sidecars from this replica's cache, and
	// Ready reports whether that cache has synced.
	Cached func(namespace string) []clusterview.SidecarRef
	Ready  func() error
	Log    logr.Logger
}

// Decider implements webhook.Decider. Start it with the manager (every
// replica runs one); it campaigns once the cache has synced.
type Decider struct {
	cfg       Config
	identity  string
	clientset kubernetes.Interface
	forwarder *forwarder
	ledger    *ledger
	now       func() time.Time

	elector atomic.Pointer[leaderelection.LeaderElector]

	mu       sync.Mutex
	leading  bool
	stopping bool
	term     uint64
	warm     *warmup
	// The streak of failures to reach a leader: Settle waits from its
	// start.
	failingSince, lastFailure time.Time
	lastFailed                string
}

var _ webhook.Decider = (*Decider)(nil)

// New checks cfg and builds the decider.
func New(cfg Config) (*Decider, error) {
	if cfg.Namespace == "" {
		return nil, errors.New("the decision Lease needs a namespace (--leader-election-namespace or $POD_NAMESPACE)")
	}
	if cfg.ServerName == "" {
		return nil, errors.New("the DNS name of the leader's serving certificate is needed (--decider-server-name)")
	}
	identity, err := NewIdentity(cfg.PodName, cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("the address this replica advertises (--advertise-address, $POD_IP): %w", err)
	}
	fwd, err := newForwarder(filepath.Join(cfg.CertDir, certs.CAFile), cfg.ServerName, time.Now)
	if err != nil {
		return nil, err
	}
	rc := rest.CopyConfig(cfg.RestConfig)
	rc.Timeout = LeaseClientTimeout
	rest.AddUserAgent(rc, "sidecar-webhook-decider")
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Decider{
		cfg: cfg, identity: identity, clientset: cs, forwarder: fwd, now: time.Now,
		ledger: &ledger{leases: cs.CoordinationV1().Leases(cfg.Namespace), identity: identity, now: time.Now},
	}, nil
}

// Identity is this replica's name in the decision Lease.
func (d *Decider) Identity() string { return d.identity }

// Register exposes whether this replica leads and whether it warms up.
func (d *Decider) Register(reg prometheus.Registerer) error {
	leader := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricLeader,
		Help: "1 while this replica leads Sidecar decisions (holds the Lease " + LeaseName + " and renewed it recently).",
	}, func() float64 { return boolGauge(d.leads()) })
	warming := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: MetricWarmingUp,
		Help: "1 while this replica leads but still confirms some namespaces with direct reads (a new leader's first seconds).",
	}, func() float64 {
		if !d.leads() {
			return 0
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return boolGauge(d.warm != nil && !d.warm.done())
	})
	for _, c := range []prometheus.Collector{leader, warming} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NeedLeaderElection: every replica runs its decider (the manager's own
// election is for the audit and the reconciler).
func (d *Decider) NeedLeaderElection() bool { return false }

// Start campaigns for the decision Lease until ctx ends, then stops
// deciding as leader and releases the Lease.
func (d *Decider) Start(ctx context.Context) error {
	// A leader with an unsynced cache could only refuse: campaign once the
	// cache has synced.
	for d.cfg.Ready() != nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	d.cfg.Log.Info("campaigning for the Sidecar decision Lease", "lease", d.cfg.Namespace+"/"+LeaseName, "identity", d.identity)
	for {
		// The elector's context ends only after this replica has stopped
		// deciding as leader, so that the Lease is released (and another
		// replica takes over at once) only then.
		electorCtx, cancel := context.WithCancel(klog.NewContext(context.Background(), d.cfg.Log.WithName("election")))
		stop := context.AfterFunc(ctx, func() {
			d.mu.Lock()
			d.stopping = true
			d.mu.Unlock()
			cancel()
		})
		le, err := leaderelection.NewLeaderElector(d.electionConfig())
		if err != nil {
			stop()
			cancel()
			return err
		}
		d.elector.Store(le)
		le.Run(electorCtx)
		stop()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		d.cfg.Log.Info("lost the Sidecar decision Lease; campaigning again")
	}
}

func (d *Decider) electionConfig() leaderelection.LeaderElectionConfig {
	return leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: d.cfg.Namespace, Name: LeaseName},
			Client:     d.clientset.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: d.identity},
		},
		Name:            LeaseName,
		LeaseDuration:   LeaseDuration,
		RenewDeadline:   RenewDeadline,
		RetryPeriod:     RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: d.startedLeading,
			OnStoppedLeading: d.stoppedLeading,
			OnNewLeader: func(identity string) {
				d.cfg.Log.Info("Sidecar decision leader", "leader", identity, "self", identity == d.identity)
			},
		},
	}
}

func (d *Decider) startedLeading(ctx context.Context) {
	d.mu.Lock()
	if ctx.Err() != nil { // the term already ended
		d.mu.Unlock()
		return
	}
	d.term++
	term := d.term
	d.leading = true
	d.warm = newWarmup(d.now())
	d.mu.Unlock()
	d.cfg.Log.Info("leading Sidecar decisions; warming up: confirming with direct reads until the cache is shown complete",
		"floor", WarmupFloor.String())
	go d.warmUp(ctx, term)
}

func (d *Decider) stoppedLeading() {
	d.mu.Lock()
	was := d.leading
	d.leading = false
	d.warm = nil
	d.mu.Unlock()
	if was {
		d.cfg.Log.Info("stopped leading Sidecar decisions")
	}
}

// warmUp compares every stored Sidecar with the cache after the floor, until
// every namespace agreed or the attempts run out.
func (d *Decider) warmUp(ctx context.Context, term uint64) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(WarmupFloor):
	}
	for attempt := 1; attempt <= comparisonAttempts; attempt++ {
		readAt := d.now()
		stored, err := d.listStored(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.cfg.Log.Info("warm-up: cannot list the stored Sidecars; namespaces warm up one by one meanwhile", "error", err.Error())
		} else {
			disagree := disagreeing(stored, d.cfg.Cached)
			d.mu.Lock()
			if d.term != term || d.warm == nil {
				d.mu.Unlock()
				return
			}
			d.warm.comparedAll(readAt, disagree)
			done, cold := d.warm.done(), len(d.warm.cold)
			d.mu.Unlock()
			if done {
				d.cfg.Log.Info("warmed up: the cache holds every stored Sidecar; deciding from the cache", "sidecars", len(stored))
				return
			}
			d.cfg.Log.Info("warm-up: the cache differs from the API server in some namespaces", "namespaces", cold)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(comparisonInterval):
		}
	}
	d.cfg.Log.Info("warm-up: namespaces still cold warm up one by one, at their next decision")
}

// listStored lists every Sidecar's metadata from the API server, page by
// page (one consistent snapshot).
func (d *Decider) listStored(ctx context.Context) ([]storedSidecar, error) {
	var out []storedSidecar
	opts := []client.ListOption{client.Limit(500)}
	for {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(networkingv1.SchemeGroupVersion.WithKind("SidecarList"))
		listCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.cfg.Reader.List(listCtx, list, opts...)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, item := range list.Items {
			out = append(out, storedSidecar{Namespace: item.Namespace, Name: item.Name, ResourceVersion: item.ResourceVersion})
		}
		if list.Continue == "" {
			return out, nil
		}
		opts = []client.ListOption{client.Limit(500), client.Continue(list.Continue)}
	}
}

// leads reports whether this replica may decide as leader now: it holds
// the Lease, renewed it within ValidFor, and is not shutting down.
func (d *Decider) leads() bool {
	le := d.elector.Load()
	if le == nil {
		return false
	}
	d.mu.Lock()
	ok := d.leading && !d.stopping
	d.mu.Unlock()
	return ok && le.IsLeader() && le.Check(ValidFor-LeaseDuration) == nil
}

// Route implements webhook.Decider.
func (d *Decider) Route(namespace string) webhook.Route {
	if d.leads() {
		d.mu.Lock()
		warm := d.warm != nil && d.warm.warm(namespace, d.now())
		d.mu.Unlock()
		if warm {
			return webhook.Route{Path: webhook.PathLeader}
		}
		return webhook.Route{Path: webhook.PathLeaderWarmup}
	}
	if le := d.elector.Load(); le != nil {
		if holder := le.GetLeader(); holder != "" && holder != d.identity {
			return webhook.Route{Path: webhook.PathForwarded, Leader: holder}
		}
	}
	return webhook.Route{Path: webhook.PathFallback}
}

// Forward implements webhook.Decider. It tries leader (unless it failed a
// moment ago), then whichever replica the Lease names now, read from the API
// server: this replica's elector reads it only every RetryPeriod.
func (d *Decider) Forward(ctx context.Context, req admission.Request, leader string) (admission.Response, error) {
	var errs []error
	tried := map[string]bool{d.identity: true}
	if leader != "" {
		tried[leader] = true
		if !d.failedRecently(leader) {
			resp, err := d.forwardTo(ctx, leader, req)
			if err == nil {
				return resp, nil
			}
			errs = append(errs, err)
		}
	}
	holder, err := d.holder(ctx)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("reading the Lease %s: %w", LeaseName, err))
	case holder == "":
		errs = append(errs, fmt.Errorf("no replica holds the Lease %s", LeaseName))
	case holder == d.identity:
		errs = append(errs, errors.New("this replica holds the decision Lease but does not lead (yet, or any more)"))
	case !tried[holder] && !d.failedRecently(holder):
		resp, err := d.forwardTo(ctx, holder, req)
		if err == nil {
			return resp, nil
		}
		errs = append(errs, err)
	case len(errs) == 0:
		errs = append(errs, fmt.Errorf("the leader %s did not answer a moment ago", holder))
	}
	d.noteFailure("")
	return admission.Response{}, errors.Join(errs...)
}

func (d *Decider) forwardTo(ctx context.Context, leader string, req admission.Request) (admission.Response, error) {
	address, err := AddressOf(leader)
	if err != nil {
		return admission.Response{}, err
	}
	resp, err := d.forwarder.forward(ctx, address, req)
	if err != nil {
		d.noteFailure(leader)
		return admission.Response{}, err
	}
	d.mu.Lock()
	d.failingSince, d.lastFailed = time.Time{}, ""
	d.mu.Unlock()
	return resp, nil
}

// holder reads the decision Lease's holder from the API server.
func (d *Decider) holder(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	lease, err := d.clientset.CoordinationV1().Leases(d.cfg.Namespace).Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// noteFailure records that no leader answered; leader is the one that did
// not, if any.
func (d *Decider) noteFailure(leader string) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failingSince.IsZero() || now.Sub(d.lastFailure) > failureStreakGap {
		d.failingSince = now
	}
	d.lastFailure = now
	if leader != "" {
		d.lastFailed = leader
	}
}

// failedRecently: leader did not answer within the last RetryPeriod; asking
// it again would likely cost the whole ForwardTimeout once more.
func (d *Decider) failedRecently(leader string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastFailed == leader && d.now().Sub(d.lastFailure) < RetryPeriod
}

// Settle implements webhook.Decider: it waits until Settle has passed since
// this replica began to lead, and since no leader answered it.
func (d *Decider) Settle(ctx context.Context) error {
	d.mu.Lock()
	var until time.Time
	if d.leading && d.warm != nil {
		until = d.warm.start.Add(Settle)
	}
	if !d.failingSince.IsZero() && d.now().Sub(d.lastFailure) <= failureStreakGap {
		if t := d.failingSince.Add(Settle); t.After(until) {
			until = t
		}
	}
	d.mu.Unlock()
	wait := until.Sub(d.now())
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Reserve implements webhook.Decider.
func (d *Decider) Reserve(ctx context.Context, ref clusterview.SidecarRef, dryRun bool, decide func([]clusterview.SidecarRef) validation.Result) (validation.Result, error) {
	return d.ledger.reserve(ctx, ref, dryRun, decide)
}

// Confirmed implements webhook.Decider.
func (d *Decider) Confirmed(namespace string, readAt time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.leading && d.warm != nil {
		d.warm.confirm(namespace, readAt)
	}
}
