//go:build controlplane

package deploy_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/sidecar-webhook/sidecar-webhook/dev/devcerts"
	"github.com/sidecar-webhook/sidecar-webhook/internal/decider"
	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

const (
	readyTimeout = 30 * time.Second
	// quietPeriod is how long after start no "forbidden" may be logged:
	// long enough for every informer's first list and watch, leader
	// election, a few audit rounds and their Events.
	quietPeriod  = 10 * time.Second
	eventTimeout = 20 * time.Second
	stopTimeout  = 30 * time.Second
)

// The namespaces of the server test, one pair per installation (each
// server run must find its own Event and its own unannotated pod):
// auditNamespace holds two namespace-wide Sidecars, which conflict;
// reconcileNamespace has Istio injection on, one namespace-wide Sidecar and
// one pod.
func auditNamespace(inst *installation) string     { return "deploy-audit-" + inst.name }
func reconcileNamespace(inst *installation) string { return "deploy-reconcile-" + inst.name }

// decisionNamespace receives one Sidecar review during the decision
// leader's warm-up.
func decisionNamespace(inst *installation) string { return "deploy-decision-" + inst.name }

func conflictingSidecars(namespace string) string {
	return `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: first
  namespace: ` + namespace + `
spec:
  egress:
    - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: second
  namespace: ` + namespace + `
spec:
  egress:
    - hosts: ["./*", "istio-system/*"]
`
}

func reconcileObjects(namespace string) string {
	return `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: ` + namespace + `
spec:
  egress:
    - hosts: ["./*"]
---
apiVersion: v1
kind: Pod
metadata:
  name: workload
  namespace: ` + namespace + `
  labels:
    app: workload
spec:
  containers:
    - name: app
      image: example.invalid/app:1
`
}

// TestServerRunsUnderServiceAccount: the permissions each installation
// grants its ServiceAccount are enough for the real server. The binary runs
// with the args of the installation's Deployment and a kubeconfig that
// impersonates its ServiceAccount:
//   - /readyz turns 200, which needs every informer cache synced, i.e. list
//     and watch allowed on each watched type (and ConfigMaps in istio-system);
//   - it acquires a Lease in its own namespace (leader election), and
//     releases it on shutdown (SIGTERM, exit 0);
//   - it takes the Sidecar decision Lease, writes a ledger Lease for a
//     Sidecar it admits while warming up (leases create and update), and
//     releases the decision Lease on shutdown;
//   - the audit records a Warning Event SidecarConflict (events create);
//   - the pod annotation reconciler annotates an existing pod (pods patch);
//   - nothing in its logs, client-go's included, says "forbidden".
func TestServerRunsUnderServiceAccount(t *testing.T) {
	forEachInstallation(t, testServerRunsUnderServiceAccount)
}

