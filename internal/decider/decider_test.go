package decider

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

func TestIdentityCarriesTheAddress(t *testing.T) {
	for _, address := range []string{"10.0.0.7:9443", "[fd00::7]:9443", "127.0.0.1:1"} {
		id, err := NewIdentity("sidecar-webhook-7d9f_x", address)
		if err != nil {
			t.Fatalf("%s: %v", address, err)
		}
		got, err := AddressOf(id)
		if err != nil || got != address {
			t.Errorf("AddressOf(%q) = %q, %v; want %q", id, got, err, address)
		}
		if !strings.HasPrefix(id, "sidecar-webhook-7d9f-x_") {
			t.Errorf("identity %q does not start with the pod name (with _ replaced)", id)
		}
	}
	a, _ := NewIdentity("pod", "10.0.0.7:9443")
	b, _ := NewIdentity("pod", "10.0.0.7:9443")
	if a == b {
		t.Errorf("two processes of one pod got the same identity %q: a restarted process would take its predecessor's lease as its own", a)
	}
	for _, bad := range []string{"", "pod", "pod_abcd", "pod_abcd_10.0.0.7", "pod_abcd_:9443", "pod_abcd_10.0.0.7:0", "pod_abcd_10.0.0.7:http", "controller-runtime-uuid"} {
		if addr, err := AddressOf(bad); err == nil {
			t.Errorf("AddressOf(%q) = %q, want an error", bad, addr)
		}
	}
	if _, err := NewIdentity("pod", "10.0.0.7"); err == nil {
		t.Errorf("an address without a port was accepted")
	}
}

func TestLedgerEntries(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	wide := clusterview.SidecarRef{Namespace: "prod", Name: "default"}
	empty := clusterview.SidecarRef{Namespace: "prod", Name: "all", Selector: map[string]string{}}
	ratings := clusterview.SidecarRef{Namespace: "prod", Name: "ratings", Selector: map[string]string{"app": "ratings"}}

	entries := withEntry(nil, wide, now, "a")
	entries = withEntry(entries, empty, now.Add(time.Second), "a")
	entries = withEntry(entries, ratings, now.Add(2*time.Second), "b")
	entries = withEntry(entries, clusterview.SidecarRef{Namespace: "dev", Name: "default"}, now, "b")

	// Round trip through the annotation keeps namespace-wide (null) apart
	// from an empty selector ({}), which select differently.
	raw, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := decodeEntries(map[string]string{AnnotationAdmitted: string(raw)})
	if err != nil {
		t.Fatal(err)
	}
	got := admittedIn(decoded, "prod")
	want := []clusterview.SidecarRef{wide, empty, ratings}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admittedIn(prod) (-want +got):\n%s", diff)
	}
	if got[0].Selector != nil || got[1].Selector == nil {
		t.Errorf("selectors after the round trip: %#v and %#v; want nil and empty", got[0].Selector, got[1].Selector)
	}

	// Entries expire LedgerTTL after they were recorded.
	if n := len(unexpired(decoded, now.Add(LedgerTTL-time.Millisecond))); n != 4 {
		t.Errorf("just before the TTL: %d entries count, want 4", n)
	}
	if left := admittedIn(unexpired(decoded, now.Add(LedgerTTL+time.Second)), "prod"); !cmp.Equal(left, []clusterview.SidecarRef{ratings}) {
		t.Errorf("a second after the first TTL: %v count, want only ratings", left)
	}

	// Recording a Sidecar again replaces its entry (an update with a new
	// selector) and renews it.
	moved := clusterview.SidecarRef{Namespace: "prod", Name: "ratings", Selector: map[string]string{"app": "reviews"}}
	again := withEntry(decoded, moved, now.Add(5*time.Second), "c")
	var ratingsEntries []entry
	for _, e := range again {
		if e.Name == "ratings" {
			ratingsEntries = append(ratingsEntries, e)
		}
	}
	if len(ratingsEntries) != 1 || ratingsEntries[0].Selector["app"] != "reviews" || !ratingsEntries[0].Expires.Equal(now.Add(5*time.Second+LedgerTTL)) {
		t.Errorf("re-recorded entry: %+v", ratingsEntries)
	}

	if _, err := decodeEntries(map[string]string{AnnotationAdmitted: "{not a list"}); err == nil {
		t.Errorf("an unreadable ledger was taken as empty: that could drop an admission")
	}
	if e, err := decodeEntries(nil); err != nil || e != nil {
		t.Errorf("no annotation: %v, %v; want no entry, no error", e, err)
	}
}

