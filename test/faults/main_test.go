//go:build controlplane

// Package faults_test runs the real `sidecar-webhook serve` binary against a
// real local control plane (etcd and kube-apiserver) and breaks things
// around it: the API server goes away and comes back, the process gets
// SIGTERM under load, a minute of steady load, and what its logs and denials
// may reveal. The tests call the webhook over HTTPS with AdmissionReview
// bodies, exactly as the API server does; the webhook configurations are not
// registered, so objects the tests create are stored without the webhook.
//
// The tests run one after another (one of them stops the API server) and
// share one control plane, started by TestMain.
package faults_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// env is shared by every test; TestMain fills it.
var env struct {
	root    string
	tmp     string
	binary  string // sidecar-webhook built from this checkout
	cluster *localcluster.Cluster
	client  client.Client
	certDir string
	caPEM   []byte
	caPool  *x509.CertPool
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	env.root = root
	assets := filepath.Join(root, "bin")
	if err := localcluster.CheckAssets(assets); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL faults: %v; run `make controlplane` (CI=true, so this is an error, not a skip)\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP faults: %v; run `make controlplane` (with CI=true this fails instead)\n", err)
		return 0
	}

	tmp, err := os.MkdirTemp("", "sidecar-webhook-faults-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	env.tmp = tmp
	code := setUpAndRun(m, assets)
	if code == 0 {
		_ = os.RemoveAll(tmp)
	} else {
		fmt.Fprintf(os.Stderr, "faults: kept %s (webhook logs, control plane state) for inspection\n", tmp)
	}
	return code
}

func setUpAndRun(m *testing.M, assets string) int {
	// The binary under test is built from this checkout, so it has exactly
	// the flags and code the tests expect (bin/sidecar-webhook may be stale).
	start := time.Now()
	env.binary = filepath.Join(env.tmp, "sidecar-webhook")
	if err := goBuild(env.root, env.binary, "./cmd/sidecar-webhook"); err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "faults: built %s in %s\n", env.binary, time.Since(start).Round(100*time.Millisecond))

	// envtest logs through controller-runtime's global logger.
	ctrllog.SetLogger(logr.Discard())
	crdFile, err := crds.IstioCRDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		AssetsDir: assets,
		StateDir:  filepath.Join(env.tmp, "controlplane"),
		CRDPaths:  []string{crdFile},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	env.cluster = cluster
	fmt.Fprintf(os.Stderr, "faults: control plane ready in %s\n", cluster.StartupDuration.Round(100*time.Millisecond))
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "faults: stopping the control plane: %v\n", err)
		}
	}()

	scheme, err := informer.NewScheme()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	cfg := rest.CopyConfig(cluster.Config)
	cfg.Timeout = 30 * time.Second
	if env.client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}

	bundle, err := devcerts.Generate([]string{"127.0.0.1", "localhost"}, time.Now(), 24*time.Hour)
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	env.certDir = filepath.Join(env.tmp, "certs")
	if err := bundle.WriteDir(env.certDir); err != nil {
		fmt.Fprintf(os.Stderr, "faults: %v\n", err)
		return 1
	}
	env.caPEM = bundle.CACert
	env.caPool = x509.NewCertPool()
	env.caPool.AppendCertsFromPEM(bundle.CACert)

	return m.Run()
}

// goBuild builds pkg (relative to dir) into out with the go command that
// runs these tests.
func goBuild(dir, out, pkg string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the webhook: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, pkg)
	cmd.Dir = dir
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, output.String())
	}
	return nil
}