func testServerRunsUnderServiceAccount(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	ctx := context.Background()
	webhookNamespace, serviceAccountUser := inst.namespace, inst.serviceAccountUser()
	auditNamespace, reconcileNamespace := auditNamespace(inst), reconcileNamespace(inst)

	// Before the server starts, so the audit finds them in its first rounds.
	createNamespace(t, auditNamespace, nil)
	mustKubectl(t, conflictingSidecars(auditNamespace), "apply", "-f", "-")
	// A pod in an injected namespace, created while no webhook annotated
	// it: the pod annotation reconciler must patch it (pods patch).
	createNamespace(t, reconcileNamespace, map[string]string{"istio-injection": "enabled"})
	mustKubectl(t, reconcileObjects(reconcileNamespace), "apply", "-f", "-")

	certDir := filepath.Join(t.TempDir(), "serving-certs")
	bundle, err := devcerts.Generate([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteDir(certDir); err != nil {
		t.Fatal(err)
	}

	// The server runs as the Deployment runs it: the real binary with the
	// Deployment's own args (so they must parse), only the certificate
	// directory and the listening addresses moved to this machine, and a
	// kubeconfig that impersonates the installation's ServiceAccount.
	healthAddr, webhookPort := "127.0.0.1:"+freePort(t), freePort(t)
	args := deploymentArgs(t, inst, map[string]string{
		"--cert-dir":                  certDir,
		"--port":                      webhookPort,
		"--metrics-bind-address":      "0",
		"--health-probe-bind-address": healthAddr,
	})
	// Audit every second instead of every minute, so its Event comes soon.
	args = append(args, "--audit-interval=1s", "--kubeconfig="+impersonatingKubeconfig(t, serviceAccountUser))

	mark := logs.mark()
	cmd := exec.Command(env.binary, args...)
	// The Deployment sets POD_NAMESPACE and POD_IP from the downward API.
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+webhookNamespace, "POD_IP=127.0.0.1")
	out := logs.writer("server: ")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = serverProcAttr()
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("started %s %s", filepath.Base(env.binary), strings.Join(args, " "))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sidecar-webhook serve ended with %v after SIGTERM, want exit 0", err)
			}
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			t.Errorf("sidecar-webhook serve did not exit within %s of SIGTERM", stopTimeout)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			lines := logs.since(mark)
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			t.Logf("last server log lines:\n%s", strings.Join(lines, "\n"))
		}
	})

	// Ready: caches synced under the ServiceAccount's permissions.
	client := &http.Client{Timeout: 2 * time.Second}
	var lastStatus string
	err = waitFor(readyTimeout, func() (bool, error) {
		select {
		case err := <-done:
			stopped = true
			return false, fmt.Errorf("sidecar-webhook serve exited early: %v", err)
		default:
		}
		resp, err := client.Get("http://" + healthAddr + "/readyz?verbose")
		if err != nil {
			lastStatus = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		lastStatus = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body[:n])))
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("/readyz did not turn 200 within %s (last answer: %s): %v", readyTimeout, lastStatus, err)
	}
	t.Logf("ready after %s", time.Since(started).Round(time.Millisecond))

	// Leader election: a Lease held by this server in its own namespace.
	var holder, leaseName string
	err = waitFor(readyTimeout, func() (bool, error) {
		leases, err := env.client.CoordinationV1().Leases(webhookNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, l := range leases.Items {
			if l.Name == decider.LeaseName || strings.HasPrefix(l.Name, decider.LedgerPrefix) {
				continue
			}
			if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
				holder, leaseName = *l.Spec.HolderIdentity, l.Name
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no held Lease in %s: %v", webhookNamespace, err)
	} else {
		t.Logf("Lease %s/%s held by %s", webhookNamespace, leaseName, holder)
	}

	// The Sidecar decision leader: its own Lease, taken at once (the only
	// replica). Its first seconds as leader are a warm-up, in which it
	// records what it admits in a ledger Lease (create, update), so a
	// review sent now writes one.
	err = waitFor(readyTimeout, func() (bool, error) {
		l, err := env.client.CoordinationV1().Leases(webhookNamespace).Get(ctx, decider.LeaseName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil && l.Spec.HolderIdentity != nil && strings.HasSuffix(*l.Spec.HolderIdentity, "_127.0.0.1:"+webhookPort), err
	})
	if err != nil {
		t.Errorf("the decision Lease %s/%s is not held by the server: %v", webhookNamespace, decider.LeaseName, err)
	}
	createNamespace(t, decisionNamespace(inst), nil)
	allowed, warnings, err := reviewSidecar(bundle.CACert, webhookPort, decisionNamespace(inst), "default")
	if err != nil || !allowed {
		t.Errorf("a Sidecar reviewed during the leader's warm-up: allowed=%v warnings=%q err=%v", allowed, warnings, err)
	}
	ledger, err := env.client.CoordinationV1().Leases(webhookNamespace).Get(ctx, decider.LedgerName(decisionNamespace(inst)), metav1.GetOptions{})
	if err != nil {
		t.Errorf("no ledger Lease after a warm-up admission: %v", err)
	} else if !strings.Contains(ledger.Annotations[decider.AnnotationAdmitted], `"namespace":"`+decisionNamespace(inst)+`"`) {
		t.Errorf("ledger Lease %s does not record the admission: %v", ledger.Name, ledger.Annotations)
	}

	// The audit's Event on the conflicting Sidecars.
	var event *corev1.Event
	err = waitFor(eventTimeout, func() (bool, error) {
		events, err := env.client.CoreV1().Events(auditNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for i, e := range events.Items {
			if e.Reason == server.EventReasonConflict && e.Type == corev1.EventTypeWarning &&
				e.InvolvedObject.Kind == "Sidecar" && e.InvolvedObject.Namespace == auditNamespace {
				event = &events.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("no Warning Event %s on the Sidecars in %s: %v", server.EventReasonConflict, auditNamespace, err)
	} else {
		t.Logf("audit Event on Sidecar %s: %s", event.InvolvedObject.Name, event.Message)
	}

	// The pod annotation reconciler's patch.
	var annotations map[string]string
	err = waitFor(eventTimeout, func() (bool, error) {
		pod, err := env.client.CoreV1().Pods(reconcileNamespace).Get(ctx, "workload", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		annotations = pod.Annotations
		return pod.Annotations[resolve.AnnotationSidecar] == reconcileNamespace+"/default", nil
	})
	if err != nil {
		t.Errorf("the reconciler did not annotate pod %s/workload with %s=%s/default (annotations %v): %v",
			reconcileNamespace, resolve.AnnotationSidecar, reconcileNamespace, annotations, err)
	}

	// No permission error anywhere in the first quietPeriod.
	if wait := quietPeriod - time.Since(started); wait > 0 {
		time.Sleep(wait)
	}
	var forbidden []string
	for _, l := range logs.since(mark) {
		if isPermissionError(l) {
			forbidden = append(forbidden, l)
		}
	}
	if len(forbidden) > 0 {
		t.Errorf("the server logged %d permission errors running as %s:\n%s",
			len(forbidden), serviceAccountUser, strings.Join(forbidden, "\n"))
	}

	// Stepping down releases the Leases (LeaderElectionReleaseOnCancel needs
	// update on leases, granted by the Role).
	stop()
	if l, err := env.client.CoordinationV1().Leases(webhookNamespace).Get(ctx, decider.LeaseName, metav1.GetOptions{}); err != nil {
		t.Error(err)
	} else if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
		t.Errorf("the decision Lease is still held by %s after the server stopped", *l.Spec.HolderIdentity)
	}
	if leaseName != "" {
		l, err := env.client.CoordinationV1().Leases(webhookNamespace).Get(ctx, leaseName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity != "" {
			t.Errorf("Lease %s still held by %s after the server stopped", leaseName, *l.Spec.HolderIdentity)
		}
	}
	for _, line := range logs.since(mark) {
		if isPermissionError(line) && !contains(forbidden, line) {
			t.Errorf("permission error while stopping: %s", line)
		}
	}
}

// isPermissionError reports whether a log line carries the API server's
// authorization denial, "<resource> is forbidden: User \"...\" cannot <verb>
// resource ...", however client-go or controller-runtime wrapped it. (The
// audit's own findings read "spec.workloadSelector: Forbidden: ...", a
// validation error, and an Event refused in a namespace left Terminating by
// an earlier test reads "is forbidden: unable to create new content in
// namespace ... because it is being terminated": neither is a permission
// problem.)
func isPermissionError(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "forbidden: user") ||
		(strings.Contains(l, "forbidden") && strings.Contains(l, "cannot ") && strings.Contains(l, " resource"))
}

func freePort(t *testing.T) string {
	return strconv.Itoa(testenv.FreePort(t))
}

// deploymentArgs returns the args of the installation's Deployment's
// container, each flag named in overrides given that value instead. The
// container's command must be the image's entrypoint.
func deploymentArgs(t *testing.T, inst *installation, overrides map[string]string) []string {
	t.Helper()
	dep := renderedObject(t, inst, "Deployment", inst.namespace, inst.fullname)
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	command, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "command")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	if !slices.Equal(command, []string{"/sidecar-webhook"}) || len(args) == 0 || args[0] != "serve" {
		t.Fatalf("container command %q args %q, want /sidecar-webhook serve ...", command, args)
	}
	seen := map[string]bool{}
	for i, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := overrides[name]; ok {
			args[i], seen[name] = name+"="+v, true
		}
	}
	for name, v := range overrides {
		if !seen[name] {
			args = append(args, name+"="+v)
		}
	}
	return args
}

// impersonatingKubeconfig writes a copy of the test cluster's admin
// kubeconfig that acts as user (kubectl's --as).
func impersonatingKubeconfig(t *testing.T, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// reviewSidecar posts the AdmissionReview of a namespace-wide Sidecar CREATE
// to the server, as the API server would, and returns its answer.
func reviewSidecar(caPEM []byte, port, namespace, name string) (bool, []string, error) {
	client, err := testenv.TLSClient(caPEM, 10*time.Second)
	if err != nil {
		return false, nil, err
	}
	obj := fmt.Sprintf(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":%q,"namespace":%q},"spec":{"egress":[{"hosts":["./*"]}]}}`, name, namespace)
	review := testenv.SidecarReview("deploy-1", namespace, name, obj)
	review.User = "deploy-test"
	resp, err := testenv.PostReview(context.Background(), client, "https://127.0.0.1:"+port+webhook.ValidateSidecarsPath, review.MustBody())
	if err != nil {
		return false, nil, err
	}
	if !resp.Allowed && resp.Result != nil {
		return false, resp.Warnings, fmt.Errorf("%d %s", resp.Result.Code, resp.Result.Message)
	}
	return resp.Allowed, resp.Warnings, nil
}
