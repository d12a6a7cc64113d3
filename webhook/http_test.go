package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// muxRegistrar serves registered webhooks from a plain ServeMux.
type muxRegistrar struct{ mux *http.ServeMux }

func (m muxRegistrar) Register(path string, hook http.Handler) { m.mux.Handle(path, hook) }

// newServer serves the Sidecar handlers as the real server registers them,
// with a fresh metrics registry.
func newServer(t testing.TB) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	return newLoggingServer(t, logr.Discard())
}

// newLoggingServer is newServer writing its log to log.
func newLoggingServer(t testing.TB, log logr.Logger) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	webhook.Register(muxRegistrar{mux}, webhook.Handlers{
		webhook.ValidateSidecarsPath: &webhook.SidecarValidator{},
		webhook.MutateSidecarsPath:   &webhook.SidecarDefaulter{},
	}, metrics, log)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, reg
}

// reviewBody is a v1 AdmissionReview for a Sidecar.
func reviewBody(t testing.TB, op admissionv1.Operation, raw []byte) []byte {
	t.Helper()
	req := sidecarReq(op, "v1", raw).AdmissionRequest
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reviewReply is the answer as the API server reads it.
type reviewReply struct {
	HTTPStatus int
	APIVersion string
	Kind       string
	Response   *admissionv1.AdmissionResponse
}

func post(t testing.TB, srv *httptest.Server, path, contentType string, body []byte) reviewReply {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	reply := reviewReply{HTTPStatus: resp.StatusCode}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil {
		t.Fatalf("the answer is not an AdmissionReview: %v\n%s", err, data)
	}
	reply.APIVersion, reply.Kind, reply.Response = review.APIVersion, review.Kind, review.Response
	if reply.Response == nil {
		t.Fatalf("the AdmissionReview has no response: %s", data)
	}
	return reply
}

// Every decision is one log line that names the request, whichever logger
// the server was given.
func TestHTTPLogsOneLinePerDecision(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{})
	srv, _ := newLoggingServer(t, log)
	body := reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml"))
	if reply := post(t, srv, webhook.ValidateSidecarsPath, "application/json", body); !reply.Response.Allowed {
		t.Fatalf("ratings denied: %+v", reply.Response.Result)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var decisions []string
	for _, l := range lines {
		if strings.Contains(l, `"msg"="admission decision"`) {
			decisions = append(decisions, l)
		}
	}
	if len(decisions) != 1 {
		t.Fatalf("%d decision lines, want 1:\n%s", len(decisions), strings.Join(lines, "\n"))
	}
	for _, want := range []string{
		`"webhook"="/validate/sidecars"`, fmt.Sprintf(`"uid"=%q`, review.Request.UID), `"operation"="CREATE"`, `"kind"="Sidecar"`,
		fmt.Sprintf(`"namespace"=%q`, review.Request.Namespace), fmt.Sprintf(`"name"=%q`, review.Request.Name),
		`"dryRun"=false`, `"result"="allowed"`, `"decidedBy"="local"`,
	} {
		if !strings.Contains(decisions[0], want) {
			t.Errorf("the decision line lacks %s:\n%s", want, decisions[0])
		}
	}
}

func TestHTTPRejectsOtherMethods(t *testing.T) {
	srv, _ := newServer(t)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, err := http.NewRequest(method, srv.URL+webhook.ValidateSidecarsPath, strings.NewReader(string(reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml")))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPost {
			t.Errorf("%s: status %d, Allow %q; want 405 and Allow: POST", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	srv, _ := newServer(t)
	valid := reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml"))
	cases := []struct {
		name        string
		contentType string
		body        []byte
		wantCode    int32
		wantMessage string
	}{
		{name: "empty body", contentType: "application/json", body: nil, wantCode: 400, wantMessage: "request body is empty"},
		{name: "wrong content type", contentType: "text/plain", body: valid, wantCode: 400, wantMessage: "contentType=text/plain"},
		{name: "content type with parameters", contentType: "application/json; charset=utf-8", body: valid, wantCode: 400, wantMessage: "expected application/json"},
		{name: "malformed JSON", contentType: "application/json", body: []byte(`{"apiVersion":`), wantCode: 400},
		{name: "not an AdmissionReview", contentType: "application/json", body: []byte(`{"apiVersion":"v1","kind":"Pod"}`), wantCode: 400},
		{
			// The handler receives an empty request: no resource, so the
			// resource check refuses it.
			name: "AdmissionReview without request", contentType: "application/json",
			body:     []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
			wantCode: 400, wantMessage: "this endpoint handles networking.istio.io/sidecars",
		},
		{
			name: "body over 7MB", contentType: "application/json",
			body:     append(append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"`), bytes.Repeat([]byte("a"), 7*1024*1024)...), '"', '}'),
			wantCode: http.StatusRequestEntityTooLarge, wantMessage: "request entity is too large",
		},
	}
	for _, tc := range cases {
		for _, path := range []string{webhook.ValidateSidecarsPath, webhook.MutateSidecarsPath} {
			t.Run(tc.name+path, func(t *testing.T) {
				reply := post(t, srv, path, tc.contentType, tc.body)
				// Errors travel inside the AdmissionReview; the HTTP
				// status is 200 as the API server expects.
				if reply.HTTPStatus != http.StatusOK {
					t.Errorf("HTTP status %d, want 200", reply.HTTPStatus)
				}
				r := reply.Response
				if r.Allowed {
					t.Error("allowed, want refused")
				}
				if r.Result == nil || r.Result.Code != tc.wantCode {
					t.Fatalf("result %+v, want code %d", r.Result, tc.wantCode)
				}
				if !strings.Contains(r.Result.Message, tc.wantMessage) {
					t.Errorf("message %q does not contain %q", r.Result.Message, tc.wantMessage)
				}
			})
		}
	}
}

func TestHTTPValidate(t *testing.T) {
	srv, _ := newServer(t)
	t.Run("allowed, UID echoed", func(t *testing.T) {
		reply := post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml")))
		if !reply.Response.Allowed || reply.Response.UID != "uid-1" {
			t.Errorf("response %+v", reply.Response)
		}
		if reply.APIVersion != "admission.k8s.io/v1" || reply.Kind != "AdmissionReview" {
			t.Errorf("answered as %s %s", reply.APIVersion, reply.Kind)
		}
	})
	t.Run("denied with 422", func(t *testing.T) {
		reply := post(t, srv, webhook.ValidateSidecarsPath, "application/json",
			reviewBody(t, admissionv1.Create, sidecarJSON("bad", `{"egress":[{"hosts":["nope"]}]}`)))
		r := reply.Response
		if r.Allowed || r.Result == nil || r.Result.Code != 422 || r.Result.Reason != metav1.StatusReasonInvalid {
			t.Fatalf("response %+v", r)
		}
		if !strings.HasPrefix(r.Result.Message, `Sidecar.networking.istio.io "bad" is invalid: spec.egress[0].hosts[0]: `) {
			t.Errorf("message %q", r.Result.Message)
		}
	})
	t.Run("defaulter patches", func(t *testing.T) {
		reply := post(t, srv, webhook.MutateSidecarsPath, "application/json",
			reviewBody(t, admissionv1.Create, sidecarJSON("s", `{"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]}]}`)))
		r := reply.Response
		if !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Fatalf("response %+v", r)
		}
		var ops []patchOp
		if err := json.Unmarshal(r.Patch, &ops); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]patchOp{{Op: "add", Path: "/spec/egress/0/bind", Value: "127.0.0.1"}}, ops); diff != "" {
			t.Errorf("patch (-want +got):\n%s", diff)
		}
	})
	t.Run("v1beta1 AdmissionReview is answered in v1beta1", func(t *testing.T) {
		// controller-runtime decodes the v1beta1 shape into the v1 type
		// (they are identical) and answers with the version it was asked in.
		body := bytes.Replace(reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml")),
			[]byte(`"apiVersion":"admission.k8s.io/v1"`), []byte(`"apiVersion":"admission.k8s.io/v1beta1"`), 1)
		reply := post(t, srv, webhook.ValidateSidecarsPath, "application/json", body)
		if !reply.Response.Allowed || reply.Response.UID != "uid-1" {
			t.Errorf("response %+v", reply.Response)
		}
		if reply.APIVersion != "admission.k8s.io/v1beta1" {
			t.Errorf("answered as %s, want admission.k8s.io/v1beta1", reply.APIVersion)
		}
	})
}

func TestHTTPHugeSidecar(t *testing.T) {
	srv, _ := newServer(t)
	var egress []map[string]any
	first := make([]string, 0, 5000)
	for i := range 5000 {
		first = append(first, fmt.Sprintf("ns%d/svc%d.example.com", i%50, i))
	}
	egress = append(egress, map[string]any{"port": map[string]any{"number": 1}, "hosts": first})
	for i := 2; i <= 2000; i++ {
		egress = append(egress, map[string]any{"port": map[string]any{"number": i}, "hosts": []string{"./*"}})
	}
	spec, err := json.Marshal(map[string]any{"egress": egress})
	if err != nil {
		t.Fatal(err)
	}
	body := reviewBody(t, admissionv1.Create, sidecarJSON("huge", string(spec)))
	for _, path := range []string{webhook.ValidateSidecarsPath, webhook.MutateSidecarsPath} {
		start := time.Now()
		reply := post(t, srv, path, "application/json", body)
		elapsed := time.Since(start)
		if !reply.Response.Allowed {
			t.Errorf("%s: not allowed: %+v", path, reply.Response.Result)
		}
		if elapsed > 2*time.Second {
			t.Errorf("%s: answered in %v, want under 2s", path, elapsed)
		}
	}
}

func TestHTTPMetrics(t *testing.T) {
	srv, reg := newServer(t)
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml")))
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Update, referenceExample(t, "ratings.yaml")))
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, sidecarJSON("bad", `{"egress":[{"hosts":["nope"]}]}`)))
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))
	post(t, srv, webhook.MutateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml")))
	// Refused before a handler runs: not counted.
	post(t, srv, webhook.ValidateSidecarsPath, "text/plain", reviewBody(t, admissionv1.Create, referenceExample(t, "ratings.yaml")))

	want := map[string]float64{
		"/validate/sidecars  error":         1,
		"/mutate/sidecars CREATE allowed":   1,
		"/validate/sidecars CREATE allowed": 1,
		"/validate/sidecars CREATE denied":  1,
		"/validate/sidecars UPDATE allowed": 1,
	}
	if diff := cmp.Diff(want, requestCounts(t, reg)); diff != "" {
		t.Errorf("sidecar_webhook_admission_requests_total (-want +got):\n%s", diff)
	}
	histograms := map[string]uint64{}
	for _, m := range family(t, reg, "sidecar_webhook_admission_duration_seconds").GetMetric() {
		histograms[labelsOf(m, "webhook", "operation")] = m.GetHistogram().GetSampleCount()
	}
	wantHistograms := map[string]uint64{
		"/validate/sidecars ":       1,
		"/validate/sidecars CREATE": 2,
		"/validate/sidecars UPDATE": 1,
		"/mutate/sidecars CREATE":   1,
	}
	if diff := cmp.Diff(wantHistograms, histograms); diff != "" {
		t.Errorf("sidecar_webhook_admission_duration_seconds sample counts (-want +got):\n%s", diff)
	}
}

