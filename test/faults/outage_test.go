//go:build controlplane

package faults_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/internal/server"
	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

const (
	outageMaxStaleness  = 15 * time.Second
	outageCheckInterval = time.Second
	// resyncTimeout bounds how long the informers take to list and watch
	// again once the API server is back: client-go's reflectors retry with
	// a backoff that grows to 30 s during a long outage.
	resyncTimeout = 90 * time.Second
)

func namespaceWideSidecar(namespace, name string) *networkingv1.Sidecar {
	return &networkingv1.Sidecar{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       networkingapi.Sidecar{Egress: []*networkingapi.IstioEgressListener{{Hosts: []string{"./*"}}}},
	}
}

func selectorSidecar(namespace, name string, labels map[string]string) *networkingv1.Sidecar {
	s := namespaceWideSidecar(namespace, name)
	s.Spec.WorkloadSelector = &networkingapi.WorkloadSelector{Labels: labels}
	return s
}

// TestAPIServerOutage stops the API server under a running webhook: the
// webhook keeps deciding from its cache, reports the outage in readiness
// and metrics only after --max-staleness, and catches up when the API server
// returns.
func TestAPIServerOutage(t *testing.T) {
	p := startWebhook(t, "--max-staleness="+outageMaxStaleness.String(), "--staleness-check-interval="+outageCheckInterval.String())
	x := createNamespace(t, "outage-x")
	y := createNamespace(t, "outage-y")
	create(t, namespaceWideSidecar(x, "default"))
	took := cachedSidecarFor(t, p, x, nil, x+"/default", 30*time.Second)
	t.Logf("the cache showed %s/default %s after it was created", x, took.Round(10*time.Millisecond))
	if r := p.sidecar(x, "second", namespaceWideSpec()); r.response.Allowed {
		t.Fatalf("with the API server up, a second namespace-wide Sidecar in %s was allowed", x)
	}
	if v := p.metric(server.MetricCacheStale); v != 0 {
		t.Fatalf("%s = %v with the API server up", server.MetricCacheStale, v)
	}
	lastContact := p.metric(server.MetricAPIServerLastContact)
	if age := time.Since(time.Unix(int64(lastContact), 0)); lastContact == 0 || age > 5*time.Second {
		t.Fatalf("%s = %v (%s ago), want a contact within the last seconds", server.MetricAPIServerLastContact, lastContact, age)
	}

	// The outage. kube-apiserver closes its port at once on SIGTERM but,
	// with watches open (the webhook's informers), takes until its own
	// shutdown timeout to exit, longer than the local control plane waits
	// before killing it. Either way it is unreachable from the first
	// moment, so the clock starts now and the stop finishes in the
	// background.
	stopped := time.Now()
	stopDone := make(chan error, 1)
	go func() { stopDone <- env.cluster.StopAPIServer() }()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			waitAPIServerStopped(t, stopDone)
			if err := env.cluster.StartAPIServer(); err != nil {
				t.Errorf("restarting the API server: %v", err)
			}
		}
	})
	testenv.Eventually(t, 10*time.Second, "the API server refuses connections", func(context.Context) error {
		if err := apiServerReachable(); !isConnRefused(err) {
			return fmt.Errorf("still reachable: %v", err)
		}
		return nil
	})
	t.Logf("API server stopped (port closed %s after SIGTERM)", time.Since(stopped).Round(time.Millisecond))

	// Decisions go on, from the cache.
	conflict := p.sidecar(x, "second", namespaceWideSpec())
	if conflict.response.Allowed || !strings.Contains(conflict.message(), x+"/default") {
		t.Errorf("API server down: a second namespace-wide Sidecar in %s: allowed %v, %q; want denied naming %s/default (from the cache)",
			x, conflict.response.Allowed, conflict.message(), x)
	}
	t.Logf("API server down: conflicting Sidecar denied from the cache in %s", conflict.latency.Round(time.Millisecond))
	valid := p.sidecar(y, "reviews", selectorSpec(map[string]string{"app": "reviews"}))
	if !valid.response.Allowed {
		t.Errorf("API server down: a valid Sidecar in %s was denied: %s", y, valid.message())
	}
	if !hasWarning(valid, "could not confirm the namespace's Sidecars with the API server") {
		t.Errorf("API server down: the valid Sidecar was allowed without the could-not-confirm warning; warnings: %q", valid.response.Warnings)
	}
	t.Logf("API server down: valid Sidecar allowed with the could-not-confirm warning in %s", valid.latency.Round(time.Millisecond))
	for _, r := range []reviewResult{conflict, valid} {
		if r.latency > reviewTimeout/2 {
			t.Errorf("API server down: an answer took %s, too close to the API server's webhook timeout %s", r.latency, reviewTimeout)
		}
	}

	// Readiness holds for --max-staleness, then fails on apiserver-contact
	// alone; the cache stays synced.
	var notReady time.Time
	var body string
	for notReady.IsZero() {
		code, b, err := p.readyz("")
		elapsed := time.Since(stopped)
		switch {
		case err != nil:
			t.Fatalf("/readyz %s into the outage: %v", elapsed, err)
		case code == http.StatusOK && elapsed > outageMaxStaleness+10*time.Second:
			t.Fatalf("/readyz still 200 %s into the outage (max staleness %s)", elapsed.Round(time.Millisecond), outageMaxStaleness)
		case code != http.StatusOK && elapsed < outageMaxStaleness-2*outageCheckInterval:
			t.Fatalf("/readyz %d only %s into the outage, before the max staleness %s:\n%s", code, elapsed.Round(time.Millisecond), outageMaxStaleness, b)
		case code != http.StatusOK:
			notReady, body = time.Now(), b
		}
		if v := p.metric(server.MetricCacheStale); notReady.IsZero() && v != 0 && time.Since(stopped) < outageMaxStaleness-2*outageCheckInterval {
			t.Fatalf("%s = %v only %s into the outage", server.MetricCacheStale, v, time.Since(stopped).Round(time.Millisecond))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("API server down: /readyz turned non-200 %s after the API server stopped (max staleness %s, check interval %s)",
		notReady.Sub(stopped).Round(time.Millisecond), outageMaxStaleness, outageCheckInterval)
	if !strings.Contains(body, "[-]"+server.ReadyzAPIServerContact) || !strings.Contains(body, "[+]caches") || !strings.Contains(body, "[+]webhook") {
		t.Errorf("/readyz body does not show apiserver-contact failing alone:\n%s", body)
	}
	if code, b, _ := p.readyz(server.ReadyzAPIServerContact); code == http.StatusOK {
		t.Errorf("/readyz/%s answers 200 during the outage: %s", server.ReadyzAPIServerContact, b)
	}
	if v := p.metric(server.MetricCacheStale); v != 1 {
		t.Errorf("%s = %v after the max staleness, want 1", server.MetricCacheStale, v)
	}
	if v := p.metric(server.MetricAPIServerLastContact); v > float64(stopped.Unix()+1) {
		t.Errorf("%s = %v moved past the outage's start %v", server.MetricAPIServerLastContact, v, stopped.Unix())
	}
	if v := p.metric(server.MetricAPIServerProbeErrors); v < 5 {
		t.Errorf("%s = %v after %s of outage with a %s interval", server.MetricAPIServerProbeErrors, v, time.Since(stopped).Round(time.Second), outageCheckInterval)
	}
	// Stale, not ready, but still answering from the cache.
	if r := p.sidecar(x, "third", namespaceWideSpec()); r.response.Allowed {
		t.Errorf("stale: a second namespace-wide Sidecar in %s was allowed", x)
	}
	if r := p.pod(x, "still-annotated", nil); !strings.Contains(string(r.response.Patch), x+"/default") {
		t.Errorf("stale: a pod in %s is no longer annotated with %s/default: %s", x, x, r.response.Patch)
	}
	// The staleness is logged at the first probe past it.
	testenv.Eventually(t, 5*outageCheckInterval, "the log reports the lost contact and the staleness", func(context.Context) error {
		logs := tail(p.logPath, 500)
		if !strings.Contains(logs, "cannot reach the API server") || !strings.Contains(logs, "longer than the maximum staleness") {
			return fmt.Errorf("not in the log yet")
		}
		return nil
	})

	// The API server returns.
	waitAPIServerStopped(t, stopDone)
	if err := env.cluster.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()
	t.Logf("API server back after an outage of %s", back.Sub(stopped).Round(100*time.Millisecond))
	readyAgain := testenv.Eventually(t, 30*time.Second, "/readyz 200 again", func(context.Context) error {
		code, b, err := p.readyz("")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %v %s", code, err, b)
		}
		if v := p.metric(server.MetricCacheStale); v != 0 {
			return fmt.Errorf("%s = %v", server.MetricCacheStale, v)
		}
		return nil
	})
	t.Logf("API server back: /readyz 200 and %s 0 after %s", server.MetricCacheStale, readyAgain.Round(10*time.Millisecond))

	// The informers list and watch again: a Sidecar created now reaches the
	// cache (the pod annotator decides from the cache alone).
	w := createNamespace(t, "outage-w")
	create(t, namespaceWideSidecar(w, "default"))
	resynced := cachedSidecarFor(t, p, w, nil, w+"/default", resyncTimeout)
	t.Logf("API server back: a Sidecar created after the restart reached the cache %s after it was created (%s after the restart)",
		resynced.Round(10*time.Millisecond), time.Since(back).Round(100*time.Millisecond))
	if r := p.sidecar(w, "second", namespaceWideSpec()); r.response.Allowed || !strings.Contains(r.message(), w+"/default") {
		t.Errorf("after the restart: a second namespace-wide Sidecar in %s: allowed %v, %q", w, r.response.Allowed, r.message())
	}
	// And the API server confirms again: no more could-not-confirm warnings.
	if r := p.sidecar(y, "ratings", selectorSpec(map[string]string{"app": "ratings"})); !r.response.Allowed || hasWarning(r, "could not confirm") {
		t.Errorf("after the restart: a valid Sidecar: allowed %v, warnings %q", r.response.Allowed, r.response.Warnings)
	}
	if logs := tail(p.logPath, 500); !strings.Contains(logs, "contact with the API server restored") {
		t.Errorf("the webhook's log does not report the restored contact")
	}
}

// waitAPIServerStopped waits for StopAPIServer to return. A stop that timed
// out ended with SIGKILL, which for these tests is as good as a clean stop.
func waitAPIServerStopped(t *testing.T, stopDone <-chan error) {
	t.Helper()
	if err := <-stopDone; err != nil {
		if !strings.Contains(err.Error(), "timeout waiting for process kube-apiserver to stop") {
			t.Fatalf("stopping the API server: %v", err)
		}
		t.Logf("kube-apiserver did not exit within the local control plane's stop timeout (it waits for open watches) and was killed")
	}
}

// apiServerReachable makes one TLS connection to the API server's port.
func apiServerReachable() error {
	u, err := url.Parse(env.cluster.Config.Host)
	if err != nil {
		return err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}
