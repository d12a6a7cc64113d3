//go:build controlplane

package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
)

const sidecarYAML = `apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: %s, namespace: default}
spec:
  egress:
  - hosts: ["./*"]
`

// requireAssets skips when the control-plane binaries are missing, except
// under CI=true where that is a failure.
func requireAssets(t *testing.T) {
	t.Helper()
	if err := CheckAssets(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v (build them with `make` into bin/)", err)
		}
		t.Skipf("skipping: %v (build them into bin/ or set %s; under CI=true this fails)", err, EnvAssets)
	}
}

func TestLocalClusterWithIstioCRDs(t *testing.T) {
	requireAssets(t)
	crdFile, err := crds.IstioCRDs()
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stateDir := t.TempDir()
	c, err := Start(ctx, Options{StateDir: stateDir, CRDPaths: []string{crdFile}, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	t.Logf("control plane with %d CRDs started in %s", len(c.env.CRDs), c.StartupDuration.Round(time.Millisecond))
	if len(c.env.CRDs) < 10 {
		t.Errorf("installed %d CRDs from %s, want all of Istio's", len(c.env.CRDs), crdFile)
	}

	fi, err := os.Stat(c.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.KubeconfigPath != filepath.Join(stateDir, "kubeconfig") || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s has mode %v, want %s with 0600", c.KubeconfigPath, fi.Mode().Perm(), filepath.Join(stateDir, "kubeconfig"))
	}

	apply := func(name string) (string, error) {
		out, _, err := c.RunKubectl(ctx, strings.NewReader(fmt.Sprintf(sidecarYAML, name)), "apply", "-f", "-")
		return out, err
	}
	out, err := apply("default")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl apply: %s", strings.TrimSpace(out))

	for _, resource := range []string{
		"sidecars.networking.istio.io",
		"sidecars.v1alpha3.networking.istio.io",
		"sidecars.v1.networking.istio.io",
	} {
		out, _, err := c.RunKubectl(ctx, nil, "get", resource, "-n", "default", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != "sidecar.networking.istio.io/default" {
			t.Errorf("kubectl get %s -o name = %q, want sidecar.networking.istio.io/default", resource, got)
		}
	}

	t.Run("ValidatingWebhookOn127001", func(t *testing.T) {
		testWebhook(t, ctx, c, apply)
	})

	t.Run("RestartAPIServer", func(t *testing.T) {
		if err := c.StopAPIServer(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.RunKubectl(ctx, nil, "get", "--request-timeout=2s", "sidecars.networking.istio.io", "-n", "default"); err == nil {
			t.Error("kubectl succeeded with the API server stopped")
		}
		if err := c.StartAPIServer(); err != nil {
			t.Fatal(err)
		}
		out, _, err := c.RunKubectl(ctx, nil, "get", "sidecars.networking.istio.io", "default", "-n", "default", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != "sidecar.networking.istio.io/default" {
			t.Errorf("after restart: %q", out)
		}
	})

	// Cancelling the context stops everything.
	if pids := childPIDs(c.paths.apiServer, c.paths.etcd); len(pids) != 2 {
		t.Errorf("control-plane child processes before cancel: %v, want 2", pids)
	}
	cancel()
	select {
	case <-c.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("cluster not stopped 60s after its context was cancelled")
	}
	if pids := childPIDs(c.paths.apiServer, c.paths.etcd); len(pids) != 0 {
		t.Errorf("control-plane processes still running after stop: %v", pids)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// testWebhook registers a validating webhook served by this test process at
// https://127.0.0.1:PORT and checks the API server calls it.
func testWebhook(t *testing.T, ctx context.Context, c *Cluster, apply func(string) (string, error)) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		if review.Request.Name == "blocked" {
			resp.Allowed = false
			resp.Result = &metav1.Status{Message: "denied by localcluster test webhook", Code: http.StatusForbidden}
		}
		review.Response, review.Request = resp, nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("test server URL %s", srv.URL)
	}
	caBundle := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	cfg := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: localcluster-test}
webhooks:
- name: sidecars.localcluster.test
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    url: %s/validate
    caBundle: %s
  rules:
  - apiGroups: [networking.istio.io]
    apiVersions: ["*"]
    operations: [CREATE, UPDATE]
    resources: [sidecars]
`, srv.URL, caBundle)
	if _, _, err := c.RunKubectl(ctx, strings.NewReader(cfg), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _, _ = c.RunKubectl(context.Background(), nil, "delete", "validatingwebhookconfiguration", "localcluster-test")
	}()

	// The API server picks up webhook configurations asynchronously.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := apply("blocked")
		if err != nil && strings.Contains(err.Error(), "denied by localcluster test webhook") {
			break
		}
		if err == nil {
			_, _, _ = c.RunKubectl(ctx, nil, "delete", "sidecars.networking.istio.io", "blocked", "-n", "default")
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook never denied the Sidecar; last error: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if _, err := apply("allowed"); err != nil {
		t.Fatalf("webhook denied an allowed Sidecar: %v", err)
	}
	_, _, _ = c.RunKubectl(ctx, nil, "delete", "sidecars.networking.istio.io", "allowed", "-n", "default")
}

// TestNoOrphansAfterCrash SIGKILLs a process running a cluster (so no Stop
// runs) and checks the reaper takes etcd and kube-apiserver down.
func TestNoOrphansAfterCrash(t *testing.T) {
	if os.Getenv("LOCALCLUSTER_CRASH_HELPER") == "1" {
		withCM := os.Getenv("LOCALCLUSTER_CRASH_CONTROLLER_MANAGER") == "1"
		c, err := Start(context.Background(), Options{ControllerManager: withCM})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Println("STATEDIR", c.StateDir)
		paths := []string{c.paths.apiServer, c.paths.etcd}
		if withCM {
			paths = append(paths, c.paths.controllerManager)
		}
		fmt.Println("PIDS", childPIDs(paths...))
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	requireAssets(t)
	t.Run("etcd and kube-apiserver", func(t *testing.T) { testNoOrphansAfterCrash(t, false) })
	t.Run("with kube-controller-manager", func(t *testing.T) {
		if !HasControllerManager("") {
			t.Skip("no kube-controller-manager in " + DefaultAssetsDir())
		}
		testNoOrphansAfterCrash(t, true)
	})
}

func testNoOrphansAfterCrash(t *testing.T, withControllerManager bool) {
	wantPIDs := 2
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoOrphansAfterCrash$")
	cmd.Env = append(os.Environ(), "LOCALCLUSTER_CRASH_HELPER=1")
	if withControllerManager {
		wantPIDs = 3
		cmd.Env = append(cmd.Env, "LOCALCLUSTER_CRASH_CONTROLLER_MANAGER=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pids []int
	var stateDir string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "STATEDIR "); ok {
			stateDir = d
			continue
		}
		if rest, ok := strings.CutPrefix(line, "PIDS ["); ok {
			for _, f := range strings.Fields(strings.TrimSuffix(rest, "]")) {
				p, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("bad helper output %q", line)
				}
				pids = append(pids, p)
			}
			break
		}
		if strings.HasPrefix(line, "ERROR") {
			t.Fatal(line)
		}
	}
	if len(pids) != wantPIDs {
		t.Fatalf("helper reported control-plane pids %v, want %d", pids, wantPIDs)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	alive := func(pid int) bool {
		// Orphans are reparented to init (or a subreaper) and reaped there;
		// a zombie or a vanished /proc entry both count as dead.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		i := bytes.LastIndexByte(b, ')')
		return i < 0 || !bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				for _, p := range pids { // don't leak from the test itself
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
				t.Fatalf("pid %d still running 10s after its owner was killed", p)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The temporary state directory goes too.
	if stateDir == "" {
		t.Fatal("helper did not report its state directory")
	}
	for {
		if _, err := os.Stat(stateDir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			_ = os.RemoveAll(stateDir)
			t.Fatalf("temporary state directory %s left behind", stateDir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
