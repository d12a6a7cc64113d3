//go:build controlplane

// Package deploy_test verifies both installations, the kustomize manifests
// under deploy/ and the Helm chart under charts/, against a real API server
// (etcd and kube-apiserver through dev/localcluster, with cert-manager's
// and Istio's CRDs): they apply, the RBAC they grant is enough for the server
// and no more than it needs, and the Deployment passes the restricted Pod
// Security Standard. Every test runs once per installation (subtests
// kustomize and chart); test/chart checks that the chart's defaults render
// what deploy/ does.
//
// One control plane serves the whole package (TestMain). What no bare API
// server can show (cert-manager issuing the serving certificate and
// injecting the caBundle, the kubelet running the pods, the scheduler
// spreading them) is out of scope here.
package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
	"github.com/sidecar-webhook/sidecar-webhook/dev/localcluster"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

const (
	// certManagerModule is the cert-manager release whose CRDs (its
	// deploy/crds) are installed, so that the Issuers and Certificates in
	// deploy/ are validated by cert-manager's real schemas.
	certManagerModule  = "github.com/cert-manager/cert-manager"
	certManagerVersion = "v1.21.2"

	// istioNamespace exists in every Istio cluster; deploy/ and the chart
	// put a Role in it.
	istioNamespace = "istio-system"

	setupTimeout   = 5 * time.Minute
	kubectlTimeout = 90 * time.Second
)

// env is the shared control plane, set up by TestMain.
var env struct {
	root     string // repository root
	binary   string // sidecar-webhook built from this checkout
	helm     string // bin/helm; empty if it is not built (the chart's subtests skip)
	cluster  *localcluster.Cluster
	client   kubernetes.Interface // admin
	cacheDir string               // kubectl's discovery cache, private to this run
	kc       testenv.Kubectl      // bin/kubectl as the admin
	crdFiles []string
}

// logs captures every log line of the process from TestMain on: the
// server's logger, controller-runtime's global logger and klog (where
// client-go's reflectors and event broadcaster report errors such as
// "forbidden").
var logs = &logCapture{}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		return 1
	}
	env.root = root
	if err := localcluster.CheckAssets(""); err != nil {
		msg := fmt.Sprintf("deployment tests need a local control plane: %v; run `make controlplane` first", err)
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL deploy: %s (CI=true, so this is an error, not a skip)\n", msg)
			return 1
		}
		fmt.Fprintf(os.Stderr, "SKIP deploy: %s (with CI=true this fails instead)\n", msg)
		return 0
	}

	if env.helm, err = testenv.Tool(root, "helm"); err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "FAIL deploy: the chart's tests need %v (CI=true, so this is an error, not a skip)\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "deploy: skipping the chart's subtests: %v\n", err)
		env.helm = ""
	}

	logger := logs.logger()
	klog.SetLogger(logger)
	ctrllog.SetLogger(logger)

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	begin := time.Now()

	certManagerCRDs, err := certManagerCRDFiles(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		return 1
	}
	istioCRDs, err := crds.IstioCRDs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: Istio CRDs: %v\n", err)
		return 1
	}
	// The audit's PolicyReports: with their CRD, `kubectl auth can-i` can
	// name the resource (rbac_test.go).
	policyReportCRD, err := crds.PolicyReportCRD(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: PolicyReport CRD: %v\n", err)
		return 1
	}
	env.crdFiles = append(certManagerCRDs, istioCRDs, policyReportCRD)

	tmp, err := os.MkdirTemp("", "sidecar-webhook-deploy-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		return 1
	}
	env.cacheDir = filepath.Join(tmp, "kubectl-cache")

	// Built here, not taken from bin/ (which may be stale): the server test
	// runs it with each Deployment's args.
	env.binary = filepath.Join(tmp, "sidecar-webhook")
	build := exec.CommandContext(ctx, "go", "build", "-o", env.binary, "./cmd/sidecar-webhook")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: go build ./cmd/sidecar-webhook: %v\n%s", err, out)
		return 1
	}

	// The cluster outlives ctx (which only bounds the setup): Stop ends it.
	cluster, err := localcluster.Start(context.Background(), localcluster.Options{
		StateDir: filepath.Join(tmp, "cluster"),
		CRDPaths: env.crdFiles,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		return 1
	}
	env.cluster = cluster
	env.kc = testenv.Kubectl{Bin: cluster.Kubectl, Kubeconfig: cluster.KubeconfigPath, CacheDir: env.cacheDir, Timeout: kubectlTimeout}
	stop := func() int {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL deploy: stopping the control plane: %v\n", err)
			return 1
		}
		return 0
	}
	if env.client, err = kubernetes.NewForConfig(cluster.Config); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		stop()
		return 1
	}
	// A real Istio cluster has istio-system; the bare API server does not,
	// and deploy/ (rightly) does not create it.
	if _, err := env.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: istioNamespace},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		fmt.Fprintf(os.Stderr, "deploy: creating namespace %s: %v\n", istioNamespace, err)
		stop()
		return 1
	}
	fmt.Fprintf(os.Stderr, "deploy: control plane with %d CRD files ready in %s\n",
		len(env.crdFiles), time.Since(begin).Round(time.Millisecond))

	code := m.Run()
	if c := stop(); c != 0 {
		code = c
	}
	if code == 0 {
		_ = os.RemoveAll(tmp)
	} else {
		fmt.Fprintf(os.Stderr, "deploy: kept %s (API server log: %s)\n", tmp, cluster.APIServerLog)
	}
	return code
}

