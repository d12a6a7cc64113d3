package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// NewHTTP2Client returns a client that speaks HTTP/2 over TLS to a server
// whose certificate caPEM signed, keeping its connection alive as the API
// server does with webhooks: every request of every worker is multiplexed
// over one kept-alive TLS connection.
func NewHTTP2Client(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("load: no certificate in the CA bundle")
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
	}, nil
}

// AdmissionTarget posts AdmissionReview bodies to one webhook URL and checks
// each answer: HTTP 200 over HTTP/2, the request's UID echoed, and Expect.
type AdmissionTarget struct {
	Client *http.Client
	URL    string
	// Body returns the AdmissionReview for request seq; its UID must be
	// benchdata.UID(seq).
	Body   func(seq int64) []byte
	Expect benchdata.Expect
}

type reviewAnswer struct {
	Response *struct {
		UID       string   `json:"uid"`
		Warnings  []string `json:"warnings"`
		Allowed   bool     `json:"allowed"`
		Patch     []byte   `json:"patch"`
		PatchType *string  `json:"patchType"`
		Status    *struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
	} `json:"response"`
}

// Do implements Target.
func (t *AdmissionTarget) Do(ctx context.Context, seq int64) error {
	body := t.Body(seq)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := t.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.ProtoMajor != 2 {
		return fmt.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
	}
	var answer reviewAnswer
	if err := json.Unmarshal(data, &answer); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	r := answer.Response
	if r == nil {
		return errors.New("answer without response")
	}
	if want := benchdata.UID(seq); r.UID != want {
		return fmt.Errorf("answer for uid %q, want %q", r.UID, want)
	}
	if r.Allowed != t.Expect.Allowed {
		msg := ""
		if r.Status != nil {
			msg = r.Status.Message
		}
		return fmt.Errorf("allowed=%v, want %v: %.300s", r.Allowed, t.Expect.Allowed, msg)
	}
	if t.Expect.Patch && (len(r.Patch) == 0 || r.PatchType == nil) {
		return errors.New("answer without a patch")
	}
	if t.Expect.RejectWarning != "" {
		for _, w := range r.Warnings {
			if strings.Contains(w, t.Expect.RejectWarning) {
				return fmt.Errorf("warning: %s", w)
			}
		}
	}
	if t.Expect.StatusCode != 0 && (r.Status == nil || r.Status.Code != t.Expect.StatusCode) {
		return fmt.Errorf("status %+v, want code %d", r.Status, t.Expect.StatusCode)
	}
	return nil
}
