package server

import (
	"flag"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	crzap "sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// BindFlags binds the server's flags to cfg. `sidecar-webhook serve` and the
// development command (cmd/sidecar-webhook-dev) both call it, so the local
// server takes exactly the flags and defaults of the shipped one. Each
// command adds its own: serve --kubeconfig, and both --leader-elect and
// --leader-election-namespace, whose defaults differ between them.
func BindFlags(fs *flag.FlagSet, cfg *Config) {
	fs.StringVar(&cfg.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory with tls.crt and tls.key (reloaded when they change)")
	fs.IntVar(&cfg.Port, "port", 9443, "HTTPS port of the webhook server")
	fs.StringVar(&cfg.MetricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint (0 disables)")
	fs.StringVar(&cfg.HealthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 disables)")
	fs.StringVar(&cfg.PprofAddr, "pprof-bind-address", "0", "address of /debug/pprof/ for CPU and heap profiles (0 disables; keep it off in production)")
	fs.Func("enforcement", "deny (default) or warn: warn admits Sidecars that break a rule and reports each as a warning", func(s string) error {
		cfg.Validation.Enforcement = validation.Enforcement(s)
		return nil
	})
	fs.BoolVar(&cfg.Validation.AllowNamespaceOverride, "allow-namespace-override", false,
		"honour the namespace label "+validation.NamespaceEnforcementLabel+"=warn")
	fs.StringVar(&cfg.RootNamespace, "root-namespace", "", "mesh root namespace (default: rootNamespace from Istio's mesh config, else istio-system)")
	fs.StringVar(&cfg.IstioNamespace, "istio-namespace", mesh.DefaultIstioNamespace, "istiod's namespace, which holds Istio's mesh config")
	fs.StringVar(&cfg.IstioRevision, "istio-revision", "", "control-plane revision whose mesh config is read (ConfigMap istio-REVISION; default: the default revision's, ConfigMap istio)")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", mesh.DefaultClusterDomain, "the cluster's DNS domain, which Service host names end in (name.namespace.svc.DOMAIN)")
	fs.StringVar(&cfg.IPFamily, "ip-family", IPFamilyAuto, "the pods' IP family, which decides the egress bind default: auto (detect from the nodes' pod CIDRs, else Service default/kubernetes), ipv4, ipv6 or dual")
	fs.DurationVar(&cfg.AuditInterval, "audit-interval", time.Minute, "how often existing Sidecars are audited for conflicts (0 disables)")
	fs.BoolVar(&cfg.PolicyReports, "policy-reports", true, "while the wgpolicyk8s.io PolicyReport CRD is installed, the audit keeps one PolicyReport per namespace with findings (conflicts, Sidecars without effect)")
	fs.StringVar(&cfg.PodConflicts, "pod-conflicts", "warn", "warn or deny: what to do with a pod that several Sidecars select")
	fs.BoolVar(&cfg.ReconcilePods, "reconcile-pods", true, "keep pod annotations true when Sidecars or pod labels change")
	fs.Float64Var(&cfg.PodReconcileQPS, "pod-reconcile-qps", 20, "maximum pod annotation patches per second")
	fs.DurationVar(&cfg.StalenessCheckInterval, "staleness-check-interval", DefaultStalenessCheckInterval,
		"how often the API server is probed (GET /readyz) to tell whether the caches still receive changes")
	fs.DurationVar(&cfg.MaxStaleness, "max-staleness", DefaultMaxStaleness,
		"how long the API server may stay unreachable before /readyz fails (check apiserver-contact) and sidecar_webhook_cache_stale is 1; the webhook keeps answering from its cache either way")
	fs.BoolFunc("confirm-reads", "without --leader-elect: before admitting a Sidecar that creates or changes a workloadSelector, re-read its namespace's Sidecars from the API server (turn off only with a single replica: its own record of pending admissions then closes the race); with --leader-elect the decision leader decides without reads and this flag has no effect (default true)", func(s string) error {
		confirm, err := strconv.ParseBool(s)
		cfg.SkipConfirmReads = !confirm
		return err
	})
	fs.StringVar(&cfg.AdvertiseAddress, "advertise-address", os.Getenv("POD_IP"), "with --leader-elect: the IP the other replicas reach this one at (on --port) when it leads Sidecar decisions (default $POD_IP)")
	fs.StringVar(&cfg.DeciderServerName, "decider-server-name", "", "with --leader-elect: the DNS name the decision leader's serving certificate is verified for when forwarding to it (default sidecar-webhook.NAMESPACE.svc, NAMESPACE the --leader-election-namespace)")
}

// DefaultConfig is the Config before any flag is parsed: the values that
// BindFlags' defaults do not set.
func DefaultConfig() Config {
	return Config{Validation: validation.Options{Enforcement: validation.EnforcementDeny}, PodConflicts: "warn", IPFamily: IPFamilyAuto}
}

// LogOptions are the logging flags of every long-running command (serve and
// the development command).
type LogOptions struct {
	Development bool
	Verbosity   int
}

// BindFlags binds --log-development and -v to o.
func (o *LogOptions) BindFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Development, "log-development", false, "human-readable console logs instead of JSON")
	fs.IntVar(&o.Verbosity, "v", 0, "log verbosity; 1 adds denial messages (which quote object fields)")
}

// Logger is the zap logger o describes, writing to w.
func (o LogOptions) Logger(w io.Writer) logr.Logger {
	return crzap.New(
		crzap.WriteTo(w),
		crzap.UseDevMode(o.Development),
		crzap.Level(zapcore.Level(-o.Verbosity)),
	)
}
