package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// memCluster adapts an in-memory view to webhook.Cluster: the "confirming
// read" returns the same view, so these figures leave out the API server
// round trip the load benchmark includes.
type memCluster struct{ view clusterview.View }

func (c memCluster) View(context.Context) (clusterview.View, error) { return c.view, nil }
func (c memCluster) Confirm(context.Context, clusterview.View, string) (clusterview.View, error) {
	return c.view, nil
}

// steadyLeader is a Decider for a replica that leads and is warm: every
// decision is the leader's own, from the cache.
type steadyLeader struct{}

func (steadyLeader) Route(string) webhook.Route { return webhook.Route{Path: webhook.PathLeader} }
func (steadyLeader) Forward(context.Context, admission.Request, string) (admission.Response, error) {
	panic("a steady leader never forwards")
}
func (steadyLeader) Settle(context.Context) error { panic("a steady leader never settles") }
func (steadyLeader) Reserve(context.Context, clusterview.SidecarRef, bool, func([]clusterview.SidecarRef) validation.Result) (validation.Result, error) {
	panic("a steady leader writes no ledger")
}
func (steadyLeader) Confirmed(string, time.Time) {}

type mux map[string]http.Handler

// floorPath serves floor: the review decoded by controller-runtime and
// "allowed" answered without a look at the object, registered like the real
// handlers, so their figures read as ratios to what every request costs
// before any rule runs (the load benchmark's floor, without TLS).
const floorPath = "/floor"

type floor struct{}

func (floor) Handle(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
}

func (m mux) Register(path string, h http.Handler) { m[path] = h }

// scenarios are the load benchmark's three requests on a state.
func scenarios(st benchdata.State) []*benchdata.Scenario {
	return []*benchdata.Scenario{
		benchdata.AdmittedSidecar(st, webhook.ValidateSidecarsPath),
		benchdata.DeniedSidecar(st, webhook.ValidateSidecarsPath),
		benchdata.AnnotatedPod(st, webhook.MutatePodsPath),
	}
}

func handlers(view clusterview.View) webhook.Handlers {
	views := func(context.Context) (clusterview.View, error) { return view, nil }
	return webhook.Handlers{
		webhook.ValidateSidecarsPath: &webhook.SidecarValidator{Cluster: memCluster{view}, Pending: webhook.NewPending(time.Now),
			Options: validation.Options{Enforcement: validation.EnforcementDeny}},
		webhook.MutateSidecarsPath: &webhook.SidecarDefaulter{},
		webhook.MutatePodsPath:     &webhook.PodAnnotator{Views: views},
		floorPath:                  floor{},
	}
}

func request(b *testing.B, body []byte) admission.Request {
	b.Helper()
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		b.Fatal(err)
	}
	return admission.Request{AdmissionRequest: *review.Request}
}

// BenchmarkHandleAsLeader is the admitted Sidecar decided by the steady
// decision leader (leader election on): the same rules, no confirming read.
func BenchmarkHandleAsLeader(b *testing.B) {
	for _, st := range []benchdata.State{benchdata.Small, benchdata.Large} {
		view := benchdata.Memory(st)
		h := &webhook.SidecarValidator{Cluster: memCluster{view}, Pending: webhook.NewPending(time.Now), Decider: steadyLeader{},
			Options: validation.Options{Enforcement: validation.EnforcementDeny}}
		for _, sc := range []*benchdata.Scenario{benchdata.AdmittedSidecar(st, webhook.ValidateSidecarsPath), ratings(b, st)} {
			b.Run(st.Name+"/"+sc.Name, func(b *testing.B) {
				reqs := make([]admission.Request, 64)
				for i := range reqs {
					reqs[i] = request(b, sc.Body(int64(i)))
				}
				if resp := h.Handle(context.Background(), reqs[0]); !resp.Allowed {
					b.Fatalf("unexpected answer %+v", resp)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					h.Handle(context.Background(), reqs[i%len(reqs)])
					i++
				}
			})
		}
	}
}

// ratings is the load benchmark's comparison with Istio: the reference's
// ratings Sidecar created in the state's namespaces.
func ratings(b *testing.B, st benchdata.State) *benchdata.Scenario {
	b.Helper()
	y, err := os.ReadFile("../validation/testdata/reference/ratings.yaml")
	if err != nil {
		b.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		b.Fatal(err)
	}
	sc, err := benchdata.ExampleSidecar(st, "sidecar-ratings", j, webhook.ValidateSidecarsPath)
	if err != nil {
		b.Fatal(err)
	}
	return sc
}

// BenchmarkHandle calls each handler directly with the load benchmark's
// requests, against the small and the large state in memory.
func BenchmarkHandle(b *testing.B) {
	for _, st := range []benchdata.State{benchdata.Small, benchdata.Large} {
		hs := handlers(benchdata.Memory(st))
		for _, sc := range scenarios(st) {
			h := hs[sc.Path]
			b.Run(st.Name+"/"+sc.Name, func(b *testing.B) {
				// Fixed requests per namespace: the validator's pending set
				// then holds the same few names, as in the load benchmark.
				reqs := make([]admission.Request, 64)
				for i := range reqs {
					reqs[i] = request(b, sc.Body(int64(i)))
				}
				if resp := h.Handle(context.Background(), reqs[0]); resp.Allowed != sc.Expect.Allowed ||
					(sc.Expect.Patch && len(resp.Patches) == 0) {
					b.Fatalf("unexpected answer %+v", resp)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					h.Handle(context.Background(), reqs[i%len(reqs)])
					i++
				}
			})
		}
	}
}

// BenchmarkServeHTTP is the server side of one request without TLS: the
// review decoded by controller-runtime, the handler with this project's
// instrumentation (metrics, the decision log line, here discarded), the
// answer encoded. The floor is the same path with a handler that answers
// at once; the ratio to it is what the load benchmark measures over HTTPS.
func BenchmarkServeHTTP(b *testing.B) {
	st := benchdata.Small
	m := mux{}
	metrics, err := webhook.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	webhook.Register(m, handlers(benchdata.Memory(st)), metrics, logr.Discard())
	for _, sc := range scenarios(st) {
		for _, path := range []string{floorPath, sc.Path} {
			name := sc.Name
			if path == floorPath {
				name += "/floor"
			}
			b.Run(name, func(b *testing.B) {
				h := m[path]
				bodies := make([][]byte, 64)
				for i := range bodies {
					bodies[i] = sc.Body(int64(i))
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(bodies[i%len(bodies)]))
					req.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("HTTP %d", w.Code)
					}
					i++
				}
			})
		}
	}
}
