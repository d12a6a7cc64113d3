// Command sidecar-webhook-dev runs the webhook on a local control plane for
// development: etcd and kube-apiserver (and kube-controller-manager when the
// assets directory has it) through envtest, Istio's CRDs from the istio.io/api
// module, the webhook on loopback with a throwaway CA, registered the way
// deploy/ registers it. `make run` starts it and the end-to-end tests drive
// it; it prints `ready: export KUBECONFIG=...` once the first request can be
// decided, and Ctrl-C stops everything.
//
// It is a command of its own so that the shipped binary (cmd/sidecar-webhook)
// links none of this: no envtest, no CRD lookup, no certificate authority.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
)

const (
	exitOK      = 0
	exitFailure = 1 // the control plane or the server could not run
	exitUsage   = 2 // bad flags
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, logs, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	log := logs.Logger(stderr)
	ctrllog.SetLogger(log)
	if err := dev(ctx, cfg, log, stdout); err != nil {
		fmt.Fprintf(stderr, "sidecar-webhook-dev: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// devConfig is the development command's configuration.
type devConfig struct {
	stateDir string
	assets   string
	server   server.Config
	// freeHealthPort: no --health-probe-bind-address was given, so the
	// probes go to a free loopback port, picked when the command runs.
	freeHealthPort bool
}

// parseFlags turns args into a devConfig: the server's own flags, as serve
// has them, with local defaults. Errors and -h output go to stderr; -h
// returns flag.ErrHelp.
func parseFlags(args []string, stderr io.Writer) (devConfig, server.LogOptions, error) {
	cfg := devConfig{server: server.DefaultConfig()}
	var logs server.LogOptions
	fs := newFlagSet(&cfg, &logs)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return cfg, logs, err
	}
	// Locally the webhook listens on loopback only, on a free port unless
	// one was asked for, and exposes no metrics by default.
	cfg.server.Host = "127.0.0.1"
	if !flagSet(fs, "decider-server-name") {
		// The serving certificate is for localhost and 127.0.0.1.
		cfg.server.DeciderServerName = "localhost"
	}
	if !flagSet(fs, "advertise-address") {
		cfg.server.AdvertiseAddress = cfg.server.Host
	}
	cfg.server.PodName = "dev"
	if !flagSet(fs, "port") {
		cfg.server.Port = 0
	}
	if !flagSet(fs, "metrics-bind-address") {
		cfg.server.MetricsAddr = "0"
	}
	// Probes on a free loopback port unless an address was asked for: the
	// command waits on /readyz before it registers the webhooks and says
	// "ready".
	cfg.freeHealthPort = !flagSet(fs, "health-probe-bind-address")
	return cfg, logs, nil
}

// newFlagSet binds every flag of the command to cfg and logs.
func newFlagSet(cfg *devConfig, logs *server.LogOptions) *flag.FlagSet {
	fs := flag.NewFlagSet("sidecar-webhook-dev", flag.ContinueOnError)
	fs.StringVar(&cfg.stateDir, "state-dir", ".local", "directory for the kubeconfig, certificates and logs")
	fs.StringVar(&cfg.assets, "assets", "", "directory with etcd, kube-apiserver and kubectl (default: ./bin or $KUBEBUILDER_ASSETS)")
	server.BindFlags(fs, &cfg.server)
	fs.BoolVar(&cfg.server.LeaderElect, "leader-elect", false, "run as in a cluster with several replicas: leader election for the audit and the reconciler, and the Sidecar decision leader (other `serve` processes against the same control plane forward to it)")
	fs.StringVar(&cfg.server.LeaderElectionNamespace, "leader-election-namespace", "kube-system", "namespace of the leader election Leases")
	logs.BindFlags(fs)
	return fs
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
