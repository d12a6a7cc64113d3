package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// fakeDecider routes as told and records what the validator asks of it.
type fakeDecider struct {
	mu sync.Mutex
	// routes are returned in turn; the last one repeats.
	routes []webhook.Route
	// forward answers Forward; nil means "no leader answered" (with
	// forwardErr, if set, as the reason).
	forward    func(admission.Request) admission.Response
	forwardErr error
	// ledger holds what other replicas recorded; Reserve appends to it.
	ledger     []clusterview.SidecarRef
	reserveErr error
	settleErr  error

	forwards, settles, reserves int
	reservedDryRun              []bool
	confirmed                   []string
}

func (f *fakeDecider) Route(string) webhook.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.routes[0]
	if len(f.routes) > 1 {
		f.routes = f.routes[1:]
	}
	return r
}

func (f *fakeDecider) Forward(_ context.Context, req admission.Request, _ string) (admission.Response, error) {
	f.mu.Lock()
	f.forwards++
	f.mu.Unlock()
	if f.forward == nil {
		if f.forwardErr != nil {
			return admission.Response{}, f.forwardErr
		}
		return admission.Response{}, errors.New("dial tcp 10.0.0.9:9443: connect: connection refused")
	}
	return f.forward(req), nil
}

func (f *fakeDecider) Settle(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settles++
	return f.settleErr
}

func (f *fakeDecider) Reserve(_ context.Context, ref clusterview.SidecarRef, dryRun bool, decide func([]clusterview.SidecarRef) validation.Result) (validation.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserves++
	f.reservedDryRun = append(f.reservedDryRun, dryRun)
	if f.reserveErr != nil {
		return validation.Result{}, f.reserveErr
	}
	result := decide(f.ledger)
	if result.Allowed() && !dryRun {
		f.ledger = append(f.ledger, ref)
	}
	return result, nil
}

func (f *fakeDecider) Confirmed(namespace string, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed = append(f.confirmed, namespace)
}

const (
	wideSpec    = `{"egress":[{"hosts":["./*"]}]}`
	ratingsSpec = `{"workloadSelector":{"labels":{"app":"ratings"}},"egress":[{"hosts":["./*"]}]}`
	detailsSpec = `{"workloadSelector":{"labels":{"app":"details"}},"egress":[{"hosts":["./*"]}]}`
)

// emptyProd is a view with namespace prod and nothing in it.
func emptyProd() *clusterview.Memory {
	m := clusterview.NewMemory("istio-system")
	m.EnsureNamespace("prod")
	return m
}

// refOf decodes a Sidecar of namespace prod into its ref.
func refOf(t *testing.T, name, spec string) clusterview.SidecarRef {
	t.Helper()
	s, errs := sidecar.Decode(sidecarJSON(name, spec))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s.Namespace = "prod"
	return clusterview.RefOf(s)
}

func newDeciding(cluster webhook.Cluster, d webhook.Decider) *webhook.SidecarValidator {
	return &webhook.SidecarValidator{Cluster: cluster, Pending: webhook.NewPending(time.Now), Decider: d,
		Options: validation.Options{Enforcement: validation.EnforcementDeny}}
}

func create(name, spec string) admission.Request {
	return sidecarReq(admissionv1.Create, "v1", sidecarJSON(name, spec))
}

// TestLeaderDecidesWithoutReading: the steady leader decides from its
// cache and its record of what it admitted, never reading the API server
// (a live view with a conflicting Sidecar would otherwise deny), never
// forwarding, and the second of two conflicting Sidecars is denied.
func TestLeaderDecidesWithoutReading(t *testing.T) {
	live := emptyProd()
	live.PutSidecar(refOf(t, "elsewhere", wideSpec))
	cluster := &countingCluster{cached: emptyProd(), live: live}
	d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathLeader}}}
	v := newDeciding(cluster, d)

	if resp := v.Handle(context.Background(), create("a", wideSpec)); !resp.Allowed {
		t.Fatalf("the leader denied a Sidecar its cache allows: %v", resp.Result)
	}
	if resp := v.Handle(context.Background(), create("b", wideSpec)); resp.Allowed {
		t.Errorf("the leader admitted a second namespace-wide Sidecar right after the first")
	}
	if cluster.confirms != 0 || d.forwards != 0 || d.reserves != 0 || d.settles != 0 {
		t.Errorf("steady leader: %d confirming reads, %d forwards, %d ledger writes, %d settles; want none", cluster.confirms, d.forwards, d.reserves, d.settles)
	}
}

