//go:build controlplane

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// racePairs is how many namespaces each race measurement uses.
const racePairs = 20

// TestRaceSingleReplica: two conflicting namespace-wide Sidecars created in
// one namespace at the same instant, through the API server, to the one
// dev replica: the per-namespace lock and the pending admissions must let
// exactly one through, every time.
func TestRaceSingleReplica(t *testing.T) {
	t.Parallel()
	namespaces := createNamespaces(t, "race-single", racePairs)
	sidecars := env.dynamic.Resource(resources["Sidecar"])
	both := 0
	for _, ns := range namespaces {
		var errs [2]error
		simultaneously(
			func() { errs[0] = createObject(sidecars.Namespace(ns), withNamespace(wideSidecar("a"), ns)) },
			func() { errs[1] = createObject(sidecars.Namespace(ns), withNamespace(wideSidecar("b"), ns)) },
		)
		switch {
		case errs[0] == nil && errs[1] == nil:
			both++
		case errs[0] != nil && errs[1] != nil:
			t.Errorf("namespace %s: both creates failed: %v; %v", ns, errs[0], errs[1])
		default:
			for _, err := range errs {
				if err != nil && !apierrors.IsInvalid(err) {
					t.Errorf("namespace %s: the losing create failed with %v, want a 422 denial", ns, err)
				}
			}
		}
	}
	t.Logf("race window: %d of %d pairs both admitted (single replica, both creates through the API server)", both, len(namespaces))
	if both != 0 {
		t.Errorf("%d of %d namespaces got two namespace-wide Sidecars from one replica, want 0", both, len(namespaces))
	}
}

// raceRounds is how many times each multi-replica measurement runs over
// fresh namespaces.
const raceRounds = 3

// TestRaceTwoReplicas: dev (the Sidecar decision leader: it runs with
// --leader-elect and took the Lease first) and a second replica, `serve`
// against the same control plane. Conflicting namespace-wide Sidecars fired
// at the same instant through the two replicas: at most one is admitted in
// every namespace, because the second replica forwards to the leader.
func TestRaceTwoReplicas(t *testing.T) {
	t.Parallel()
	client := webhookHTTPClient(t)
	dev := devValidateURL(t)
	replica2 := startReplica(t, "replica2", dev)
	sidecars := env.dynamic.Resource(resources["Sidecar"])

	for round := 1; round <= raceRounds; round++ {
		// 1. Decisions only: review a to dev and review b to replica 2 at
		// once, neither object ever stored (before the decision leader,
		// 20 of 20 pairs were both allowed).
		decisionOnly := 0
		for _, ns := range createNamespaces(t, "race-direct", racePairs) {
			var allowed [2]bool
			var errs [2]error
			simultaneously(
				func() { allowed[0], errs[0] = review(client, dev, ns, "a") },
				func() { allowed[1], errs[1] = review(client, replica2.validateURL, ns, "b") },
			)
			for _, err := range errs {
				if err != nil {
					t.Fatalf("namespace %s: %v", ns, err)
				}
			}
			if allowed[0] && allowed[1] {
				decisionOnly++
			}
		}
		t.Logf("round %d, two replicas, decisions only (review a to dev, b to replica 2 at once, nothing stored): %d of %d pairs both allowed", round, decisionOnly, racePairs)
		if decisionOnly != 0 {
			t.Errorf("round %d: %d pairs both allowed by two replicas (decisions only), want 0", round, decisionOnly)
		}

		// 2. The realistic flow: a created through the API server (which
		// asks dev) while replica 2 is asked about b at the same instant.
		afterStore, stored, allowedBs := 0, 0, 0
		for _, ns := range createNamespaces(t, "race-store", racePairs) {
			var createErr, reviewErr error
			var allowedB bool
			simultaneously(
				func() { createErr = createObject(sidecars.Namespace(ns), withNamespace(wideSidecar("a"), ns)) },
				func() { allowedB, reviewErr = review(client, replica2.validateURL, ns, "b") },
			)
			if reviewErr != nil {
				t.Fatalf("namespace %s: %v", ns, reviewErr)
			}
			if createErr == nil {
				stored++
			} else if !apierrors.IsInvalid(createErr) {
				t.Errorf("namespace %s: creating a through the API server: %v", ns, createErr)
			}
			if allowedB {
				allowedBs++
			}
			if createErr == nil && allowedB {
				afterStore++
			}
		}
		t.Logf("round %d, two replicas (a created through the API server via dev, b reviewed by replica 2 at the same instant): both admitted in %d of %d pairs (a stored in %d, b allowed in %d)", round, afterStore, racePairs, stored, allowedBs)
		if afterStore != 0 {
			t.Errorf("round %d: b admitted although a got stored in %d pairs, want 0", round, afterStore)
		}
	}
	// Replica 2 decided nothing itself: every conflict-capable decision
	// went to the leader (denials it could see itself stay local).
	paths := replica2.decisionPaths(t)
	if paths["forwarded"] == 0 || paths["fallback"] != 0 || paths["leader"] != 0 {
		t.Errorf("replica 2 decisions by path %v: want forwarded ones and no fallback or leader decision", paths)
	}
	t.Logf("replica 2 decisions by path: %v", paths)
}

