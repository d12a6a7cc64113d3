package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
)

func runServe(ctx context.Context, args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg := server.DefaultConfig()
	server.BindFlags(fs, &cfg)
	var logs server.LogOptions
	logs.BindFlags(fs)
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
	log := logs.Logger(stderr)
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
