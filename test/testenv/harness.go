package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PollInterval is how often WaitFor and Eventually ask again.
const PollInterval = 200 * time.Millisecond

// WaitFor asks cond every PollInterval, at once first, until it returns
// nil; after timeout (or when ctx ends) it returns cond's last error.
func WaitFor(ctx context.Context, timeout time.Duration, cond func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, PollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		last = cond(ctx)
		return last == nil, nil
	})
	if err == nil {
		return nil
	}
	if last != nil {
		return fmt.Errorf("not within %s: %w", timeout, last)
	}
	return fmt.Errorf("not within %s: %w", timeout, err)
}

// Eventually is WaitFor that fails t, saying what it waited for; it
// returns how long the wait took.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(context.Context) error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := WaitFor(context.Background(), timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return time.Since(start)
}

// Kubectl runs a kubectl binary against one cluster, with a private
// discovery cache and neither the user's kuberc preferences nor their diff
// program changing what it prints.
type Kubectl struct {
	Bin        string
	Kubeconfig string
	CacheDir   string
	// Timeout bounds each run (default one minute).
	Timeout time.Duration
}

// Run runs kubectl with args; stdin, when not empty, is its standard input.
// err is non-nil when kubectl fails (wrapping an *exec.ExitError for a
// non-zero exit) or times out.
func (k Kubectl) Run(stdin string, args ...string) (stdout, stderr string, err error) {
	timeout := k.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := []string{"--kubeconfig=" + k.Kubeconfig}
	if k.CacheDir != "" {
		full = append(full, "--cache-dir="+k.CacheDir)
	}
	cmd := exec.CommandContext(ctx, k.Bin, append(full, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Env = append(os.Environ(), "KUBECTL_KUBERC=false", "KUBECTL_EXTERNAL_DIFF=")
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl %s: timed out after %s: %w", strings.Join(args, " "), timeout, err)
	}
	return outBuf.String(), errBuf.String(), err
}

// Must is Run that fails t when kubectl fails, showing what it printed.
func (k Kubectl) Must(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	stdout, stderr, err := k.Run(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout:\n%s\nstderr:\n%s\nstdin:\n%s", strings.Join(args, " "), err, stdout, stderr, stdin)
	}
	return stdout
}

// ExitCode is a command's exit status: 0 for success, -1 when it did not
// run to completion.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode()
	}
	return -1
}

// The kinds the webhook reviews, as an AdmissionRequest names them.
var (
	SidecarKind     = metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "Sidecar"}
	SidecarResource = metav1.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"}
	PodKind         = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	PodResource     = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Review describes one AdmissionReview request as the API server sends it.
type Review struct {
	UID       string
	Operation admissionv1.Operation // default CREATE
	Kind      metav1.GroupVersionKind
	Resource  metav1.GroupVersionResource
	Namespace string
	Name      string
	// Object and OldObject are JSON ([]byte) or values marshalled to JSON.
	Object, OldObject any
	DryRun            bool
	User              string // default "test"
}

// Body is the review's JSON body.
func (r Review) Body() ([]byte, error) {
	op := r.Operation
	if op == "" {
		op = admissionv1.Create
	}
	user := r.User
	if user == "" {
		user = "test"
	}
	kind, resource := r.Kind, r.Resource
	req := &admissionv1.AdmissionRequest{
		UID: types.UID(r.UID), Kind: kind, Resource: resource, RequestKind: &kind, RequestResource: &resource,
		Namespace: r.Namespace, Name: r.Name, Operation: op,
		UserInfo: authenticationv1.UserInfo{Username: user, Groups: []string{"system:authenticated"}},
		DryRun:   &r.DryRun,
	}
	var err error
	if req.Object.Raw, err = rawJSON(r.Object); err != nil {
		return nil, err
	}
	if req.OldObject.Raw, err = rawJSON(r.OldObject); err != nil {
		return nil, err
	}
	if options := optionsKind[op]; options != "" {
		req.Options.Raw = []byte(`{"apiVersion":"meta.k8s.io/v1","kind":"` + options + `"}`)
	}
	return json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  req,
	})
}

// MustBody is Body for reviews built from values that always marshal.
func (r Review) MustBody() []byte {
	b, err := r.Body()
	if err != nil {
		panic(err)
	}
	return b
}

var optionsKind = map[admissionv1.Operation]string{
	admissionv1.Create: "CreateOptions", admissionv1.Update: "UpdateOptions", admissionv1.Delete: "DeleteOptions",
}

func rawJSON(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return v, nil
	case string:
		return []byte(v), nil
	default:
		return json.Marshal(v)
	}
}

// SidecarReview is a Review of a Sidecar CREATE.
func SidecarReview(uid, namespace, name string, object any) Review {
	return Review{UID: uid, Kind: SidecarKind, Resource: SidecarResource, Namespace: namespace, Name: name, Object: object}
}

// PodReview is a Review of a Pod CREATE.
func PodReview(uid, namespace, name string, object any) Review {
	return Review{UID: uid, Kind: PodKind, Resource: PodResource, Namespace: namespace, Name: name, Object: object}
}

// TLSClient is an HTTPS client that trusts only the CA in caPEM.
func TLSClient(caPEM []byte, timeout time.Duration) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in the PEM")
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}, nil
}

// PostReview sends body to url as the API server would and returns the
// response review; a status other than 200 or a body that is no review
// is an error.
func PostReview(ctx context.Context, client *http.Client, url string, body []byte) (*admissionv1.AdmissionResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", url, resp.Status, data)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil {
		return nil, fmt.Errorf("POST %s: the answer is not an AdmissionReview: %w", url, err)
	}
	if review.Response == nil {
		return nil, fmt.Errorf("POST %s: no response in the review", url)
	}
	return review.Response, nil
}
