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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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
// comes at least LeaseDuration − LeaseClientTimeout − ValidFor = 9 s before
// a new leader's first, more than the API server's webhook timeout (5 s)
// within which it stores or drops what was admitted.
const (
	LeaseDuration      = 15 * time.Second
	RenewDeadline      = 8 * time.Second
	RetryPeriod        = 2 * time.Second
	LeaseClientTimeout = time.Second
	ValidFor           = 5 * time.Second
	// ForwardTimeout bounds reaching the leader (connecting and the TLS
	// handshake) and reading the Lease when it could not be reached.
	ForwardTimeout = 500 * time.Millisecond
	// AnswerTimeout bounds one forwarded review, answer included. A new
	// leader's first decisions wait for Settle and read the API server, so
	// they take a little over a second; a steady leader answers in
	// milliseconds.
	AnswerTimeout = 2 * time.Second
	// Settle is how long after a leader stopped deciding what it admitted
	// last is assumed stored: the API server stores an object right after
	// its validating webhooks answer.
	Settle = time.Second
	// QuietFor: a leader whose Lease record this replica has seen unchanged
	// for this long no longer decides (its last renewal is older than
	// LeaseClientTimeout + ValidFor) and what it admitted is stored. Before
	// that, a leader that does not answer may still be deciding, and a
	// follower refuses rather than decide next to it.
	QuietFor = LeaseClientTimeout + ValidFor + Settle
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
	// lapsed: leading, but the last renewal is older than ValidFor; a
	// renewal that succeeds later starts a new term, warming up again.
	lapsed  bool
	leadCtx context.Context
	term    uint64
	warm    *warmup
	// The streak of failures to reach a leader: Settle waits from its
	// start.
	failingSince, lastFailure time.Time
	// timedOut is the leader that last let a forward time out, and when.
	timedOut   string
	timedOutAt time.Time
	// seen is the Lease record as last observed, and since when it is
	// unchanged (this replica's clock).
	seen      []byte
	seenSince time.Time
	// lastRenew is this replica's last successful write of the Lease.
	lastRenew time.Time
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
		Lock: &observingLock{Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: d.cfg.Namespace, Name: LeaseName},
			Client:     d.clientset.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: d.identity},
		}, observe: d.observe, wrote: d.renewed},
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
	d.leading, d.lapsed, d.leadCtx = true, false, ctx
	d.newTermLocked()
	d.mu.Unlock()
	d.cfg.Log.Info("leading Sidecar decisions; warming up: confirming with direct reads until the cache is shown complete",
		"floor", WarmupFloor.String())
}

// newTermLocked starts a term as leader: everything others may have
// admitted meanwhile has to be confirmed again.
func (d *Decider) newTermLocked() {
	d.term++
	d.warm = newWarmup(d.now())
	go d.warmUp(d.leadCtx, d.term)
}

func (d *Decider) stoppedLeading() {
	d.mu.Lock()
	was := d.leading
	d.leading, d.lapsed = false, false
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
	holds := le.IsLeader()
	fresh := holds && le.Check(ValidFor-LeaseDuration) == nil
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.leading || d.stopping || !holds {
		return false
	}
	if !fresh {
		if !d.lapsed {
			d.lapsed = true
			d.cfg.Log.Info("not deciding as leader: the decision Lease was last renewed too long ago", "validFor", ValidFor.String())
		}
		return false
	}
	if d.lapsed {
		// Others may have decided themselves meanwhile.
		d.lapsed = false
		d.cfg.Log.Info("the decision Lease is renewed again; warming up again")
		d.newTermLocked()
	}
	return true
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

// Forward implements webhook.Decider. It asks leader, then whichever replica
// the Lease names now, read from the API server (this replica's elector
// reads it only every RetryPeriod). When none answers, deciding here is safe
// only if the Lease's holder cannot be deciding: nobody holds it, this
// replica does, the holder said it does not decide (it answered without a
// decision, or nothing listens at its address), or its record has not
// changed for QuietFor. Otherwise the error wraps
// webhook.ErrLeaderMayBeDeciding.
func (d *Decider) Forward(ctx context.Context, req admission.Request, leader string) (admission.Response, error) {
	failures := map[string]error{}
	if leader != "" && !d.timedOutRecently(leader) {
		resp, err := d.forwardTo(ctx, leader, req)
		if err == nil {
			return resp, nil
		}
		failures[leader] = err
	}
	holder, err := d.readHolder(ctx)
	if err != nil {
		return admission.Response{}, d.failed(errors.Join(joinFailures(failures), fmt.Errorf("reading the Lease %s: %w", LeaseName, err), webhook.ErrLeaderMayBeDeciding))
	}
	switch holder {
	case "":
		return admission.Response{}, d.failed(errors.Join(joinFailures(failures), fmt.Errorf("no replica holds the Lease %s", LeaseName)))
	case d.identity:
		return admission.Response{}, d.failed(errors.Join(joinFailures(failures), errors.New("this replica holds the decision Lease but does not decide as leader (starting, stopping, or its renewals fail)")))
	}
	if _, tried := failures[holder]; !tried && !d.timedOutRecently(holder) {
		resp, err := d.forwardTo(ctx, holder, req)
		if err == nil {
			return resp, nil
		}
		failures[holder] = err
	}
	why := joinFailures(failures)
	if why == nil {
		why = fmt.Errorf("the leader %s let a request time out a moment ago", holder)
	}
	var notDeciding *notDecidingError
	if errors.As(failures[holder], &notDeciding) {
		return admission.Response{}, d.failed(why)
	}
	if quiet := d.quietFor(); quiet >= QuietFor {
		return admission.Response{}, d.failed(fmt.Errorf("%w; its Lease has not been renewed for %s", why, quiet.Round(time.Second)))
	}
	return admission.Response{}, d.failed(errors.Join(why, webhook.ErrLeaderMayBeDeciding))
}

// isTimeout: the leader did not answer in time (rather than refusing or
// dropping the connection, which is quick to find out again).
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}