// TestRaceThreeReplicas: the same with three replicas, three conflicting
// namespace-wide Sidecars per namespace, one through each.
func TestRaceThreeReplicas(t *testing.T) {
	t.Parallel()
	client := webhookHTTPClient(t)
	dev := devValidateURL(t)
	replica2 := startReplica(t, "replica2-of-3", dev)
	replica3 := startReplica(t, "replica3-of-3", dev)
	sidecars := env.dynamic.Resource(resources["Sidecar"])

	for round := 1; round <= raceRounds; round++ {
		decisionOnly := 0
		for _, ns := range createNamespaces(t, "race3-direct", racePairs) {
			var allowed [3]bool
			var errs [3]error
			simultaneously(
				func() { allowed[0], errs[0] = review(client, dev, ns, "a") },
				func() { allowed[1], errs[1] = review(client, replica2.validateURL, ns, "b") },
				func() { allowed[2], errs[2] = review(client, replica3.validateURL, ns, "c") },
			)
			for _, err := range errs {
				if err != nil {
					t.Fatalf("namespace %s: %v", ns, err)
				}
			}
			if count(allowed[:]) > 1 {
				decisionOnly++
			}
		}
		t.Logf("round %d, three replicas, decisions only: more than one allowed in %d of %d namespaces", round, decisionOnly, racePairs)
		if decisionOnly != 0 {
			t.Errorf("round %d: %d namespaces with more than one of three conflicting Sidecars allowed (decisions only), want 0", round, decisionOnly)
		}

		afterStore := 0
		for _, ns := range createNamespaces(t, "race3-store", racePairs) {
			var createErr error
			var allowed [2]bool
			var errs [2]error
			simultaneously(
				func() { createErr = createObject(sidecars.Namespace(ns), withNamespace(wideSidecar("a"), ns)) },
				func() { allowed[0], errs[0] = review(client, replica2.validateURL, ns, "b") },
				func() { allowed[1], errs[1] = review(client, replica3.validateURL, ns, "c") },
			)
			for _, err := range errs {
				if err != nil {
					t.Fatalf("namespace %s: %v", ns, err)
				}
			}
			if createErr != nil && !apierrors.IsInvalid(createErr) {
				t.Errorf("namespace %s: creating a through the API server: %v", ns, createErr)
			}
			if admitted := count(append(allowed[:], createErr == nil)); admitted > 1 {
				afterStore++
			}
		}
		t.Logf("round %d, three replicas (a created through the API server via dev, b and c reviewed by replicas 2 and 3 at the same instant): more than one admitted in %d of %d namespaces", round, afterStore, racePairs)
		if afterStore != 0 {
			t.Errorf("round %d: %d namespaces with more than one of three conflicting Sidecars admitted, want 0", round, afterStore)
		}
	}
	for name, r := range map[string]*replica{"replica 2": replica2, "replica 3": replica3} {
		if paths := r.decisionPaths(t); paths["forwarded"] == 0 || paths["fallback"] != 0 {
			t.Errorf("%s decisions by path %v: want forwarded ones and no fallback", name, paths)
		}
	}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// simultaneously runs the functions in goroutines released together by a
// barrier, and waits for them.
func simultaneously(fns ...func()) {
	barrier := make(chan struct{})
	var ready, done sync.WaitGroup
	for _, fn := range fns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-barrier
			fn()
		}()
	}
	ready.Wait()
	close(barrier)
	done.Wait()
}

// createNamespaces creates n namespaces with the Go client (quicker than
// n kubectl runs); they are deleted when the test ends.
func createNamespaces(t *testing.T, prefix string, n int) []string {
	t.Helper()
	cs := clientset(t)
	base := prefix + "-" + randomSuffix(t)
	names := make([]string, 0, n)
	for i := range n {
		name := fmt.Sprintf("%s-%02d", base, i)
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(),
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	t.Cleanup(func() {
		for _, name := range names {
			if err := cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting namespace %s: %v", name, err)
			}
		}
	})
	return names
}

// namespaceableCreator is the part of the dynamic client createObject uses.
type namespaceableCreator interface {
	Create(ctx context.Context, obj *unstructured.Unstructured, options metav1.CreateOptions, subresources ...string) (*unstructured.Unstructured, error)
}

func createObject(c namespaceableCreator, manifest string) error {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	return err
}

