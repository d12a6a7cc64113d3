// Command relay is the load benchmark's cheapest possible follower: the
// floor's admission path (cmd/floor: controller-runtime's webhook server
// with the production TLS options, HTTP/2, the review decoded by
// admission.Webhook, webhook.Register's metrics and one JSON log line per
// request) with a handler that decides nothing and forwards every review to
// a target, as a follower replica forwards to the decision leader
// (internal/decider/forward.go): the request re-encoded as an
// AdmissionReview, POSTed over HTTPS on one kept-alive HTTP/2 connection
// that verifies the target's certificate against a CA file, and the
// target's answer decoded and returned. The benchmark points it at a second
// floor process, a leader that does no work: what a follower's requests/s
// can be at best on the machine, whatever its own decision costs.
//
//	relay --cert-dir DIR --port PORT --target https://HOST:PORT/PATH --ca-file CA [--server-name NAME]
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/hack/loadbench/load"
	"github.com/sidecar-webhook/sidecar-webhook/internal/decider"
)

// RelayPath is where the relay answers (the floor's path: the same
// requests go to both).
const RelayPath = "/floor"

// maxAnswer bounds the target's answer read into memory, as the
// follower's forwarder does.
const maxAnswer = 4 << 20

// relay forwards each review to target, as the follower forwards to the
// leader, and returns the target's answer.
type relay struct {
	target string
	client *http.Client
}

func newRelay(target, caFile, serverName string) (*relay, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA that signs the target's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	// The follower's transport (internal/decider/forward.go), field by field.
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: decider.ForwardTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: decider.ForwardTimeout,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 5 * time.Second, PingTimeout: time.Second},
	}
	return &relay{target: target, client: &http.Client{Transport: transport}}, nil
}

func (r *relay) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, err := r.forward(ctx, req)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return resp
}

// forward is the follower's forward (internal/decider/forward.go) with its
// checks of the answer.
func (r *relay) forward(ctx context.Context, req admission.Request) (admission.Response, error) {
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		return admission.Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, decider.AnswerTimeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.target, bytes.NewReader(body))
	if err != nil {
		return admission.Response{}, err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(httpReq)
	if err != nil {
		r.client.CloseIdleConnections()
		return admission.Response{}, fmt.Errorf("forwarding to %s: %w", r.target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return admission.Response{}, fmt.Errorf("reading the answer from %s: %w", r.target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return admission.Response{}, fmt.Errorf("%s answered HTTP %d: %.200s", r.target, resp.StatusCode, raw)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &review); err != nil {
		return admission.Response{}, fmt.Errorf("%s answered no AdmissionReview: %w", r.target, err)
	}
	if review.Response == nil || review.Response.UID != req.UID {
		return admission.Response{}, fmt.Errorf("%s answered without a response to request %s", r.target, req.UID)
	}
	if x := review.Response; !x.Allowed && x.Result != nil && x.Result.Code >= http.StatusInternalServerError {
		return admission.Response{}, fmt.Errorf("%s did not decide (%d: %s)", r.target, x.Result.Code, x.Result.Message)
	}
	return admission.Response{AdmissionResponse: *review.Response}, nil
}

func main() {
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	port := flag.Int("port", 9443, "HTTPS port")
	target := flag.String("target", "", "where every review is forwarded: https://HOST:PORT/PATH")
	caFile := flag.String("ca-file", "", "the CA that signs the target's serving certificate (PEM)")
	serverName := flag.String("server-name", "", "the name the target's certificate is checked for (default: the target URL's host)")
	flag.Parse()
	if *target == "" || *caFile == "" {
		fmt.Fprintln(os.Stderr, "relay: --target and --ca-file are required")
		os.Exit(2)
	}
	h, err := newRelay(*target, *caFile, *serverName)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := load.ServeAdmission(ctx, *certDir, *port, RelayPath, h); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}
