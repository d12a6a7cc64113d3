//go:build controlplane

package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// loadRequest is one request of a load run: the review body for path, and
// what its answer must say.
type loadRequest struct {
	kind   string
	path   string
	uid    string
	body   []byte
	expect func(reviewResult) error
}

// outcome classes of a load request.
const (
	outcomeOK      = "ok"      // a valid AdmissionReview with the expected decision
	outcomeRefused = "refused" // connection refused: never reached the server
	outcomeFailed  = "failed"  // reached (or may have reached) the server, no valid answer
	outcomeWrong   = "wrong"   // a valid answer with an unexpected decision
)

type loadResult struct {
	kind    string
	sent    time.Time
	latency time.Duration
	outcome string
	detail  string
	res     reviewResult
}

// loadRun sends requests at a fixed rate from a fixed pool of workers over
// one HTTP/2 keep-alive client, until ctx ends. A tick finding every
// worker busy is counted as missed rather than queued, so a slow server
// shows up as missed ticks instead of a silently lower rate.
type loadRun struct {
	client  *http.Client
	addr    string
	rate    int // requests per second
	workers int
	next    func(i int) loadRequest

	mu      sync.Mutex
	results []loadResult
	missed  int
}

func (l *loadRun) run(ctx context.Context) {
	// A short queue absorbs the catch-up bursts below; beyond it a busy
	// pool means missed ticks.
	jobs := make(chan int, l.workers)
	var wg sync.WaitGroup
	for w := 0; w < l.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				l.record(l.do(l.next(i)))
			}
		}()
	}
	// Request i is due at start + i*period. A time.Ticker would silently
	// drop ticks whenever this goroutine is scheduled late (two busy
	// cores), lowering the rate unseen; due times are caught up instead.
	period := time.Second / time.Duration(l.rate)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
loop:
	for i := 0; ; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * period)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			break loop
		}
		select {
		case jobs <- i:
		default:
			l.mu.Lock()
			l.missed++
			l.mu.Unlock()
		}
	}
	close(jobs)
	wg.Wait()
}

func (l *loadRun) do(req loadRequest) loadResult {
	// Each request has the API server's webhook timeout, independent of
	// the run's context: an accepted request is always waited for.
	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	defer cancel()
	sent := time.Now()
	res, err := post(ctx, l.client, l.addr, req.path, req.body, req.uid)
	out := loadResult{kind: req.kind, sent: sent, latency: time.Since(sent), res: res, outcome: outcomeOK}
	switch {
	case err != nil && res.status == 0 && isConnRefused(err):
		out.outcome, out.detail = outcomeRefused, err.Error()
	case err != nil:
		out.outcome, out.detail = outcomeFailed, err.Error()
	default:
		if err := req.expect(res); err != nil {
			out.outcome, out.detail = outcomeWrong, err.Error()
		}
	}
	return out
}

func (l *loadRun) record(r loadResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, r)
}

// snapshot returns the results so far and the missed ticks.
func (l *loadRun) snapshot() ([]loadResult, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.results), l.missed
}

// count returns how many results have each outcome.
func count(results []loadResult) map[string]int {
	out := map[string]int{}
	for _, r := range results {
		out[r.outcome]++
	}
	return out
}

// examples returns up to n distinct details of results with outcome.
func examples(results []loadResult, outcome string, n int) string {
	seen := map[string]bool{}
	var out []string
	for _, r := range results {
		if r.outcome != outcome || seen[r.detail] {
			continue
		}
		seen[r.detail] = true
		out = append(out, fmt.Sprintf("%s (%s after start of request)", r.detail, r.latency.Round(time.Millisecond)))
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "\n  ")
}

// percentiles of the latencies of results with outcome ok.
func percentiles(results []loadResult, ps ...float64) []time.Duration {
	var lat []time.Duration
	for _, r := range results {
		if r.outcome == outcomeOK {
			lat = append(lat, r.latency)
		}
	}
	out := make([]time.Duration, len(ps))
	if len(lat) == 0 {
		return out
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	for i, p := range ps {
		out[i] = lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return out
}

// Expected decisions.

func expectAllowed(r reviewResult) error {
	if !r.response.Allowed {
		return fmt.Errorf("denied, want allowed: %s", r.message())
	}
	return nil
}

func expectDenied(r reviewResult) error {
	if r.response.Allowed {
		return fmt.Errorf("allowed, want denied")
	}
	if r.response.Result == nil || r.response.Result.Code != 422 {
		return fmt.Errorf("denied with %+v, want code 422", r.response.Result)
	}
	return nil
}

// validSidecarRequest is a valid Sidecar CREATE with a workloadSelector of
// its own: it conflicts with nothing, so it is always allowed.
func validSidecarRequest(namespace string, i int) loadRequest {
	uid := newUID()
	name := fmt.Sprintf("load-%d-%s", i, uid[:6])
	return loadRequest{
		kind: "valid-sidecar", path: "/validate/sidecars", uid: uid,
		body:   sidecarReview(uid, namespace, name, selectorSpec(map[string]string{"app": name})),
		expect: expectAllowed,
	}
}

// invalidSidecarRequest breaks a per-object rule (an egress host whose
// namespace part is not a valid namespace name).
func invalidSidecarRequest(namespace string, i int) loadRequest {
	uid := newUID()
	name := fmt.Sprintf("invalid-%d-%s", i, uid[:6])
	spec := map[string]any{
		"workloadSelector": map[string]any{"labels": map[string]any{"app": name}},
		"egress":           []any{map[string]any{"hosts": []any{"Not_A.Namespace/x.example.com"}}},
	}
	return loadRequest{
		kind: "invalid-sidecar", path: "/validate/sidecars", uid: uid,
		body: sidecarReview(uid, namespace, name, spec), expect: expectDenied,
	}
}

// podRequest is a Pod CREATE for the annotator.
func podRequest(namespace string, i int) loadRequest {
	uid := newUID()
	return loadRequest{
		kind: "pod", path: "/mutate/pods", uid: uid,
		body:   podReview(uid, namespace, fmt.Sprintf("pod-%d-%s", i, uid[:6]), map[string]string{"app": "soak"}),
		expect: expectAllowed,
	}
}
