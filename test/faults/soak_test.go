//go:build controlplane

package faults_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

const (
	soakRate = 100 // requests per second
	// soakWorkers bounds the requests in flight. The API server does not
	// wait for one review before sending the next, so neither does the
	// load: at 100 req/s, 32 workers ride out a 300 ms stall (two shared
	// cores, etcd fsyncs) without falling behind the rate.
	soakWorkers  = 32
	soakWarmUp   = 10 * time.Second
	soakDuration = 60 * time.Second
	// soakSamples heap readings, one a second, make each end's window.
	soakSamples = 5

	// The heap may grow by the larger of these between the two windows.
	//
	// Why these bounds: go_memstats_heap_inuse_bytes is sampled, and between
	// two garbage collections it climbs towards twice the live heap
	// (GOGC=100) before falling back. Taking each window's minimum over 5 s
	// (several GC cycles at this rate) compares near-post-GC heaps, leaving
	// allocator noise (spans kept or released, the informers' resync) of a
	// few MiB on a heap of a few tens of MiB. A leak worth worrying about is
	// per request: 6,000 requests leaking 1.5 KiB each already exceed 8 MiB,
	// and a leak in proportion to the heap exceeds 20%.
	soakMaxGrowthBytes = 8 << 20
	soakMaxGrowthRatio = 0.20
	// soakMaxGoroutineGrowth allows for a few connections' goroutines; a
	// leak per request would add thousands.
	soakMaxGoroutineGrowth = 20
	// soakMinRateRatio: the load must actually have been sent at the rate.
	soakMinRateRatio = 0.95
)

const (
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricHeapLive   = "go_gc_heap_live_bytes" // the live heap the last GC marked
	metricGoroutines = "go_goroutines"
)

type heapSample struct {
	inuse, live, goroutines float64
}

// sampleHeap reads soakSamples samples one second apart.
func sampleHeap(t *testing.T, p *webhookProc) []heapSample {
	t.Helper()
	var out []heapSample
	for i := 0; i < soakSamples; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		m, err := p.metrics()
		if err != nil {
			t.Fatalf("reading metrics: %v", err)
		}
		inuse, ok := m[metricHeapInuse]
		if !ok {
			t.Fatalf("the server exposes no %s", metricHeapInuse)
		}
		out = append(out, heapSample{inuse: inuse, live: m[metricHeapLive], goroutines: m[metricGoroutines]})
	}
	return out
}

func minOf(samples []heapSample, f func(heapSample) float64) float64 {
	vals := make([]float64, 0, len(samples))
	for _, s := range samples {
		vals = append(vals, f(s))
	}
	return slices.Min(vals)
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// TestSoak sends a minute of steady, mixed admission traffic (valid and
// invalid Sidecars, pods) and requires every answer to be right and the
// heap to end where it started, within noise. `go test -short` skips it.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak takes over a minute; run without -short")
	}
	p := startWebhook(t)
	var namespaces []string
	for i := 0; i < 4; i++ {
		namespaces = append(namespaces, createNamespace(t, "soak"))
	}
	create(t, selectorSidecar(namespaces[0], "soak", map[string]string{"app": "soak"}))
	load := &loadRun{
		client: p.client, addr: p.addr, rate: soakRate, workers: soakWorkers,
		next: func(i int) loadRequest {
			ns := namespaces[i%len(namespaces)]
			switch i % 4 {
			case 2:
				return invalidSidecarRequest(ns, i)
			case 3:
				return podRequest(ns, i)
			default:
				return validSidecarRequest(ns, i)
			}
		},
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	loadDone := make(chan struct{})
	began := time.Now()
	go func() {
		load.run(ctx)
		close(loadDone)
	}()

	time.Sleep(soakWarmUp)
	startWindow := sampleHeap(t, p)
	// The end window closes soakDuration after the start window opened.
	time.Sleep(time.Until(began.Add(soakWarmUp + soakDuration - (soakSamples-1)*time.Second)))
	endWindow := sampleHeap(t, p)
	stopLoad()
	<-loadDone
	elapsed := time.Since(began)

	results, missed := load.snapshot()
	c := count(results)
	byKind := map[string]int{}
	for _, r := range results {
		byKind[r.kind]++
	}
	pct := percentiles(results, 0.5, 0.99, 1)
	t.Logf("soak: %d requests in %s (%.1f req/s; target %d, %d workers, one HTTP/2 connection): %v; outcomes %v; %d ticks missed; latency p50 %s p99 %s max %s",
		len(results), elapsed.Round(100*time.Millisecond), float64(len(results))/elapsed.Seconds(), soakRate, soakWorkers,
		byKind, c, missed, pct[0].Round(100*time.Microsecond), pct[1].Round(100*time.Microsecond), pct[2].Round(100*time.Microsecond))
	unconfirmed := 0
	for _, r := range results {
		if hasWarning(r.res, "could not confirm") {
			unconfirmed++
		}
	}
	if unconfirmed > 0 {
		t.Logf("soak: %d allowed Sidecars were decided from the cache only (the direct read exceeded its 1 s timeout)", unconfirmed)
	}
	if bad := len(results) - c[outcomeOK]; bad > 0 {
		t.Errorf("%d of %d requests failed or were answered wrongly:\n  %s\n  %s\n  %s", bad, len(results),
			examples(results, outcomeFailed, 5), examples(results, outcomeWrong, 5), examples(results, outcomeRefused, 5))
	}
	if want := soakMinRateRatio * soakRate * elapsed.Seconds(); float64(len(results)) < want {
		t.Errorf("only %d requests were sent in %s, want at least %.0f: the load fell behind its rate (%d ticks missed)", len(results), elapsed, want, missed)
	}

	inuse := func(s heapSample) float64 { return s.inuse }
	live := func(s heapSample) float64 { return s.live }
	goroutines := func(s heapSample) float64 { return s.goroutines }
	before, after := minOf(startWindow, inuse), minOf(endWindow, inuse)
	allowed := max(soakMaxGrowthBytes, soakMaxGrowthRatio*before)
	t.Logf("soak heap (%s, minimum over %d s at each end, %s apart): before %s, after %s, growth %s (allowed %s)",
		metricHeapInuse, soakSamples, soakDuration, mib(before), mib(after), mib(after-before), mib(allowed))
	t.Logf("soak live heap (%s, the last GC's mark): before %s, after %s; goroutines before %.0f, after %.0f",
		metricHeapLive, mib(minOf(startWindow, live)), mib(minOf(endWindow, live)), minOf(startWindow, goroutines), minOf(endWindow, goroutines))
	if after-before > allowed {
		t.Errorf("the heap grew from %s to %s during the soak, more than the noise bound %s", mib(before), mib(after), mib(allowed))
	}
	if g := minOf(endWindow, goroutines) - minOf(startWindow, goroutines); g > soakMaxGoroutineGrowth {
		t.Errorf("goroutines grew by %.0f during the soak (a leak per request?)", g)
	}
}
