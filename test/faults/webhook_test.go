//go:build controlplane

package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

const (
	// readyTimeout bounds a fresh process's way to /readyz 200 (its caches
	// sync against a local API server on two shared cores).
	readyTimeout = 90 * time.Second
	// terminationGracePeriod is the Deployment's (deploy/base): the kubelet
	// kills the container this long after SIGTERM.
	terminationGracePeriod = 30 * time.Second
	// reviewTimeout is the API server's default webhook timeout: an answer
	// that takes longer is no answer.
	reviewTimeout = 10 * time.Second
)

// webhookProc is a running `sidecar-webhook serve`.
type webhookProc struct {
	t          *testing.T
	cmd        *exec.Cmd
	addr       string // host:port of the HTTPS webhook server
	healthURL  string
	metricsURL string
	logPath    string // its stderr (JSON logs)
	exited     chan struct{}
	waitErr    error
	client     *http.Client // HTTP/2, keep-alive, trusting the test CA
	plain      *http.Client // for probes and metrics
}

// startWebhook starts the server with the shared certificates, free ports,
// leader election off and extra flags, and stops it when the test ends.
func startWebhook(t *testing.T, extra ...string) *webhookProc {
	t.Helper()
	port, health, metrics := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	p := &webhookProc{
		t:          t,
		addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		healthURL:  "http://127.0.0.1:" + strconv.Itoa(health),
		metricsURL: "http://127.0.0.1:" + strconv.Itoa(metrics) + "/metrics",
		logPath:    filepath.Join(env.tmp, strings.ReplaceAll(t.Name(), "/", "_")+"-"+strconv.Itoa(port)+".log"),
		exited:     make(chan struct{}),
		client:     newHTTP2Client(),
		plain:      &http.Client{Timeout: 5 * time.Second},
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve",
		"--cert-dir", env.certDir,
		"--port", strconv.Itoa(port),
		"--health-probe-bind-address", "127.0.0.1:" + strconv.Itoa(health),
		"--metrics-bind-address", "127.0.0.1:" + strconv.Itoa(metrics),
		"--leader-elect=false",
	}, extra...)
	p.cmd = exec.Command(env.binary, args...)
	// $KUBECONFIG rather than --kubeconfig: serve then loads it through
	// controller-runtime's config chain, as in a cluster (in-cluster
	// config), which leaves client-side rate limiting to the API server's
	// priority and fairness. --kubeconfig goes through clientcmd alone and
	// keeps client-go's default of 5 requests/s, which throttles the
	// validator's direct reads under load.
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+env.cluster.KubeconfigPath)
	p.cmd.Stderr = logFile
	p.cmd.Stdout = logFile
	p.cmd.SysProcAttr = procAttr()
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.client.CloseIdleConnections()
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(terminationGracePeriod):
				_ = p.cmd.Process.Kill()
				<-p.exited
				t.Errorf("the webhook did not exit within %s of SIGTERM and was killed", terminationGracePeriod)
			}
		}
		if t.Failed() {
			t.Logf("last lines of the webhook's log %s:\n%s", p.logPath, tail(p.logPath, 40))
		}
	})
	p.waitReady(readyTimeout)
	return p
}

func newHTTP2Client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: env.caPool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		Timeout: reviewTimeout,
	}
}