func TestLedgerName(t *testing.T) {
	seen := map[string]bool{}
	for i := range 1000 {
		name := LedgerName(fmt.Sprintf("ns-%d", i))
		if !strings.HasPrefix(name, LedgerPrefix) || len(name) != len(LedgerPrefix)+2 {
			t.Fatalf("LedgerName = %q", name)
		}
		seen[name] = true
	}
	if len(seen) != LedgerShards {
		t.Errorf("1000 namespaces use %d ledgers, want all %d", len(seen), LedgerShards)
	}
	// Every replica, of every version (a rolling update runs two), must
	// map a namespace to the same ledger: the mapping is pinned.
	for ns, want := range map[string]string{"prod": "sidecar-webhook-ledger-04", "default": "sidecar-webhook-ledger-14", "kube-system": "sidecar-webhook-ledger-14"} {
		if got := LedgerName(ns); got != want {
			t.Errorf("LedgerName(%q) = %q, want %q: changing the mapping splits replicas of two versions onto different ledgers", ns, got, want)
		}
	}
}

// denyIfAny admits only when no other Sidecar was recorded (as two
// namespace-wide Sidecars would).
func denyIfAny(admitted []clusterview.SidecarRef) validation.Result {
	if len(admitted) > 0 {
		return validation.Result{Errors: field.ErrorList{field.Forbidden(field.NewPath("spec", "workloadSelector"), "taken by "+admitted[0].Name)}}
	}
	return validation.Result{}
}

