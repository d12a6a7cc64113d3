// Package server assembles the running webhook: a controller-runtime manager
// with the HTTPS webhook server, metrics, health probes, the informer caches
// behind the cluster-state rules, the audit and the pod annotation
// reconciler. Both `sidecar-webhook serve` (in a cluster) and
// `sidecar-webhook-dev` (local control plane) run exactly this.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/internal/decider"
	"github.com/sidecar-webhook/sidecar-webhook/internal/podreconciler"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// Config is everything the server needs, parsed and checked by the caller.
type Config struct {
	CertDir     string
	Host        string
	Port        int
	MetricsAddr string // "0" disables
	HealthAddr  string // "0" disables
	// PprofAddr serves net/http/pprof (CPU and heap profiles); "" or "0"
	// disables. Off by default: profiles expose internals and cost CPU.
	PprofAddr string

	// RootNamespace overrides the mesh root namespace; empty means read it
	// from Istio's mesh config (following changes), else istio-system.
	RootNamespace string
	// IstioNamespace is istiod's namespace, holding its mesh config.
	IstioNamespace string
	// IstioRevision is the control-plane revision whose mesh config is read
	// (ConfigMap istio-<revision>); empty for the default revision.
	IstioRevision string
	// ClusterDomain is the cluster's DNS domain, which Service host names
	// end in (default cluster.local).
	ClusterDomain string
	// IPFamily is the pods' IP family (ipv4, ipv6, dual), or "auto" to
	// detect it from the cluster at start.
	IPFamily   string
	Validation validation.Options
	// AuditInterval is how often existing Sidecars are checked for
	// conflicts; 0 disables the audit.
	AuditInterval time.Duration
	// PolicyReports has the audit keep a wgpolicyk8s.io PolicyReport per
	// namespace with findings, while that CRD is installed.
	PolicyReports bool

	// LeaderElect elects one replica to run the audit and the reconciler
	// and, with a Lease of its own, one replica to decide every Sidecar
	// that could start a conflict (internal/decider); without it this
	// replica decides alone (a single replica).
	LeaderElect             bool
	LeaderElectionNamespace string
	// AdvertiseAddress is the host (the pod's IP) the other replicas reach
	// this one at, on Port, when it leads Sidecar decisions; empty means
	// Host when that names one address.
	AdvertiseAddress string
	// DeciderServerName is the DNS name the leader's serving certificate is
	// verified for when forwarding; empty means the Service's,
	// sidecar-webhook.<LeaderElectionNamespace>.svc.
	DeciderServerName string
	// PodName names this replica in the decision Lease.
	PodName string

	// PodConflicts is "warn" (default: a pod matched by several Sidecars is
	// annotated and admitted with a warning) or "deny".
	PodConflicts string
	// ReconcilePods keeps pod annotations true as Sidecars and labels change.
	ReconcilePods bool
	// PodReconcileQPS bounds the annotation patches per second.
	PodReconcileQPS float64

	// StalenessCheckInterval is how often the API server is probed (GET
	// /readyz) to tell whether the caches still receive changes; 0 means
	// DefaultStalenessCheckInterval.
	StalenessCheckInterval time.Duration
	// MaxStaleness is how long the API server may stay unreachable before
	// the readiness check "apiserver-contact" fails and
	// sidecar_webhook_cache_stale is 1; 0 means DefaultMaxStaleness.
	MaxStaleness time.Duration
	// SkipConfirmReads turns off the re-read of a namespace's Sidecars from
	// the API server before admitting a Sidecar that creates or changes a
	// selector (see webhook.Cluster). Safe only with a single replica,
	// whose record of pending admissions already closes the race.
	SkipConfirmReads bool
}