// TestFollowerForwards: a follower returns the leader's answer, whatever its
// own cache says, and records an admission the leader made so that its own
// later decisions count it.
func TestFollowerForwards(t *testing.T) {
	cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
	d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathForwarded, Leader: "leader_1_10.0.0.9:9443"}}}
	var leaderAnswer admission.Response
	d.forward = func(admission.Request) admission.Response { return leaderAnswer }
	v := newDeciding(cluster, d)

	leaderAnswer = admission.Denied("the leader says no")
	if resp := v.Handle(context.Background(), create("a", wideSpec)); resp.Allowed || resp.Result.Message != "the leader says no" {
		t.Fatalf("the follower did not return the leader's denial: %+v", resp.Result)
	}
	leaderAnswer = admission.Allowed("").WithWarnings("from the leader")
	resp := v.Handle(context.Background(), create("a", wideSpec))
	if !resp.Allowed || !cmp.Equal(resp.Warnings, []string{"from the leader"}) {
		t.Fatalf("the follower did not return the leader's admission: %+v", resp)
	}
	if d.forwards != 2 || cluster.confirms != 0 {
		t.Errorf("forwards = %d, confirming reads = %d; want 2 and 0", d.forwards, cluster.confirms)
	}
	// The admitted "a" counts here now: a conflicting "b" is denied from
	// this replica's own record, without asking the leader.
	if resp := v.Handle(context.Background(), create("b", wideSpec)); resp.Allowed {
		t.Errorf("a Sidecar conflicting with one the leader admitted through this replica was allowed")
	}
	if d.forwards != 2 {
		t.Errorf("a denial from the follower's own record was forwarded")
	}
}

// TestDenialsAndKeptSelectorsStayLocal: a denial the cache already shows,
// and an UPDATE that keeps its selector, are decided by whichever replica
// got them.
func TestDenialsAndKeptSelectorsStayLocal(t *testing.T) {
	cached := emptyProd()
	cached.PutSidecar(refOf(t, "default", wideSpec))
	cluster := &countingCluster{cached: cached, live: cached}
	d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathForwarded, Leader: "leader_1_10.0.0.9:9443"}}}
	v := newDeciding(cluster, d)
	if resp := v.Handle(context.Background(), create("second", wideSpec)); resp.Allowed {
		t.Fatalf("a second namespace-wide Sidecar was allowed")
	}
	update := sidecarReq(admissionv1.Update, "v1", sidecarJSON("default", `{"egress":[{"hosts":["./*","istio-system/*"]}]}`))
	update.OldObject = runtime.RawExtension{Raw: sidecarJSON("default", wideSpec)}
	if resp := v.Handle(context.Background(), update); !resp.Allowed {
		t.Fatalf("an update keeping the selector was denied: %v", resp.Result)
	}
	if d.forwards != 0 || d.reserves != 0 || cluster.confirms != 0 {
		t.Errorf("forwards %d, ledger %d, reads %d: want all 0", d.forwards, d.reserves, cluster.confirms)
	}
}

// TestFallback: when no leader answers, the follower reads the namespace
// from the API server, waits for Settle, serializes through the ledger, and
// says so in a warning; what another replica recorded in the ledger counts.
func TestFallback(t *testing.T) {
	t.Run("allowed, with a warning, recorded in the ledger", func(t *testing.T) {
		cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
		d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathForwarded, Leader: "leader_1_10.0.0.9:9443"}}}
		v := newDeciding(cluster, d)
		resp := v.Handle(context.Background(), create("default", wideSpec))
		if !resp.Allowed {
			t.Fatalf("denied: %v", resp.Result)
		}
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "did not answer (dial tcp 10.0.0.9:9443: connect: connection refused)") {
			t.Errorf("warnings %q, want one saying the leader did not answer and why", resp.Warnings)
		}
		if cluster.confirms != 1 || d.settles != 1 || len(d.ledger) != 1 || d.ledger[0].Name != "default" {
			t.Errorf("reads %d, settles %d, ledger %v; want 1, 1 and [default]", cluster.confirms, d.settles, d.ledger)
		}
	})
	t.Run("a conflicting ledger entry denies", func(t *testing.T) {
		cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
		d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathFallback}}, ledger: []clusterview.SidecarRef{refOf(t, "other-replica", wideSpec)}}
		v := newDeciding(cluster, d)
		if resp := v.Handle(context.Background(), create("a", wideSpec)); resp.Allowed {
			t.Errorf("allowed although another replica recorded a conflicting Sidecar in the ledger")
		}
	})
	t.Run("a ledger entry the read shows stored is the stored one", func(t *testing.T) {
		live := emptyProd()
		live.PutSidecar(refOf(t, "ratings", ratingsSpec))
		cluster := &countingCluster{cached: emptyProd(), live: live}
		// The ledger names the same Sidecar with an older selector; the
		// stored one (app=ratings) is what counts, so app=details is free.
		d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathFallback}}, ledger: []clusterview.SidecarRef{refOf(t, "ratings", ratingsSpec)}}
		v := newDeciding(cluster, d)
		if resp := v.Handle(context.Background(), create("details", detailsSpec)); !resp.Allowed {
			t.Errorf("denied: %v", resp.Result)
		}
		if resp := v.Handle(context.Background(), create("ratings-2", ratingsSpec)); resp.Allowed {
			t.Errorf("a selector identical to a stored Sidecar's was allowed")
		}
	})
	t.Run("a dry run records nothing", func(t *testing.T) {
		cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
		d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathFallback}}}
		v := newDeciding(cluster, d)
		req := create("a", wideSpec)
		dryRun := true
		req.DryRun = &dryRun
		if resp := v.Handle(context.Background(), req); !resp.Allowed {
			t.Fatalf("denied: %v", resp.Result)
		}
		if !cmp.Equal(d.reservedDryRun, []bool{true}) || len(d.ledger) != 0 {
			t.Errorf("dry run: Reserve calls %v, ledger %v; want one dry-run call and nothing recorded", d.reservedDryRun, d.ledger)
		}
		if resp := v.Handle(context.Background(), create("b", wideSpec)); !resp.Allowed {
			t.Errorf("a dry run left a trace that denied the next Sidecar: %v", resp.Result)
		}
	})
}

