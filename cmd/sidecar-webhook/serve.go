package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// serveFlags binds the server's flags to a server.Config. Shared by serve
// and dev so that both run the same server the same way.
func bindServerFlags(fs *flag.FlagSet, cfg *server.Config) {
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
	fs.StringVar(&cfg.IPFamily, "ip-family", server.IPFamilyAuto, "the pods' IP family, which decides the egress bind default: auto (detect from the nodes' pod CIDRs, else Service default/kubernetes), ipv4, ipv6 or dual")
	fs.DurationVar(&cfg.AuditInterval, "audit-interval", time.Minute, "how often existing Sidecars are audited for conflicts (0 disables)")
	fs.BoolVar(&cfg.PolicyReports, "policy-reports", true, "while the wgpolicyk8s.io PolicyReport CRD is installed, the audit keeps one PolicyReport per namespace with findings (conflicts, Sidecars without effect)")
	fs.StringVar(&cfg.PodConflicts, "pod-conflicts", "warn", "warn or deny: what to do with a pod that several Sidecars select")
	fs.BoolVar(&cfg.ReconcilePods, "reconcile-pods", true, "keep pod annotations true when Sidecars or pod labels change")
	fs.Float64Var(&cfg.PodReconcileQPS, "pod-reconcile-qps", 20, "maximum pod annotation patches per second")
	fs.DurationVar(&cfg.StalenessCheckInterval, "staleness-check-interval", server.DefaultStalenessCheckInterval,
		"how often the API server is probed (GET /readyz) to tell whether the caches still receive changes")
	fs.DurationVar(&cfg.MaxStaleness, "max-staleness", server.DefaultMaxStaleness,
		"how long the API server may stay unreachable before /readyz fails (check apiserver-contact) and sidecar_webhook_cache_stale is 1; the webhook keeps answering from its cache either way")
	fs.BoolFunc("confirm-reads", "without --leader-elect: before admitting a Sidecar that creates or changes a workloadSelector, re-read its namespace's Sidecars from the API server (turn off only with a single replica: its own record of pending admissions then closes the race); with --leader-elect the decision leader decides without reads and this flag has no effect (default true)", func(s string) error {
		confirm, err := strconv.ParseBool(s)
		cfg.SkipConfirmReads = !confirm
		return err
	})
	fs.StringVar(&cfg.AdvertiseAddress, "advertise-address", os.Getenv("POD_IP"), "with --leader-elect: the IP the other replicas reach this one at (on --port) when it leads Sidecar decisions (default $POD_IP)")
	fs.StringVar(&cfg.DeciderServerName, "decider-server-name", "", "with --leader-elect: the DNS name the decision leader's serving certificate is verified for when forwarding to it (default sidecar-webhook.NAMESPACE.svc, NAMESPACE the --leader-election-namespace)")
}

func defaultServerConfig() server.Config {
	return server.Config{Validation: validation.Options{Enforcement: validation.EnforcementDeny}, PodConflicts: "warn", IPFamily: server.IPFamilyAuto}
}

func runServe(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := defaultServerConfig()
	bindServerFlags(fs, &cfg)
	var logs logFlags
	logs.bind(fs)
	var kubeconfig string
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config, then $KUBECONFIG)")
	fs.BoolVar(&cfg.LeaderElect, "leader-elect", true, "elect one replica to run the audit and the pod annotation reconciler, and one to decide every Sidecar that could start a conflict (the others forward to it)")
	fs.StringVar(&cfg.LeaderElectionNamespace, "leader-election-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader election Lease (default: $POD_NAMESPACE)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	cfg.PodName = podName()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook serve: %v\n", err)
		return exitUsage
	}
	log := logs.logger(stderr)
	ctrllog.SetLogger(log)
	restConfig, err := restConfigFor(kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook serve: loading kubeconfig: %v\n", err)
		return exitUsage
	}
	if err := server.Run(ctx, cfg, restConfig, log, metrics.Registry); err != nil {
		log.Error(err, "server stopped")
		return exitFailure
	}
	return exitOK
}

// restConfigFor loads an explicit kubeconfig, else controller-runtime's
// usual chain ($KUBECONFIG, in-cluster, ~/.kube/config).
func restConfigFor(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return config.GetConfig()
}

// podName is $POD_NAME, else the host name (a pod's name in a cluster).
func podName() string {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name
	}
	name, _ := os.Hostname()
	return name
}