// waitReady waits for /readyz to answer 200.
func (p *webhookProc) waitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body, err := p.readyz("")
		if err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-p.exited:
			p.t.Fatalf("the webhook exited before it was ready (%v); log:\n%s", p.waitErr, tail(p.logPath, 40))
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("/readyz not 200 within %s: %d %v\n%s\nlog:\n%s", timeout, code, err, body, tail(p.logPath, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyz GETs /readyz (check "" ) or /readyz/<check>, verbose.
func (p *webhookProc) readyz(check string) (int, string, error) {
	u := p.healthURL + "/readyz"
	if check != "" {
		u += "/" + check
	}
	resp, err := p.plain.Get(u + "?verbose")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// metrics reads the Prometheus text exposition into name{labels} → value.
func (p *webhookProc) metrics() (map[string]float64, error) {
	resp, err := p.plain.Get(p.metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// metric returns one sample; the test fails if the server does not expose it.
func (p *webhookProc) metric(name string) float64 {
	p.t.Helper()
	all, err := p.metrics()
	if err != nil {
		p.t.Fatalf("reading metrics: %v", err)
	}
	v, ok := all[name]
	if !ok {
		p.t.Fatalf("the server exposes no metric %s", name)
	}
	return v
}

// reviewResult is one AdmissionReview round trip.
type reviewResult struct {
	status   int
	response *admissionv1.AdmissionResponse
	raw      []byte
	latency  time.Duration
}

// message is the denial message, "" when allowed.
func (r reviewResult) message() string {
	if r.response == nil || r.response.Result == nil {
		return ""
	}
	return r.response.Result.Message
}

// post sends a review body to path and decodes the answer; an error means
// no valid AdmissionReview for uid came back.
func post(ctx context.Context, c *http.Client, addr, path string, body []byte, uid string) (reviewResult, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return reviewResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return reviewResult{latency: time.Since(start)}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	res := reviewResult{status: resp.StatusCode, raw: raw, latency: time.Since(start)}
	if err != nil {
		return res, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &review); err != nil {
		return res, fmt.Errorf("the answer is not an AdmissionReview: %w: %s", err, raw)
	}
	if review.Response == nil || string(review.Response.UID) != uid {
		return res, fmt.Errorf("the answer is not a response to uid %s: %s", uid, raw)
	}
	res.response = review.Response
	return res, nil
}

// review posts and fails the test unless a valid answer came back.
func (p *webhookProc) review(path string, body []byte, uid string) reviewResult {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	defer cancel()
	res, err := post(ctx, p.client, p.addr, path, body, uid)
	if err != nil {
		p.t.Fatalf("review %s to %s: %v", uid, path, err)
	}
	return res
}

// sidecar reviews a Sidecar CREATE and returns the answer.
func (p *webhookProc) sidecar(namespace, name string, spec map[string]any) reviewResult {
	p.t.Helper()
	uid := newUID()
	return p.review(webhook.ValidateSidecarsPath, sidecarReview(uid, namespace, name, spec), uid)
}

// pod reviews a Pod CREATE on the pod annotator.
func (p *webhookProc) pod(namespace, name string, labels map[string]string) reviewResult {
	p.t.Helper()
	uid := newUID()
	return p.review(webhook.MutatePodsPath, podReview(uid, namespace, name, labels), uid)
}

// sidecarReview is the AdmissionReview the API server sends for a Sidecar
// CREATE (networking.istio.io/v1).
func sidecarReview(uid, namespace, name string, spec map[string]any) []byte {
	obj := map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "Sidecar",
		"metadata":   map[string]any{"name": name, "namespace": namespace, "uid": uid},
		"spec":       spec,
	}
	r := testenv.SidecarReview(uid, namespace, name, obj)
	r.User = reviewUser
	return r.MustBody()
}

// podReview is the AdmissionReview for a Pod CREATE.
func podReview(uid, namespace, name string, labels map[string]string) []byte {
	obj := map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   map[string]any{"name": name, "namespace": namespace, "labels": labels},
		"spec":       map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example/app:1"}}},
	}
	r := testenv.PodReview(uid, namespace, name, obj)
	r.User = reviewUser
	return r.MustBody()
}

// reviewUser is the user the reviews name, as the webhook logs it.
const reviewUser = "faults-test"

// selectorSpec is a valid Sidecar spec with a workloadSelector.
func selectorSpec(labels map[string]string) map[string]any {
	return map[string]any{
		"workloadSelector": map[string]any{"labels": labels},
		"egress":           []any{map[string]any{"hosts": []any{"./*", "istio-system/*"}}},
	}
}

// namespaceWideSpec is a valid Sidecar spec without workloadSelector.
func namespaceWideSpec() map[string]any {
	return map[string]any{"egress": []any{map[string]any{"hosts": []any{"./*", "istio-system/*"}}}}
}

// hasWarning reports whether a warning contains substr.
func hasWarning(r reviewResult, substr string) bool {
	if r.response == nil {
		return false
	}
	for _, w := range r.response.Warnings {
		if strings.Contains(w, substr) {
			return true
		}
	}
	return false
}

func newUID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// createNamespace creates a namespace named prefix-<random>, labelled for
// sidecar injection (its workloads run sidecar proxies, so they count for
// conflicts and pod annotations). The local control plane runs no namespace
// controller, so namespaces are not deleted.
func createNamespace(t *testing.T, prefix string) string {
	t.Helper()
	name := prefix + "-" + newUID()[:6]
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"istio-injection": "enabled"}}})
	return name
}

// create stores obj through the API server, retrying briefly: right after
// an API server restart the first requests may fail. An attempt whose answer
// was lost may still have been stored: a retry that finds the object
// already there counts as done (the tests' names are unique).
func create(t *testing.T, obj client.Object) {
	t.Helper()
	attempts := 0
	err := testenv.WaitFor(context.Background(), 30*time.Second, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		attempts++
		err := env.client.Create(ctx, obj)
		if attempts > 1 && apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatalf("creating %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

// cachedSidecarFor waits until the pod annotator, which decides from the
// informer cache alone, names want as the Sidecar of an unlabeled pod in
// namespace (want is "namespace/name"): then the cache holds it.
func cachedSidecarFor(t *testing.T, p *webhookProc, namespace string, labels map[string]string, want string, timeout time.Duration) time.Duration {
	t.Helper()
	return testenv.Eventually(t, timeout, "the cache shows "+want, func(context.Context) error {
		r := p.pod(namespace, "probe-"+newUID()[:6], labels)
		if !r.response.Allowed {
			return fmt.Errorf("pod denied: %s", r.message())
		}
		if !bytes.Contains(r.response.Patch, []byte(`"`+want+`"`)) {
			return fmt.Errorf("the pod's annotation patch does not name %s: %s", want, r.response.Patch)
		}
		return nil
	})
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// isConnRefused reports a dial that found nothing listening: the request
// never reached the server.
func isConnRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