// TestFallbackNeverAdmitsUnconfirmed: if the direct read, the ledger or the
// wait for Settle fails, the answer is an error, never "allowed".
func TestFallbackNeverAdmitsUnconfirmed(t *testing.T) {
	cases := map[string]func(*countingCluster, *fakeDecider){
		"read fails":   func(c *countingCluster, _ *fakeDecider) { c.err = errors.New("the API server is unreachable") },
		"ledger fails": func(_ *countingCluster, d *fakeDecider) { d.reserveErr = errors.New("etcd timeout") },
		"settle fails": func(_ *countingCluster, d *fakeDecider) { d.settleErr = context.DeadlineExceeded },
	}
	for name, breakIt := range cases {
		for _, path := range []string{webhook.PathFallback, webhook.PathLeaderWarmup} {
			t.Run(name+"/"+path, func(t *testing.T) {
				cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
				d := &fakeDecider{routes: []webhook.Route{{Path: path}}}
				breakIt(cluster, d)
				resp := newDeciding(cluster, d).Handle(context.Background(), create("a", wideSpec))
				if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable {
					t.Errorf("got %+v, want a 503 error", resp.Result)
				}
			})
		}
	}
}

// TestNoFallbackNextToADecidingLeader: when the leader did not answer but
// may still be deciding, the follower refuses (503) without deciding: a
// decision here could race the leader's.
func TestNoFallbackNextToADecidingLeader(t *testing.T) {
	cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
	d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathForwarded, Leader: "leader_1_10.0.0.9:9443"}},
		forwardErr: fmt.Errorf("forwarding to the leader at 10.0.0.9:9443: context deadline exceeded: %w", webhook.ErrLeaderMayBeDeciding)}
	resp := newDeciding(cluster, d).Handle(context.Background(), create("a", wideSpec))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %+v, want a 503 refusal", resp.Result)
	}
	if !strings.Contains(resp.Result.Message, "may still be deciding") {
		t.Errorf("the refusal does not say why: %q", resp.Result.Message)
	}
	if cluster.confirms != 0 || d.reserves != 0 || d.settles != 0 {
		t.Errorf("reads %d, ledger %d, settles %d: a refusal decides nothing", cluster.confirms, d.reserves, d.settles)
	}
}