// Validate reports configuration mistakes before anything starts.
func (c Config) Validate() error {
	if c.CertDir == "" {
		return fmt.Errorf("--cert-dir is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("--port must be between 1 and 65535, got %d", c.Port)
	}
	switch c.Validation.Enforcement {
	case validation.EnforcementDeny, validation.EnforcementWarn:
	default:
		return fmt.Errorf("--enforcement must be deny or warn, got %q", c.Validation.Enforcement)
	}
	if c.IPFamily != IPFamilyAuto && c.IPFamily != "" {
		if _, err := mesh.ParseIPFamily(c.IPFamily); err != nil {
			return fmt.Errorf("--ip-family must be auto, ipv4, ipv6 or dual, got %q", c.IPFamily)
		}
	}
	if c.PodConflicts != "warn" && c.PodConflicts != "deny" {
		return fmt.Errorf("--pod-conflicts must be warn or deny, got %q", c.PodConflicts)
	}
	if c.AuditInterval < 0 {
		return fmt.Errorf("--audit-interval must not be negative")
	}
	if c.LeaderElect {
		if _, err := c.advertiseHost(); err != nil {
			return err
		}
		if c.Port <= 0 {
			return fmt.Errorf("--port must be set with --leader-elect: the other replicas forward to it")
		}
	}
	if c.StalenessCheckInterval < 0 || c.MaxStaleness < 0 {
		return fmt.Errorf("--staleness-check-interval and --max-staleness must not be negative")
	}
	interval, maxStaleness := c.StalenessCheckInterval, c.MaxStaleness
	if interval == 0 {
		interval = DefaultStalenessCheckInterval
	}
	if maxStaleness == 0 {
		maxStaleness = DefaultMaxStaleness
	}
	if maxStaleness < 2*interval {
		return fmt.Errorf("--max-staleness (%s) must be at least twice --staleness-check-interval (%s), so that one slow probe does not flap readiness",
			maxStaleness, interval)
	}
	return nil
}

// advertiseHost is where the other replicas reach this one.
func (c Config) advertiseHost() (string, error) {
	if c.AdvertiseAddress != "" {
		return c.AdvertiseAddress, nil
	}
	if ip := net.ParseIP(c.Host); ip != nil && !ip.IsUnspecified() {
		return c.Host, nil
	}
	return "", fmt.Errorf("--leader-elect needs the address other replicas reach this one at: --advertise-address, or $POD_IP from the downward API")
}

// inClusterNamespaceFile holds the pod's namespace in a cluster.
const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// leaseNamespace is where the Leases live: the flag, else the pod's own.
func (c Config) leaseNamespace() (string, error) {
	if c.LeaderElectionNamespace != "" {
		return c.LeaderElectionNamespace, nil
	}
	raw, err := os.ReadFile(inClusterNamespaceFile)
	if err != nil {
		return "", fmt.Errorf("--leader-election-namespace is needed outside a cluster: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// TLSOptions are applied to the serving TLS config: TLS 1.2 at least and,
// for 1.2, only forward-secret AEAD suites (1.3 suites are not configurable).
func TLSOptions(cfg *tls.Config) {
	cfg.MinVersion = tls.VersionTLS12
	cfg.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, restConfig *rest.Config, log logr.Logger, reg prometheus.Registerer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	scheme, err := informer.NewScheme()
	if err != nil {
		return err
	}
	// A kubeconfig loaded by clientcmd keeps client-go's default limit of 5
	// requests per second, which would queue the confirming reads behind
	// each other; controller-runtime's convention (-1) turns it off.
	restConfig = rest.CopyConfig(restConfig)
	if restConfig.QPS == 0 {
		restConfig.QPS = -1
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 metricsserver.Options{BindAddress: orDisabled(cfg.MetricsAddr)},
		HealthProbeBindAddress:  orDisabled(cfg.HealthAddr),
		PprofBindAddress:        pprofAddr(cfg.PprofAddr),
		LeaderElection:          cfg.LeaderElect,
		LeaderElectionID:        "sidecar-webhook-leader",
		LeaderElectionNamespace: cfg.LeaderElectionNamespace,
		// Step down at once on shutdown so the next replica takes over the
		// audit and the reconciler without waiting for the lease to expire.
		LeaderElectionReleaseOnCancel: true,
		// The leader only runs the audit and the annotation reconciler,
		// neither urgent, while losing the lease ends the process. Generous
		// timings let the leader ride out API server outages of up to
		// RenewDeadline instead of restarting into an empty cache.
		LeaseDuration: ptr(60 * time.Second),
		RenewDeadline: ptr(45 * time.Second),
		RetryPeriod:   ptr(5 * time.Second),
		Cache:         informer.CacheOptions(scheme, cfg.IstioNamespace),
		WebhookServer: crwebhook.NewServer(crwebhook.Options{
			Host:    cfg.Host,
			Port:    cfg.Port,
			CertDir: cfg.CertDir,
			TLSOpts: []func(*tls.Config){TLSOptions},
		}),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	view := informer.New(mgr.GetCache(), informer.Options{RootNamespace: cfg.RootNamespace, IstioNamespace: cfg.IstioNamespace, Revision: cfg.IstioRevision, ClusterDomain: cfg.ClusterDomain})
	if err := view.Register(ctx); err != nil {
		return err
	}
	if err := mgr.Add(syncWaiter{view: view, log: log.WithName("cluster-view")}); err != nil {
		return err
	}
	// With leader election the decision leader never reads, and the
	// others always do when they decide themselves: --confirm-reads is
	// for a replica that decides alone.
	cluster := &liveCluster{view: view, reader: mgr.GetAPIReader(), confirm: !cfg.SkipConfirmReads || cfg.LeaderElect}
	if cfg.SkipConfirmReads && cfg.LeaderElect {
		log.Info("--confirm-reads=false has no effect with --leader-elect: the decision leader decides from its cache, and a replica that decides without it always reads")
	}
	var leaderDecides webhook.Decider
	if cfg.LeaderElect {
		d, err := newDecider(cfg, restConfig, mgr.GetAPIReader(), view, log.WithName("decider"))
		if err != nil {
			return err
		}
		if err := d.Register(reg); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
		if err := mgr.Add(d); err != nil {
			return err
		}
		leaderDecides = d
	}

	family, err := resolveIPFamily(ctx, cfg.IPFamily, mgr.GetAPIReader(), log)
	if err != nil {
		return err
	}

	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	// The manager only runs a webhook server it has handed out: take it
	// from the manager rather than keeping the one passed in.
	webhookServer := mgr.GetWebhookServer()
	pending := webhook.NewPending(time.Now)
	handlers := webhook.Handlers{
		webhook.ValidateSidecarsPath: &webhook.SidecarValidator{Cluster: cluster, Pending: pending, Decider: leaderDecides, Options: cfg.Validation},
		webhook.MutateSidecarsPath:   &webhook.SidecarDefaulter{Options: defaults.Options{IPFamily: family}},
		webhook.MutatePodsPath:       &webhook.PodAnnotator{Views: cluster.View, DenyConflicts: cfg.PodConflicts == "deny"},
	}
	if leaderDecides != nil {
		// The same record and locks as the webhook's own path: the leader
		// decides forwarded reviews and its own as one.
		handlers[webhook.DecideSidecarsPath] = &webhook.SidecarValidator{Cluster: cluster, Pending: pending, Decider: leaderDecides, Internal: true, Options: cfg.Validation}
	}
	webhook.Register(webhookServer, handlers, metrics, log.WithName("admission"))

	if cfg.ReconcilePods {
		reconciler := &podreconciler.Reconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Views: cluster.View}
		if err := reconciler.SetupWithManager(mgr, cfg.PodReconcileQPS); err != nil {
			return fmt.Errorf("setting up the pod annotation reconciler: %w", err)
		}
	}

	if cfg.AuditInterval > 0 {
		gauge, err := newAuditGauge(reg)
		if err != nil {
			return err
		}
		a := &auditor{
			view: view, reader: mgr.GetAPIReader(), recorder: mgr.GetEventRecorder("sidecar-webhook"),
			interval: cfg.AuditInterval, gauge: gauge, log: log.WithName("audit"),
		}
		if cfg.PolicyReports {
			if a.reports, err = newPolicyReporter(restConfig, log.WithName("policy-reports")); err != nil {
				return err
			}
		}
		if err := mgr.Add(a); err != nil {
			return err
		}
	}

	// Every replica watches its own contact with the API server: the caches
	// keep answering when it is gone, and this bounds for how long that goes
	// unreported (readiness and sidecar_webhook_cache_stale).
	probe, err := newReadyzProber(restConfig)
	if err != nil {
		return err
	}
	staleness := newStalenessMonitor(probe, cfg.StalenessCheckInterval, cfg.MaxStaleness, time.Now, log.WithName("apiserver-contact"))
	if err := staleness.register(reg); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if err := mgr.Add(staleness); err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", webhookServer.StartedChecker()); err != nil {
		return err
	}
	// Ready only once the caches have synced: before that the webhook would
	// answer every Sidecar with an error.
	if err := mgr.AddReadyzCheck("caches", func(*http.Request) error { return view.Ready() }); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck(ReadyzAPIServerContact, staleness.Check); err != nil {
		return err
	}
	return runManager(ctx, mgr.Start, ShutdownTimeout)
}

// ShutdownTimeout bounds how long Run waits for the manager after ctx ends:
// long enough to answer every request in flight (the API server gives each
// at most the webhook timeout), shorter than the Deployment's 30 s grace
// period.
const ShutdownTimeout = 20 * time.Second

// runManager runs start until ctx ends, then gives it timeout to return.
// controller-runtime v0.25's manager never returns when it is stopped while
// its caches are still syncing (it waits for a sync that cannot finish);
// without this bound the process would hang until the kubelet kills it.
func runManager(ctx context.Context, start func(context.Context) error, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- start(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("the manager did not stop within %s of shutdown (were the caches still syncing?)", timeout)
	}
}

func orDisabled(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}

func ptr[T any](v T) *T { return &v }

// pprofAddr maps the flag's "0" (the convention of the other address
// flags) to controller-runtime's "" for "off".
func pprofAddr(addr string) string {
	if addr == "0" {
		return ""
	}
	return addr
}

// newDecider builds the replica's decider from the configuration.
func newDecider(cfg Config, restConfig *rest.Config, reader client.Reader, view *informer.View, log logr.Logger) (*decider.Decider, error) {
	namespace, err := cfg.leaseNamespace()
	if err != nil {
		return nil, err
	}
	host, err := cfg.advertiseHost()
	if err != nil {
		return nil, err
	}
	serverName := cfg.DeciderServerName
	if serverName == "" {
		serverName = "sidecar-webhook." + namespace + ".svc"
	}
	d, err := decider.New(decider.Config{
		Namespace:  namespace,
		PodName:    cfg.PodName,
		Address:    net.JoinHostPort(host, strconv.Itoa(cfg.Port)),
		CertDir:    cfg.CertDir,
		ServerName: serverName,
		RestConfig: restConfig,
		Reader:     reader,
		Cached:     view.Sidecars,
		Ready:      view.Ready,
		Log:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up the Sidecar decision leader election: %w", err)
	}
	log.Info("Sidecar decisions go through the leader of a Lease", "lease", namespace+"/"+decider.LeaseName, "identity", d.Identity(), "serverName", serverName)
	return d, nil
}