// certManagerCRDFiles returns cert-manager's own CRD manifests, from the Go
// module of the pinned release (downloaded into the module cache if needed).
func certManagerCRDFiles(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", certManagerModule+"@"+certManagerVersion)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil && runErr == nil {
		return nil, fmt.Errorf("go mod download %s@%s: decoding output: %w", certManagerModule, certManagerVersion, err)
	}
	if runErr != nil || info.Error != "" || info.Dir == "" {
		return nil, fmt.Errorf("go mod download %s@%s: %v %s %s", certManagerModule, certManagerVersion,
			runErr, info.Error, strings.TrimSpace(stderr.String()))
	}
	dir := filepath.Join(info.Dir, "deploy", "crds")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	// The kinds deploy/ uses must be among them.
	for _, want := range []string{"cert-manager.io_certificates.yaml", "cert-manager.io_issuers.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			return nil, fmt.Errorf("cert-manager %s: %w", certManagerVersion, err)
		}
	}
	return files, nil
}

// kubectl runs bin/kubectl as the admin; stdin, when not empty, is its
// standard input. A failure's error carries kubectl's stderr.
func kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	return runKubectl(stdin, args...)
}

// runKubectl is kubectl for use outside the test goroutine.
func runKubectl(stdin string, args ...string) (string, error) {
	stdout, stderr, err := env.kc.Run(stdin, args...)
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return stdout, err
}

// mustKubectl is kubectl that fails the test on error.
func mustKubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := kubectl(t, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// logCapture keeps log lines in memory.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

// writer returns an io.Writer that adds each line written to it, after
// prefix (a subprocess's output).
func (c *logCapture) writer(prefix string) io.Writer {
	return &lineWriter{c: c, prefix: prefix}
}

type lineWriter struct {
	c      *logCapture
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.c.mu.Lock()
		w.c.lines = append(w.c.lines, w.prefix+string(w.buf[:i]))
		w.c.mu.Unlock()
		w.buf = w.buf[i+1:]
	}
}

func (c *logCapture) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		line := args
		if prefix != "" {
			line = prefix + ": " + args
		}
		c.mu.Lock()
		c.lines = append(c.lines, line)
		c.mu.Unlock()
	}, funcr.Options{Verbosity: 1, LogTimestamp: true})
}

// mark returns a position; since returns the lines logged after it.
func (c *logCapture) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

func (c *logCapture) since(mark int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines[mark:]...)
}