// TestReserveSerializes: a write based on an older read fails, and the
// decision is made again on what the other replica recorded.
func TestReserveSerializes(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cs := fake.NewClientset()
	l := &ledger{leases: cs.CoordinationV1().Leases("sidecar-webhook-system"), identity: "me", now: func() time.Time { return now }}
	ctx := context.Background()
	a := clusterview.SidecarRef{Namespace: "prod", Name: "a"}
	b := clusterview.SidecarRef{Namespace: "prod", Name: "b"}

	// The first write creates the ledger.
	if res, err := l.reserve(ctx, a, false, denyIfAny); err != nil || !res.Allowed() {
		t.Fatalf("first reservation: %v, %v", res, err)
	}
	// Another replica records b between this replica's read and write:
	// the write conflicts (the fake tracker has no resourceVersions, so a
	// reactor plays the API server's precondition).
	l2 := &ledger{leases: cs.CoordinationV1().Leases("sidecar-webhook-system"), identity: "me", now: l.now}
	if _, err := l2.reserve(ctx, clusterview.SidecarRef{Namespace: "other", Name: "x"}, false, denyIfAny); err != nil {
		t.Fatal(err)
	}
	cs.Fake.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		lease := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		if lease.Name != LedgerName("dev") {
			return false, nil, nil
		}
		cs.Fake.ReactionChain = cs.Fake.ReactionChain[1:] // once
		other := lease.DeepCopy()
		entries, _ := decodeEntries(lease.Annotations)
		var kept []entry
		for _, e := range entries {
			if e.Name != "c" {
				kept = append(kept, e)
			}
		}
		raw, _ := json.Marshal(withEntry(kept, clusterview.SidecarRef{Namespace: "dev", Name: "rival"}, now, "other"))
		other.Annotations[AnnotationAdmitted] = string(raw)
		if err := cs.Tracker().Update(schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}, other, other.Namespace); err != nil {
			t.Fatal(err)
		}
		return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, lease.Name, fmt.Errorf("the object has been modified"))
	})
	// dev's ledger must exist for an update: create it with an unrelated entry.
	if _, err := l.reserve(ctx, clusterview.SidecarRef{Namespace: "dev", Name: "seed"}, false, func([]clusterview.SidecarRef) validation.Result { return validation.Result{} }); err != nil {
		t.Fatal(err)
	}
	calls := 0
	res, err := l.reserve(ctx, clusterview.SidecarRef{Namespace: "dev", Name: "c"}, false, func(admitted []clusterview.SidecarRef) validation.Result {
		calls++
		for _, ref := range admitted {
			if ref.Name == "rival" {
				return denyIfAny([]clusterview.SidecarRef{ref})
			}
		}
		return validation.Result{}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Allowed() || calls != 2 {
		t.Errorf("after a conflicting write: allowed=%v after %d decisions; want denied on the second decision, seeing the rival", res.Allowed(), calls)
	}

	// In one namespace the second reservation sees the first.
	if res, err := l.reserve(ctx, b, false, denyIfAny); err != nil || res.Allowed() {
		t.Errorf("b after a: %v, %v; want denied", res, err)
	}
	// A dry run decides on the ledger but writes nothing.
	if res, err := l.reserve(ctx, clusterview.SidecarRef{Namespace: "fresh", Name: "d"}, true, denyIfAny); err != nil || !res.Allowed() {
		t.Fatalf("dry run: %v, %v", res, err)
	}
	if res, err := l.reserve(ctx, clusterview.SidecarRef{Namespace: "fresh", Name: "e"}, false, denyIfAny); err != nil || !res.Allowed() {
		t.Errorf("after a dry run: %v, %v; want allowed (the dry run recorded nothing)", res, err)
	}
	// Expired entries no longer count.
	now = now.Add(LedgerTTL + time.Second)
	if res, err := l.reserve(ctx, b, false, denyIfAny); err != nil || !res.Allowed() {
		t.Errorf("b once a expired: %v, %v; want allowed", res, err)
	}
	lease, err := cs.CoordinationV1().Leases("sidecar-webhook-system").Get(ctx, LedgerName("prod"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := decodeEntries(lease.Annotations)
	for _, e := range entries {
		if e.Name == "a" {
			t.Errorf("an expired entry was written back: %+v", e)
		}
	}
}

func TestWarmup(t *testing.T) {
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	beforeFloor, afterFloor := start.Add(WarmupFloor-time.Millisecond), start.Add(WarmupFloor)

	w := newWarmup(start)
	w.confirm("early", beforeFloor)
	w.comparedAll(beforeFloor, nil)
	if w.warm("early", afterFloor) || w.warm("any", afterFloor) || w.done() {
		t.Fatalf("reads started before the floor warmed namespaces up")
	}
	w.confirm("one", afterFloor)
	if !w.warm("one", afterFloor) || w.warm("one", beforeFloor) || w.warm("other", afterFloor) {
		t.Errorf("a read after the floor must warm exactly its namespace, and not before the floor")
	}
	w.comparedAll(afterFloor, map[string]bool{"one": true, "lagging": true})
	if !w.warm("one", afterFloor) {
		t.Errorf("a namespace warm before a comparison stays warm (what the cache lacks there now is this leader's own)")
	}
	if !w.warm("other", afterFloor) || w.warm("lagging", afterFloor) || w.done() {
		t.Errorf("after the first comparison: other warm=%v, lagging warm=%v, done=%v; want true, false, false",
			w.warm("other", afterFloor), w.warm("lagging", afterFloor), w.done())
	}
	w.comparedAll(afterFloor.Add(time.Second), map[string]bool{"lagging": true, "newly-different": true})
	if w.warm("lagging", afterFloor) || !w.warm("newly-different", afterFloor) {
		t.Errorf("a later comparison must only warm cold namespaces up, never cool warm ones")
	}
	w.comparedAll(afterFloor.Add(2*time.Second), nil)
	if !w.done() || !w.warm("lagging", afterFloor) {
		t.Errorf("every namespace agreed: want done")
	}
}

func TestDisagreeing(t *testing.T) {
	cache := map[string][]clusterview.SidecarRef{
		"same":   {{Name: "a", ResourceVersion: "5"}, {Name: "b", ResourceVersion: "6"}},
		"older":  {{Name: "a", ResourceVersion: "4"}},
		"more":   {{Name: "a", ResourceVersion: "5"}, {Name: "deleted", ResourceVersion: "3"}},
		"absent": nil,
	}
	stored := []storedSidecar{
		{"same", "a", "5"}, {"same", "b", "6"},
		{"older", "a", "5"},
		{"more", "a", "5"},
		{"absent", "new", "9"},
	}
	got := disagreeing(stored, func(ns string) []clusterview.SidecarRef { return cache[ns] })
	if diff := cmp.Diff(map[string]bool{"older": true, "absent": true}, got); diff != "" {
		t.Errorf("disagreeing namespaces (-want +got):\n%s", diff)
	}
}

// testAnswerTimeout stands for AnswerTimeout, to keep the tests short.
const testAnswerTimeout = 300 * time.Millisecond

// leaderServer is a replica at an address: answer decides what its
// /decide/sidecars answers (nil: it never answers in time).
func leaderServer(t *testing.T, answer func(admissionv1.AdmissionReview) *admissionv1.AdmissionResponse) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		resp := answer(review)
		if resp == nil {
			time.Sleep(testAnswerTimeout + 200*time.Millisecond)
			return
		}
		resp.UID = review.Request.UID
		review.Response, review.Request = resp, nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, caFile
}

// TestForwardAndWhenToDecideAlone: who answers a forwarded review, and when
// a replica no leader answered may decide itself.
func TestForwardAndWhenToDecideAlone(t *testing.T) {
	allow := func(admissionv1.AdmissionReview) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	notLeader := func(admissionv1.AdmissionReview) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: http.StatusServiceUnavailable, Message: "this replica does not lead"}}
	}
	silent := func(admissionv1.AdmissionReview) *admissionv1.AdmissionResponse { return nil }
	closedAddress := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return addr
	}
	const self = "self_00000000_127.0.0.1:1"

	cases := []struct {
		name string
		// leader answers at the address the route names; holder is what
		// the Lease says ("leader" for the same replica, "" for none).
		leader      func(admissionv1.AdmissionReview) *admissionv1.AdmissionResponse
		leaderGone  bool
		holder      string
		other       func(admissionv1.AdmissionReview) *admissionv1.AdmissionResponse
		quiet       time.Duration
		noLease     bool
		wantAnswer  bool
		wantRefusal bool // the error wraps ErrLeaderMayBeDeciding
	}{
		{name: "the leader answers", leader: allow, holder: "leader", wantAnswer: true},
		{name: "the Lease names a newer leader, which answers", leader: silent, holder: "other", other: allow, wantAnswer: true},
		{name: "nobody holds the Lease", leaderGone: true, holder: ""},
		{name: "this replica holds the Lease", leaderGone: true, holder: self},
		{name: "nothing listens at the leader's address", leaderGone: true, holder: "leader"},
		{name: "the leader says it does not lead", leader: notLeader, holder: "leader"},
		{name: "the leader times out, its Lease fresh", leader: silent, holder: "leader", wantRefusal: true},
		{name: "the leader times out, its Lease unchanged for QuietFor", leader: silent, holder: "leader", quiet: QuietFor},
		{name: "the Lease cannot be read", leader: silent, holder: "leader", noLease: true, wantRefusal: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var leaderAddr, caFile string
			if tc.leaderGone {
				leaderAddr = closedAddress(t)
				_, caFile = leaderServer(t, allow) // any CA will do
			} else {
				srv, ca := leaderServer(t, tc.leader)
				leaderAddr, caFile = srv.Listener.Addr().String(), ca
			}
			leaderID := "leader_00000001_" + leaderAddr
			holder := tc.holder
			switch holder {
			case "leader":
				holder = leaderID
			case "other":
				srv, _ := leaderServer(t, tc.other)
				// Every httptest server shares one certificate.
				holder = "other_00000002_" + srv.Listener.Addr().String()
			}
			now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			cs := fake.NewClientset()
			if !tc.noLease {
				lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: LeaseName}}
				if holder != "" {
					lease.Spec.HolderIdentity = &holder
				}
				if _, err := cs.CoordinationV1().Leases("ns").Create(context.Background(), lease, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			fwd, err := newForwarder(caFile, "example.com", clock)
			if err != nil {
				t.Fatal(err)
			}
			fwd.answerTimeout = testAnswerTimeout
			d := &Decider{cfg: Config{Namespace: "ns"}, identity: self, clientset: cs, forwarder: fwd, now: clock}
			// The Lease as this replica's elector last saw it, quiet ago.
			if _, err := d.readHolder(context.Background()); err != nil && !tc.noLease {
				t.Fatal(err)
			}
			now = now.Add(tc.quiet)

			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u1", Namespace: "prod", Name: "a", Operation: admissionv1.Create}}
			resp, err := d.Forward(context.Background(), req, leaderID)
			if got := err == nil; got != tc.wantAnswer {
				t.Fatalf("answered=%v (%v), want %v", got, err, tc.wantAnswer)
			}
			if tc.wantAnswer {
				if !resp.Allowed {
					t.Errorf("answer %+v", resp)
				}
				return
			}
			if got := errors.Is(err, webhook.ErrLeaderMayBeDeciding); got != tc.wantRefusal {
				t.Errorf("error %q: refusal=%v, want %v", err, got, tc.wantRefusal)
			}
			if !tc.wantRefusal && d.failingSince.IsZero() {
				t.Errorf("a fallback must start the Settle streak")
			}
		})
	}
}