// devValidateURL is where the API server sends Sidecars for validation:
// the dev replica.
func devValidateURL(t *testing.T) string {
	t.Helper()
	cfg, err := clientset(t).AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), webhookConfigurationName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range cfg.Webhooks {
		if w.Name == validatingWebhook && w.ClientConfig.URL != nil {
			return *w.ClientConfig.URL
		}
	}
	t.Fatalf("no URL for %s in the ValidatingWebhookConfiguration", validatingWebhook)
	return ""
}

// webhookHTTPClient trusts dev's webhook CA.
func webhookHTTPClient(t *testing.T) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(env.stateDir, "certs", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in ca.crt")
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
		},
	}
}

// replica is a `sidecar-webhook serve` started by a test.
type replica struct {
	validateURL string
	metricsURL  string
}

// startReplica runs `sidecar-webhook serve` against the dev control plane
// with dev's serving certificate, as another replica of the Deployment
// would: leader election on (it follows dev, which holds the decision
// Lease, and forwards to it). It is not registered with the API server;
// the tests send it reviews. It is stopped when the test ends.
func startReplica(t *testing.T, name, devURL string) *replica {
	t.Helper()
	port, health, metrics := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	logPath := filepath.Join(env.tmp, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(env.root, "bin", "sidecar-webhook"), "serve",
		"--kubeconfig", env.kubeconfig,
		"--cert-dir", filepath.Join(env.stateDir, "certs"),
		"--advertise-address", "127.0.0.1",
		"--port", strconv.Itoa(port),
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health),
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(metrics),
		"--leader-elect=true",
		"--leader-election-namespace", devLeaseNamespace,
		// dev's certificate names localhost and 127.0.0.1.
		"--decider-server-name", "localhost",
		"--audit-interval=0",
		// One reconciler (dev's) is enough.
		"--reconcile-pods=false",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = devProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not exit within %s of SIGTERM", name, stopTimeout)
		}
		if t.Failed() {
			t.Logf("last lines of %s:\n%s", logPath, tail(logPath, 30))
		}
	})

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	start := time.Now()
	waitUntil(t, 60*time.Second, name+"'s "+readyz, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", name, tail(logPath, 30))
		default:
		}
		resp, err := http.Get(readyz)
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, string(body)
	})
	r := &replica{metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics)}
	// Ready is not enough: it must also have seen who leads (its elector
	// reads the Lease right after the caches synced).
	waitUntil(t, 30*time.Second, name+" following the decision leader", func() (bool, string) {
		v, err := r.metric(`sidecar_webhook_decision_leader`)
		return err == nil && v == 0 && strings.Contains(readFile(logPath), `"Sidecar decision leader"`), fmt.Sprint(v, err)
	})
	t.Logf("%s ready in %s (log %s)", name, time.Since(start).Round(100*time.Millisecond), logPath)
	u, err := url.Parse(devURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r.validateURL = u.String()
	return r
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// metric reads one sample from the replica's /metrics.
func (r *replica) metric(name string) (float64, error) {
	samples, err := r.metrics()
	if err != nil {
		return 0, err
	}
	v, ok := samples[name]
	if !ok {
		return 0, fmt.Errorf("no sample %s", name)
	}
	return v, nil
}

func (r *replica) metrics() (map[string]float64, error) {
	resp, err := http.Get(r.metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// decisionPaths sums the replica's Sidecar decisions by path.
func (r *replica) decisionPaths(t *testing.T) map[string]float64 {
	t.Helper()
	samples, err := r.metrics()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, v := range samples {
		rest, ok := strings.CutPrefix(name, `sidecar_webhook_sidecar_decisions_total{path="`)
		if !ok {
			continue
		}
		path, _, _ := strings.Cut(rest, `"`)
		out[path] += v
	}
	return out
}

var reviewSeq atomic.Int64

// review sends the AdmissionReview the API server would send for creating
// the namespace-wide Sidecar ns/name, and returns whether it was allowed.
func review(client *http.Client, endpoint, ns, name string) (bool, error) {
	obj, err := yaml.YAMLToJSON([]byte(withNamespace(wideSidecar(name), ns)))
	if err != nil {
		return false, err
	}
	uid := fmt.Sprintf("e2e-race-%d", reviewSeq.Add(1))
	r := testenv.SidecarReview(uid, ns, name, obj)
	r.User = "e2e-race"
	resp, err := testenv.PostReview(context.Background(), client, endpoint, r.MustBody())
	if err != nil {
		return false, err
	}
	if string(resp.UID) != uid {
		return false, fmt.Errorf("POST %s: response for UID %q, want %q", endpoint, resp.UID, uid)
	}
	if !resp.Allowed && (resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity) {
		return false, fmt.Errorf("POST %s: refused, but not as a 422 denial: %+v", endpoint, resp.Result)
	}
	return resp.Allowed, nil
}
