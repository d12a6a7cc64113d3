// Package load is a small closed-loop load generator: a fixed number of
// workers send requests back to back for a fixed time, and every request's
// latency is recorded, so percentiles are exact rather than bucketed. It
// knows nothing about admission; see admission.go for the webhook targets.
package load

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Target is what the workers call. Do performs one request; seq is unique
// across all workers of one Run (0, 1, 2, ...), for unique names and UIDs.
// A non-nil error counts the request as failed; its latency is still
// recorded.
type Target interface {
	Do(ctx context.Context, seq int64) error
}

// TargetFunc adapts a function to Target.
type TargetFunc func(ctx context.Context, seq int64) error

// Do implements Target.
func (f TargetFunc) Do(ctx context.Context, seq int64) error { return f(ctx, seq) }

// Result summarises one Run.
type Result struct {
	Concurrency int           `json:"concurrency"`
	Elapsed     time.Duration `json:"elapsedNs"`
	Requests    int64         `json:"requests"`
	Errors      int64         `json:"errors"`
	// FirstError is the text of the first failure, for diagnosis.
	FirstError string `json:"firstError,omitempty"`
	// RPS counts every completed request, failed or not.
	RPS  float64       `json:"rps"`
	Mean time.Duration `json:"meanNs"`
	P50  time.Duration `json:"p50Ns"`
	P90  time.Duration `json:"p90Ns"`
	P99  time.Duration `json:"p99Ns"`
	P999 time.Duration `json:"p999Ns"`
	Max  time.Duration `json:"maxNs"`
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("c=%d n=%d err=%d rps=%.0f p50=%s p99=%s p99.9=%s max=%s",
		r.Concurrency, r.Requests, r.Errors, r.RPS, Ms(r.P50), Ms(r.P99), Ms(r.P999), Ms(r.Max))
}

// Ms formats a duration in milliseconds with three decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }

// Run drives target with concurrency workers for duration (or until ctx
// ends) and returns the figures. Requests in flight when the time is up
// are completed and counted.
func Run(ctx context.Context, target Target, concurrency int, duration time.Duration) Result {
	var m measurement
	m.add(drive(ctx, target, concurrency, duration))
	return m.result(concurrency)
}

// RunInterleaved measures targets in turns, rounds times each for
// duration/rounds, and returns each one's figures over all its turns, in
// the order given. A machine whose background load drifts (a shared
// two-core machine, the API server next to the webhook) then weighs on all
// alike, which one long run of each after the other does not.
func RunInterleaved(ctx context.Context, targets []Target, concurrency int, duration time.Duration, rounds int) []Result {
	if rounds < 1 {
		rounds = 1
	}
	turn := duration / time.Duration(rounds)
	ms := make([]measurement, len(targets))
	for range rounds {
		for i, t := range targets {
			ms[i].add(drive(ctx, t, concurrency, turn))
		}
		if ctx.Err() != nil {
			break
		}
	}
	out := make([]Result, len(targets))
	for i := range ms {
		out[i] = ms[i].result(concurrency)
	}
	return out
}

// measurement accumulates the turns of one target.
type measurement struct {
	samples  []time.Duration
	errors   int64
	firstErr string
	elapsed  time.Duration
}

func (m *measurement) add(t turn) {
	m.samples = append(m.samples, t.samples...)
	m.errors += t.errors
	if m.firstErr == "" {
		m.firstErr = t.firstErr
	}
	m.elapsed += t.elapsed
}

func (m *measurement) result(concurrency int) Result {
	all := m.samples
	r := Result{Concurrency: max(concurrency, 1), Elapsed: m.elapsed, Requests: int64(len(all)), Errors: m.errors, FirstError: m.firstErr}
	if len(all) == 0 {
		return r
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	r.RPS = float64(len(all)) / m.elapsed.Seconds()
	r.Mean = sum / time.Duration(len(all))
	r.P50 = Percentile(all, 50)
	r.P90 = Percentile(all, 90)
	r.P99 = Percentile(all, 99)
	r.P999 = Percentile(all, 99.9)
	r.Max = all[len(all)-1]
	return r
}

// turn is one uninterrupted stretch of load on a target.
type turn struct {
	samples  []time.Duration
	errors   int64
	firstErr string
	elapsed  time.Duration
}

// drive runs concurrency workers against target for duration.
func drive(ctx context.Context, target Target, concurrency int, duration time.Duration) turn {
	if concurrency < 1 {
		concurrency = 1
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		seq      atomic.Int64
		errCount atomic.Int64
		firstErr atomic.Pointer[string]
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	samples := make([][]time.Duration, concurrency)
	start := time.Now()
	timer := time.AfterFunc(duration, func() { stop.Store(true) })
	defer timer.Stop()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for !stop.Load() && runCtx.Err() == nil {
				n := seq.Add(1) - 1
				t0 := time.Now()
				err := target.Do(runCtx, n)
				local = append(local, time.Since(t0))
				if err != nil {
					errCount.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
				}
			}
			samples[w] = local
		}()
	}
	wg.Wait()
	t := turn{elapsed: time.Since(start), errors: errCount.Load()}
	if p := firstErr.Load(); p != nil {
		t.firstErr = *p
	}
	for _, s := range samples {
		t.samples = append(t.samples, s...)
	}
	return t
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted samples by
// the nearest-rank method: the smallest sample at least p% of the samples
// are less than or equal to.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