// The prometheus testutil package needs a module this project does not
// require, so the tests read the registry directly.

func family(t *testing.T, reg *prometheus.Registry, name string) *dto.MetricFamily {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric %s registered", name)
	return nil
}

func labelsOf(m *dto.Metric, names ...string) string {
	values := make([]string, 0, len(names))
	for _, n := range names {
		v := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == n {
				v = l.GetValue()
			}
		}
		values = append(values, v)
	}
	return strings.Join(values, " ")
}

// requestCounts reads the requests counter as "webhook operation result" → count.
func requestCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range family(t, reg, "sidecar_webhook_admission_requests_total").GetMetric() {
		out[labelsOf(m, "webhook", "operation", "result")] = m.GetCounter().GetValue()
	}
	return out
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := webhook.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := webhook.NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice must fail, not panic or double count")
	}
}

// TestHTTPRuleMetrics: the rules a denial or a warning names are counted by
// rule ID.
func TestHTTPRuleMetrics(t *testing.T) {
	srv, reg := newServer(t)
	// Denied for a host without namespace (SW0402).
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, sidecarJSON("bad", `{"egress":[{"hosts":["nope"]}]}`)))
	// Admitted with a duplicated host (SW0406), twice.
	dup := sidecarJSON("dup", `{"egress":[{"hosts":["./*","./*"]}]}`)
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, dup))
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, dup))

	got := map[string]float64{}
	for _, m := range family(t, reg, "sidecar_webhook_rule_findings_total").GetMetric() {
		got[labelsOf(m, "webhook", "rule", "result")] = m.GetCounter().GetValue()
	}
	want := map[string]float64{
		"/validate/sidecars SW0402 denied":  1,
		"/validate/sidecars SW0406 warning": 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sidecar_webhook_rule_findings_total (-want +got):\n%s", diff)
	}
}
