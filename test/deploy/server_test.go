package deploy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/sidecar-webhook/sidecar-webhook/certs"
	"github.com/sidecar-webhook/sidecar-webhook/internal/decider"
	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
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

// auditNamespace holds two namespace-wide Sidecars, which conflict.
const auditNamespace = "deploy-audit"

const conflictingSidecars = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: first
  namespace: ` + auditNamespace + `
spec:
  egress:
    - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: second
  namespace: ` + auditNamespace + `
spec:
  egress:
    - hosts: ["./*", "istio-system/*"]
`

// reconcileNamespace has Istio injection on, one namespace-wide Sidecar and
// one pod.
const reconcileNamespace = "deploy-reconcile"

const reconcileObjects = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: ` + reconcileNamespace + `
spec:
  egress:
    - hosts: ["./*"]
---
apiVersion: v1
kind: Pod
metadata:
  name: workload
  namespace: ` + reconcileNamespace + `
  labels:
    app: workload
spec:
  containers:
    - name: app
      image: example.invalid/app:1
`

// TestServerRunsUnderServiceAccount: the permissions deploy/ grants the
// ServiceAccount are enough for the real server. It runs in-process with a
// client that impersonates the ServiceAccount, configured like the
// Deployment (leader election in its namespace, audit, deny enforcement):
//   - /readyz turns 200, which needs every informer cache synced, i.e. list
//     and watch allowed on each watched type (and ConfigMaps in istio-system);
//   - it acquires a Lease in sidecar-webhook-system (leader election), and
//     releases it on shutdown;
//   - it takes the Sidecar decision Lease, writes a ledger Lease for a
//     Sidecar it admits while warming up (leases create and update), and
//     releases the decision Lease on shutdown;
//   - the audit records a Warning Event SidecarConflict (events create);
//   - the pod annotation reconciler annotates an existing pod (pods patch);
//   - nothing in its logs, client-go's included, says "forbidden".
func TestServerRunsUnderServiceAccount(t *testing.T) {
	requireDeployed(t)
	ctx := context.Background()

	// Before the server starts, so the audit finds them in its first rounds.
	createNamespace(t, auditNamespace, nil)
	mustKubectl(t, strings.NewReader(conflictingSidecars), "apply", "-f", "-")
	// A pod in an injected namespace, created while no webhook annotated
	// it: the pod annotation reconciler must patch it (pods patch).
	createNamespace(t, reconcileNamespace, map[string]string{"istio-injection": "enabled"})
	mustKubectl(t, strings.NewReader(reconcileObjects), "apply", "-f", "-")

	certDir := filepath.Join(t.TempDir(), "serving-certs")
	bundle, err := certs.Generate([]string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.WriteDir(certDir); err != nil {
		t.Fatal(err)
	}

	cfg := rest.CopyConfig(env.cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: serviceAccountUser}

	healthAddr := "127.0.0.1:" + freePort(t)
	webhookPort, err := strconv.Atoi(freePort(t))
	if err != nil {
		t.Fatal(err)
	}

	mark := logs.mark()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	started := time.Now()
	go func() {
		done <- server.Run(runCtx, server.Config{
			CertDir:                 certDir,
			Host:                    "127.0.0.1",
			Port:                    webhookPort,
			MetricsAddr:             "0",
			HealthAddr:              healthAddr,
			Validation:              validation.Options{Enforcement: validation.EnforcementDeny},
			AuditInterval:           time.Second,
			LeaderElect:             true,
			LeaderElectionNamespace: webhookNamespace,
			PodConflicts:            "warn",
			ReconcilePods:           true,
			PodReconcileQPS:         20,
		}, cfg, logs.logger().WithName("server"), prometheus.NewRegistry())
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("server.Run returned %v", err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("server.Run did not return within %s of cancellation", stopTimeout)
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
			return false, fmt.Errorf("server.Run returned early: %v", err)
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
		return err == nil && l.Spec.HolderIdentity != nil && strings.HasSuffix(*l.Spec.HolderIdentity, "_127.0.0.1:"+strconv.Itoa(webhookPort)), err
	})
	if err != nil {
		t.Errorf("the decision Lease %s/%s is not held by the server: %v", webhookNamespace, decider.LeaseName, err)
	}
	createNamespace(t, decisionNamespace, nil)
	allowed, warnings, err := reviewSidecar(bundle.CACert, webhookPort, decisionNamespace, "default")
	if err != nil || !allowed {
		t.Errorf("a Sidecar reviewed during the leader's warm-up: allowed=%v warnings=%q err=%v", allowed, warnings, err)
	}
	ledger, err := env.client.CoordinationV1().Leases(webhookNamespace).Get(ctx, decider.LedgerName(decisionNamespace), metav1.GetOptions{})
	if err != nil {
		t.Errorf("no ledger Lease after a warm-up admission: %v", err)
	} else if !strings.Contains(ledger.Annotations[decider.AnnotationAdmitted], `"namespace":"`+decisionNamespace+`"`) {
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

// decisionNamespace receives one Sidecar review during the decision
// leader's warm-up.
const decisionNamespace = "deploy-decision"

// reviewSidecar posts the AdmissionReview of a namespace-wide Sidecar CREATE
// to the server, as the API server would, and returns its answer.
func reviewSidecar(caPEM []byte, port int, namespace, name string) (bool, []string, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	obj := fmt.Sprintf(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":%q,"namespace":%q},"spec":{"egress":[{"hosts":["./*"]}]}}`, name, namespace)
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"deploy-1","kind":{"group":"networking.istio.io","version":"v1","kind":"Sidecar"},`+
		`"resource":{"group":"networking.istio.io","version":"v1","resource":"sidecars"},"namespace":%q,"name":%q,"operation":"CREATE","userInfo":{"username":"deploy-test"},"object":%s}}`, namespace, name, obj)
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.ValidateSidecarsPath), "application/json", strings.NewReader(body))
	if err != nil {
		return false, nil, err
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return false, nil, err
	}
	if review.Response == nil {
		return false, nil, fmt.Errorf("no response in the review")
	}
	if !review.Response.Allowed && review.Response.Result != nil {
		return false, review.Response.Warnings, fmt.Errorf("%d %s", review.Response.Result.Code, review.Response.Result.Message)
	}
	return review.Response.Allowed, review.Response.Warnings, nil
}

// isPermissionError reports whether a log line carries the API server's
// authorization denial, "<resource> is forbidden: User \"...\" cannot <verb>
// resource ...", however client-go or controller-runtime wrapped it. (The
// audit's own findings read "spec.workloadSelector: Forbidden: ...", a
// validation error that is not a permission problem.)
func isPermissionError(line string) bool {
	l := strings.ToLower(line)
	return strings.Contains(l, "is forbidden") || strings.Contains(l, "forbidden: user") ||
		(strings.Contains(l, "forbidden") && strings.Contains(l, "cannot ") && strings.Contains(l, " resource"))
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
