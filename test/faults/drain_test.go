//go:build controlplane

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
)

const (
	drainRate    = 200 // requests per second
	drainWorkers = 8
	// drainLoadBefore is how long the load runs before SIGTERM.
	drainLoadBefore = 2 * time.Second
	// drainLoadAfterExit keeps the load going past the exit, so requests
	// sent to the closed port are seen to be refused, not lost.
	drainLoadAfterExit = time.Second
	// drainStraddling requests upload half their body before SIGTERM and
	// the rest drainStraddleDelay after it.
	drainStraddling    = 4
	drainStraddleDelay = 300 * time.Millisecond
)

type straddleResult struct {
	res      reviewResult
	err      error
	finished time.Time
}

// straddleSIGTERM posts a valid Sidecar review whose body is sent in two
// halves: the first at once, the second drainStraddleDelay after
// sigtermSent is closed. The server has the request (its headers) before
// SIGTERM and must still answer it.
func straddleSIGTERM(p *webhookProc, namespace string, i int, sigtermSent <-chan struct{}) straddleResult {
	req := validSidecarRequest(namespace, 100000+i)
	half := len(req.body) / 2
	body, w := io.Pipe()
	go func() {
		_, _ = w.Write(req.body[:half])
		<-sigtermSent
		time.Sleep(drainStraddleDelay)
		_, _ = w.Write(req.body[half:])
		_ = w.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), terminationGracePeriod)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.addr+req.path, body)
	if err != nil {
		return straddleResult{err: err}
	}
	httpReq.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(httpReq)
	if err != nil {
		return straddleResult{err: err, finished: time.Now()}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	out := straddleResult{finished: time.Now(), res: reviewResult{status: resp.StatusCode, raw: raw}}
	if err != nil {
		out.err = err
		return out
	}
	var review admissionv1.AdmissionReview
	switch {
	case resp.StatusCode != http.StatusOK:
		out.err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	case json.Unmarshal(raw, &review) != nil || review.Response == nil || string(review.Response.UID) != req.uid:
		out.err = fmt.Errorf("not an AdmissionReview answering uid %s: %s", req.uid, raw)
	default:
		out.res.response = review.Response
	}
	return out
}

// TestSIGTERMDrain sends SIGTERM to the webhook while a steady load of
// Sidecar reviews runs: every request the server accepted gets a complete,
// valid answer; the others find the port closed (connection refused, which
// the API server treats as the webhook being unavailable, never as an
// answer); and the process exits 0 well within the termination grace
// period.
func TestSIGTERMDrain(t *testing.T) {
	p := startWebhook(t)
	var namespaces []string
	for i := 0; i < 4; i++ {
		namespaces = append(namespaces, createNamespace(t, "drain"))
	}
	load := &loadRun{
		client: p.client, addr: p.addr, rate: drainRate, workers: drainWorkers,
		next: func(i int) loadRequest { return validSidecarRequest(namespaces[i%len(namespaces)], i) },
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	loadDone := make(chan struct{})
	go func() {
		load.run(ctx)
		close(loadDone)
	}()

	// Requests certainly in flight at SIGTERM: their bodies are uploaded
	// half before the signal and half after it.
	sigtermSent := make(chan struct{})
	straddling := make(chan straddleResult, drainStraddling)
	time.Sleep(drainLoadBefore - 500*time.Millisecond)
	for i := 0; i < drainStraddling; i++ {
		go func() { straddling <- straddleSIGTERM(p, namespaces[i%len(namespaces)], i, sigtermSent) }()
	}
	time.Sleep(500 * time.Millisecond)
	before, _ := load.snapshot()
	if c := count(before); c[outcomeOK] == 0 || c[outcomeOK] != len(before) {
		t.Fatalf("before SIGTERM: %v; failures:\n  %s", c, examples(before, outcomeFailed, 5)+examples(before, outcomeWrong, 5))
	}
	sigterm := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(sigtermSent)
	select {
	case <-p.exited:
	case <-time.After(terminationGracePeriod):
		t.Errorf("the webhook did not exit within the termination grace period %s of SIGTERM", terminationGracePeriod)
	}
	exitAfter := time.Since(sigterm)
	time.Sleep(drainLoadAfterExit)
	stopLoad()
	<-loadDone

	if state := p.cmd.ProcessState; state == nil || !state.Success() {
		t.Errorf("the webhook exited with %v after SIGTERM, want status 0", p.waitErr)
	}

	results, missed := load.snapshot()
	var total, okBefore, okInFlight, okAfter, refused, refusedBefore, unconfirmed int
	for _, r := range results {
		total++
		switch r.outcome {
		case outcomeOK:
			switch {
			case r.sent.Add(r.latency).Before(sigterm):
				okBefore++
			case r.sent.Before(sigterm):
				okInFlight++
			default:
				okAfter++
			}
			if hasWarning(r.res, "could not confirm") {
				unconfirmed++
			}
		case outcomeRefused:
			refused++
			if r.sent.Before(sigterm) {
				refusedBefore++
			}
		}
	}
	c := count(results)
	t.Logf("SIGTERM drain at %d req/s, %d workers, one HTTP/2 connection: %d requests; %d answered before SIGTERM, %d in flight at SIGTERM and answered, %d sent after SIGTERM and answered, %d refused (sent after the listener closed, never accepted), %d lost (failed), %d wrong decisions, %d ticks missed; exit status 0 after %s",
		drainRate, drainWorkers, total, okBefore, okInFlight, okAfter, refused, c[outcomeFailed], c[outcomeWrong], missed, exitAfter.Round(time.Millisecond))
	if unconfirmed > 0 {
		t.Logf("%d answers during the drain were decided from the cache only (the could-not-confirm warning): the server cancels in-flight requests' contexts at SIGTERM", unconfirmed)
	}
	straddlingUnconfirmed := 0
	for i := 0; i < drainStraddling; i++ {
		r := <-straddling
		if r.err == nil && hasWarning(r.res, "could not confirm") {
			straddlingUnconfirmed++
		}
		if r.err != nil {
			t.Errorf("a request whose body was still uploading at SIGTERM got no valid answer: %v", r.err)
		} else if !r.res.response.Allowed {
			t.Errorf("a request whose body was still uploading at SIGTERM was denied: %s", r.res.message())
		}
		if r.finished.Before(sigterm) {
			t.Errorf("a straddling request finished before SIGTERM; it tests nothing")
		}
	}
	t.Logf("%d requests whose bodies were half uploaded at SIGTERM (the rest %s later) were answered; %d of them decided from the cache only (could-not-confirm warning)",
		drainStraddling, drainStraddleDelay, straddlingUnconfirmed)
	if c[outcomeFailed] > 0 {
		t.Errorf("%d accepted requests got no valid answer across SIGTERM:\n  %s", c[outcomeFailed], examples(results, outcomeFailed, 10))
	}
	if c[outcomeWrong] > 0 {
		t.Errorf("%d requests got a wrong decision:\n  %s", c[outcomeWrong], examples(results, outcomeWrong, 10))
	}
	if refusedBefore > 0 {
		t.Errorf("%d requests sent before SIGTERM were refused", refusedBefore)
	}
	if refused == 0 {
		t.Errorf("no request was refused after the exit: the load did not run across the shutdown")
	}
}
