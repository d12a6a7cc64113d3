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
	"strconv"
	"strings"
	"time"
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

// Expect is what an admission response must say for a request to count as
// a success.
type Expect struct {
	Allowed bool
	// Patch requires a JSON patch in the response.
	Patch bool
	// StatusCode, if not zero, is the required response.status.code.
	StatusCode int32
	// RejectWarning, if not empty, fails an answer carrying a warning that
	// contains it.
	RejectWarning string
}

// AdmissionTarget posts AdmissionReview bodies to one webhook URL and checks
// each answer: HTTP 200 over HTTP/2, the request's UID echoed, and Expect.
type AdmissionTarget struct {
	Client *http.Client
	URL    string
	// Body returns the AdmissionReview for request seq; its UID must be
	// UID(seq).
	Body   func(seq int64) []byte
	Expect Expect
}

// UID is the request UID the bodies carry for request seq: unique within a
// process run.
func UID(seq int64) string { return uidPrefix + strconv.FormatInt(seq, 10) }

var uidPrefix = "lb-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"

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
	if want := UID(seq); r.UID != want {
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

// Review builds an admission/v1 AdmissionReview request body around object
// (JSON). kind and resource follow the API server's spelling: group ""
// for the core group.
func Review(uid string, group, version, kind, resource, namespace, name string, object []byte) []byte {
	type gvk struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
	}
	type gvr struct {
		Group    string `json:"group"`
		Version  string `json:"version"`
		Resource string `json:"resource"`
	}
	type user struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1",
		"kind":       "AdmissionReview",
		"request": map[string]any{
			"uid":             uid,
			"kind":            gvk{group, version, kind},
			"resource":        gvr{group, version, resource},
			"requestKind":     gvk{group, version, kind},
			"requestResource": gvr{group, version, resource},
			"name":            name,
			"namespace":       namespace,
			"operation":       "CREATE",
			"userInfo":        user{"system:admin", []string{"system:masters", "system:authenticated"}},
			"object":          json.RawMessage(object),
			"oldObject":       nil,
			"dryRun":          false,
			"options":         json.RawMessage(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`),
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		panic(err) // only fixed types above
	}
	return b
}

// Template is a request body with placeholders standing for per-request
// strings (a sequence number in names, the UID). Filling it is a few
// appends, so building bodies costs the client next to nothing: the client
// shares the machine with the server under test.
type Template struct {
	parts [][]byte
	// holes[i] is the index (into Fill's values) of the placeholder that
	// follows parts[i].
	holes []int
	size  int
}

// NewTemplate splits body at every occurrence of the placeholders.
func NewTemplate(body []byte, placeholders ...string) *Template {
	t := &Template{}
	rest := body
	for {
		at, which := -1, -1
		for i, p := range placeholders {
			if j := bytes.Index(rest, []byte(p)); j >= 0 && (at < 0 || j < at) {
				at, which = j, i
			}
		}
		if at < 0 {
			t.parts = append(t.parts, rest)
			break
		}
		t.parts = append(t.parts, rest[:at])
		t.holes = append(t.holes, which)
		rest = rest[at+len(placeholders[which]):]
	}
	for _, p := range t.parts {
		t.size += len(p)
	}
	return t
}

// Fill returns the body with each placeholder replaced by the value at the
// same position.
func (t *Template) Fill(values ...string) []byte {
	out := make([]byte, 0, t.size+64)
	for i, p := range t.parts {
		out = append(out, p...)
		if i < len(t.holes) {
			out = append(out, values[t.holes[i]]...)
		}
	}
	return out
}