func joinFailures(failures map[string]error) error {
	errs := make([]error, 0, len(failures))
	for _, err := range failures {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (d *Decider) forwardTo(ctx context.Context, leader string, req admission.Request) (admission.Response, error) {
	address, err := AddressOf(leader)
	if err != nil {
		return admission.Response{}, err
	}
	resp, err := d.forwarder.forward(ctx, address, req)
	if err != nil {
		if isTimeout(err) {
			d.mu.Lock()
			d.timedOut, d.timedOutAt = leader, d.now()
			d.mu.Unlock()
		}
		return admission.Response{}, err
	}
	d.mu.Lock()
	d.failingSince, d.timedOut = time.Time{}, ""
	d.mu.Unlock()
	return resp, nil
}

// readHolder reads the decision Lease from the API server, and observes it.
func (d *Decider) readHolder(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	lease, err := d.clientset.CoordinationV1().Leases(d.cfg.Namespace).Get(ctx, LeaseName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	record := resourcelock.LeaseSpecToLeaderElectionRecord(&lease.Spec)
	raw, err := json.Marshal(*record)
	if err != nil {
		return "", err
	}
	d.observe(raw)
	return record.HolderIdentity, nil
}

// observe notes the Lease record as read now, by the elector or by
// readHolder (both encode it as the LeaseLock does).
func (d *Decider) observe(raw []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !bytes.Equal(raw, d.seen) {
		d.seen, d.seenSince = raw, d.now()
	}
}

// quietFor is how long the Lease record has been seen unchanged.
func (d *Decider) quietFor() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		return 0
	}
	return d.now().Sub(d.seenSince)
}

// failed records that no leader answered and returns err.
func (d *Decider) failed(err error) error {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failingSince.IsZero() || now.Sub(d.lastFailure) > failureStreakGap {
		d.failingSince = now
	}
	d.lastFailure = now
	return err
}

// timedOutRecently: leader let a forward time out within the last
// RetryPeriod; asking it again would likely cost the whole ForwardTimeout
// once more.
func (d *Decider) timedOutRecently(leader string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.timedOut == leader && d.now().Sub(d.timedOutAt) < RetryPeriod
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

// observingLock is the elector's Lease lock, noting every record it reads
// (every RetryPeriod) or writes, so that a follower knows since when the
// leader's record is unchanged.
type observingLock struct {
	resourcelock.Interface
	observe func(raw []byte)
	// wrote is called after each successful write (this replica acquired
	// or renewed).
	wrote func()
}

func (l *observingLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	record, raw, err := l.Interface.Get(ctx)
	if err == nil {
		l.observe(raw)
	}
	return record, raw, err
}

func (l *observingLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, ler)
	l.observeWritten(ler, err)
	return err
}

func (l *observingLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, ler)
	l.observeWritten(ler, err)
	return err
}

func (l *observingLock) observeWritten(ler resourcelock.LeaderElectionRecord, err error) {
	if err != nil {
		return
	}
	if raw, err := json.Marshal(ler); err == nil {
		l.observe(raw)
	}
	l.wrote()
}

// renewed notes a successful write of the Lease by this replica. A gap of
// more than ValidFor since the previous one means the lead lapsed in
// between, whether or not a request noticed: followers may have decided
// themselves meanwhile, so a new term begins, warming up again.
func (d *Decider) renewed() {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	gap := now.Sub(d.lastRenew)
	d.lastRenew = now
	if d.leading && gap > ValidFor && !d.stopping {
		d.lapsed = false
		d.cfg.Log.Info("the decision Lease is renewed again after a gap; warming up again", "gap", gap.Round(time.Millisecond).String())
		d.newTermLocked()
	}
}