// TestWarmupConfirmsNamespaces: a warming-up leader reads and uses the
// ledger; it reports the namespace confirmed only when its cache held every
// stored Sidecar at the stored version.
func TestWarmupConfirmsNamespaces(t *testing.T) {
	stored := refOf(t, "ratings", ratingsSpec)
	stored.ResourceVersion = "7"
	withStored := func() *clusterview.Memory {
		m := emptyProd()
		m.PutSidecar(stored)
		return m
	}
	cases := []struct {
		name          string
		cached, live  *clusterview.Memory
		wantConfirmed bool
	}{
		{name: "cache agrees", cached: withStored(), live: withStored(), wantConfirmed: true},
		{name: "cache lacks one", cached: emptyProd(), live: withStored()},
		{name: "cache holds an older version", cached: func() *clusterview.Memory {
			m := emptyProd()
			old := stored
			old.ResourceVersion = "6"
			m.PutSidecar(old)
			return m
		}(), live: withStored()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster := &countingCluster{cached: tc.cached, live: tc.live}
			d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathLeaderWarmup}}}
			resp := newDeciding(cluster, d).Handle(context.Background(), create("details", detailsSpec))
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			if len(resp.Warnings) != 0 && strings.Contains(strings.Join(resp.Warnings, ""), "did not answer") {
				t.Errorf("a leader's warm-up decision warned about an unreachable leader: %q", resp.Warnings)
			}
			if cluster.confirms != 1 || d.reserves != 1 {
				t.Errorf("reads %d, ledger %d; want 1 and 1", cluster.confirms, d.reserves)
			}
			if got := len(d.confirmed) == 1; got != tc.wantConfirmed {
				t.Errorf("confirmed namespaces %v, want confirmed=%v", d.confirmed, tc.wantConfirmed)
			}
		})
	}
}

// TestLeadLostUnderTheLock: the lead is checked again once the namespace's
// lock is held; a replica that lost it meanwhile forwards instead.
func TestLeadLostUnderTheLock(t *testing.T) {
	cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
	d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathLeader}, {Path: webhook.PathForwarded, Leader: "new_1_10.0.0.9:9443"}}}
	d.forward = func(admission.Request) admission.Response { return admission.Denied("the new leader says no") }
	resp := newDeciding(cluster, d).Handle(context.Background(), create("a", wideSpec))
	if resp.Allowed || d.forwards != 1 {
		t.Errorf("allowed=%v after %d forwards; want the new leader's denial", resp.Allowed, d.forwards)
	}
}

// TestInternalPathOnlyDecidesAsLeader: the leader's own endpoint answers a
// 503 on a replica that does not lead, so that the sender decides itself,
// and never forwards (no loops between two replicas that each think the
// other leads).
func TestInternalPathOnlyDecidesAsLeader(t *testing.T) {
	for _, route := range []webhook.Route{{Path: webhook.PathForwarded, Leader: "other_1_10.0.0.9:9443"}, {Path: webhook.PathFallback}} {
		cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
		d := &fakeDecider{routes: []webhook.Route{route}, forward: func(admission.Request) admission.Response { return admission.Allowed("") }}
		v := newDeciding(cluster, d)
		v.Internal = true
		resp := v.Handle(context.Background(), create("a", wideSpec))
		if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusServiceUnavailable {
			t.Errorf("route %s: got %+v, want 503", route.Path, resp.Result)
		}
		if d.forwards != 0 || d.reserves != 0 {
			t.Errorf("route %s: the internal path forwarded (%d) or decided itself (%d)", route.Path, d.forwards, d.reserves)
		}
	}
	cluster := &countingCluster{cached: emptyProd(), live: emptyProd()}
	v := newDeciding(cluster, &fakeDecider{routes: []webhook.Route{{Path: webhook.PathLeader}}})
	v.Internal = true
	if resp := v.Handle(context.Background(), create("a", wideSpec)); !resp.Allowed {
		t.Errorf("the leader's internal path denied: %v", resp.Result)
	}
}

// TestDecisionPathMetric: each answer is counted under the path that
// decided it.
func TestDecisionPathMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics, err := webhook.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cached := emptyProd()
	cached.PutSidecar(refOf(t, "default", wideSpec))
	d := &fakeDecider{routes: []webhook.Route{{Path: webhook.PathForwarded, Leader: "l_1_10.0.0.9:9443"}}}
	mux := http.NewServeMux()
	webhook.Register(muxRegistrar{mux}, webhook.Handlers{
		webhook.ValidateSidecarsPath: newDeciding(&countingCluster{cached: cached, live: cached}, d),
	}, metrics, logr.Discard())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, sidecarJSON("second", wideSpec)))     // denied from the cache
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, sidecarJSON("ratings", ratingsSpec))) // leader unreachable
	d.forward = func(admission.Request) admission.Response { return admission.Allowed("") }
	post(t, srv, webhook.ValidateSidecarsPath, "application/json", reviewBody(t, admissionv1.Create, sidecarJSON("details", detailsSpec)))

	got := map[string]float64{}
	for _, m := range family(t, reg, webhook.MetricSidecarDecisions).GetMetric() {
		got[labelsOf(m, "path", "result")] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"local denied": 1, "fallback allowed": 1, "forwarded allowed": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", webhook.MetricSidecarDecisions, diff)
	}
}
