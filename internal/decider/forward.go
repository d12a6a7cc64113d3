package decider

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
	"sync"
	"syscall"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// caRecheck is how often the CA file is looked at for a change (cert-manager
// rewrites the mounted Secret when it renews the CA).
const caRecheck = 10 * time.Second

// maxAnswer bounds the leader's answer read into memory.
const maxAnswer = 4 << 20

// forwarder sends reviews to the leader over HTTPS, verifying its serving
// certificate against the CA that signed this replica's own and the
// Service's DNS name (every replica serves the same certificate).
type forwarder struct {
	caFile     string
	serverName string
	now        func() time.Time
	// answerTimeout is AnswerTimeout (shorter in tests).
	answerTimeout time.Duration

	mu        sync.Mutex
	transport *http.Transport
	caStamp   string
	nextCheck time.Time
}

func newForwarder(caFile, serverName string, now func() time.Time) (*forwarder, error) {
	f := &forwarder{caFile: caFile, serverName: serverName, now: now, answerTimeout: AnswerTimeout}
	if _, err := f.client(); err != nil {
		return nil, err
	}
	return f, nil
}

// client returns the HTTP client, rebuilt when the CA file changed.
func (f *forwarder) client() (*http.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if f.transport != nil && now.Before(f.nextCheck) {
		return &http.Client{Transport: f.transport}, nil
	}
	f.nextCheck = now.Add(caRecheck)
	fi, err := os.Stat(f.caFile)
	if err != nil {
		if f.transport != nil {
			return &http.Client{Transport: f.transport}, nil // keep the last good one
		}
		return nil, fmt.Errorf("reading the CA that signs the leader's certificate: %w", err)
	}
	stamp := fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
	if f.transport != nil && stamp == f.caStamp {
		return &http.Client{Transport: f.transport}, nil
	}
	pem, err := os.ReadFile(f.caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA that signs the leader's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		if f.transport != nil {
			return &http.Client{Transport: f.transport}, nil // a partial write; next time
		}
		return nil, fmt.Errorf("%s holds no PEM certificate", f.caFile)
	}
	if f.transport != nil {
		f.transport.CloseIdleConnections()
	}
	f.transport = &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: f.serverName, MinVersion: tls.VersionTLS12},
		// One kept-alive HTTP/2 connection to the leader carries every
		// forwarded review, as the API server's own connection does.
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DialContext:         (&net.Dialer{Timeout: ForwardTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: ForwardTimeout,
		// A leader that vanished without closing the connection (its node
		// went away) is noticed by a ping rather than by every request.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 5 * time.Second, PingTimeout: time.Second},
	}
	f.caStamp = stamp
	return &http.Client{Transport: f.transport}, nil
}

// forward posts req to the leader at address and returns its answer; an
// error when it gave none, or answered that it could not decide (5xx).
func (f *forwarder) forward(ctx context.Context, address string, req admission.Request) (admission.Response, error) {
	client, err := f.client()
	if err != nil {
		return admission.Response{}, err
	}
	body, err := json.Marshal(&admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	})
	if err != nil {
		return admission.Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.answerTimeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+address+webhook.DecideSidecarsPath, bytes.NewReader(body))
	if err != nil {
		return admission.Response{}, err
	}
	httpReq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(httpReq)
	if err != nil {
		// The connection may be the problem (a leader that went away):
		// the next request dials afresh.
		client.CloseIdleConnections()
		err = fmt.Errorf("forwarding to the leader at %s: %w", address, err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Nothing listens there: that process serves no webhook
			// request, so it decides none.
			return admission.Response{}, &notDecidingError{err}
		}
		return admission.Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return admission.Response{}, fmt.Errorf("reading the leader's answer from %s: %w", address, err)
	}
	if resp.StatusCode != http.StatusOK {
		return admission.Response{}, &notDecidingError{fmt.Errorf("the leader at %s answered HTTP %d: %.200s", address, resp.StatusCode, raw)}
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &review); err != nil {
		return admission.Response{}, fmt.Errorf("the leader at %s answered no AdmissionReview: %w", address, err)
	}
	if review.Response == nil || review.Response.UID != req.UID {
		return admission.Response{}, fmt.Errorf("the leader at %s answered without a response to request %s", address, req.UID)
	}
	if r := review.Response; !r.Allowed && r.Result != nil && r.Result.Code >= http.StatusInternalServerError {
		return admission.Response{}, &notDecidingError{fmt.Errorf("the replica at %s did not decide (%d: %s)", address, r.Result.Code, r.Result.Message)}
	}
	return admission.Response{AdmissionResponse: *review.Response}, nil
}

// notDecidingError: the replica at the leader's address showed that it does
// not decide as leader: it answered without a decision (it does not lead,
// or could not decide), or nothing listens there. It can only lead again
// through a new term, which warms up first. A timeout shows nothing of the
// kind: the leader may be alive and deciding, only unreachable from here.
type notDecidingError struct{ err error }

func (e *notDecidingError) Error() string { return e.err.Error() }
func (e *notDecidingError) Unwrap() error { return e.err }