// TestLapseStartsANewTerm: a renewal after a gap longer than ValidFor
// starts a new term, which warms up again (followers may have decided
// themselves meanwhile); a renewal on time keeps the term.
func TestLapseStartsANewTerm(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &Decider{now: func() time.Time { return now }, cfg: Config{Log: logr.Discard(), Cached: func(string) []clusterview.SidecarRef { return nil }}}
	d.renewed() // acquired
	d.startedLeading(ctx)
	d.mu.Lock()
	d.warm.confirm("prod", now.Add(WarmupFloor))
	d.mu.Unlock()
	for now.Before(d.warm.start.Add(WarmupFloor)) {
		now = now.Add(RetryPeriod)
		d.renewed()
	}
	if d.term != 1 || !d.warm.warm("prod", now) {
		t.Fatalf("renewals within ValidFor: term %d, prod warm=%v; want term 1, warm", d.term, d.warm.warm("prod", now))
	}
	now = now.Add(ValidFor + time.Second)
	d.renewed()
	if d.term != 2 || d.warm.warm("prod", now) {
		t.Errorf("after a gap of %s: term %d, prod warm=%v; want a new term with prod cold", ValidFor+time.Second, d.term, d.warm.warm("prod", now))
	}
}

// TestSettle: a decision without the leader waits until Settle has passed
// since no leader answered (what it admitted last is then stored), and a new
// leader likewise since its term began; later ones do not wait.
func TestSettle(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := &Decider{now: func() time.Time { return now }, cfg: Config{Log: logr.Discard()}}
	short := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return d.Settle(ctx)
	}
	if err := short(); err != nil {
		t.Fatalf("nothing failed and no term began: Settle waited (%v)", err)
	}
	_ = d.failed(errors.New("connection refused"))
	if err := short(); err == nil {
		t.Errorf("right after the leader stopped answering, Settle did not wait")
	}
	now = now.Add(Settle)
	_ = d.failed(errors.New("connection refused")) // the same streak
	if err := short(); err != nil {
		t.Errorf("Settle after the streak began, Settle still waits (%v)", err)
	}
	now = now.Add(failureStreakGap + time.Second)
	_ = d.failed(errors.New("connection refused")) // a new streak
	if err := short(); err == nil {
		t.Errorf("a failure after a long quiet starts a new streak; Settle did not wait")
	}

	now = now.Add(time.Hour)
	d.mu.Lock()
	d.leading, d.warm = true, newWarmup(now)
	d.mu.Unlock()
	if err := short(); err == nil {
		t.Errorf("a new leader's first decision did not wait for its predecessor's admissions")
	}
	now = now.Add(Settle)
	if err := short(); err != nil {
		t.Errorf("Settle into the term, a decision still waits (%v)", err)
	}
}
