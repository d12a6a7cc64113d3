package oracle

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	networking "istio.io/api/networking/v1alpha3"
)

// benchState is a small cluster: a root default, a namespace-wide and a
// selector Sidecar in each of a few namespaces, and a service per namespace.
func benchState(namespaces int) State {
	st := State{Sidecars: []SidecarObject{sidecar("istio-system", "mesh-default", 0, nil, false)}}
	for i := 0; i < namespaces; i++ {
		n := fmt.Sprintf("ns%d", i)
		st.Sidecars = append(st.Sidecars,
			sidecar(n, "ns-wide", time.Minute, nil, false),
			sidecar(n, "selected", 2*time.Minute, map[string]string{"app": "a"}, true),
			SidecarObject{Namespace: n, Name: "port", Created: t0.Add(3 * time.Minute), Spec: &networking.Sidecar{
				WorkloadSelector: &networking.WorkloadSelector{Labels: map[string]string{"app": "b"}},
				Egress: []*networking.IstioEgressListener{
					{Port: &networking.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "http"}, CaptureMode: networking.CaptureMode_NONE, Hosts: []string{"*/*"}},
					{Hosts: []string{"*/*"}},
				},
			}},
		)
		st.Services = append(st.Services, Service{Namespace: n, Name: "svc", ClusterIP: fmt.Sprintf("10.96.0.%d", i+10),
			Ports: []ServicePort{{Name: "http", Port: 9080, Protocol: "HTTP"}, {Name: "tcp", Port: 5432, Protocol: "TCP"}}})
	}
	return st
}

func BenchmarkRenderCached(b *testing.B) {
	if _, err := Render(Install{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Render(Install{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderUncached(b *testing.B) {
	i := 0
	for b.Loop() {
		i++
		if _, err := Render(Install{Namespace: fmt.Sprintf("bench-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWebhooksCalled(b *testing.B) {
	mwcs, err := InjectorWebhooks(Install{}, Install{Revision: "canary", RevisionTags: []string{"prod"}})
	if err != nil {
		b.Fatal(err)
	}
	n := ns("app", map[string]string{"istio.io/rev": "prod"})
	p := pod()
	for b.Loop() {
		if _, err := WebhooksCalled(mwcs, n, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInjectorDecide(b *testing.B) {
	inj, err := InjectorFor(Install{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    podOpt
	}{
		{"injected", func(*corev1.Pod) {}},
		{"skipped", podAnnotations(map[string]string{"sidecar.istio.io/inject": "false"})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := pod(tc.p)
			for b.Loop() {
				if _, err := inj.Decide("app", p, ""); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMeshEvaluate(b *testing.B) {
	m, err := NewMesh(Install{}, Install{Revision: "canary"})
	if err != nil {
		b.Fatal(err)
	}
	n := ns("app", map[string]string{"istio-injection": "enabled"})
	p := pod()
	for b.Loop() {
		if _, err := m.Evaluate(n, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewIstiod(b *testing.B) {
	for _, size := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("namespaces=%d", size), func(b *testing.B) {
			st := benchState(size)
			for b.Loop() {
				o, err := NewIstiod(st)
				if err != nil {
					b.Fatal(err)
				}
				o.Close()
			}
		})
	}
}

func BenchmarkIstiodSidecarFor(b *testing.B) {
	o, err := NewIstiod(benchState(10))
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	i := 0
	for b.Loop() {
		i++
		if _, err := o.SidecarFor(Proxy{Namespace: fmt.Sprintf("ns%d", i%10), Labels: map[string]string{"app": "a"}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIstiodListenersFor(b *testing.B) {
	o, err := NewIstiod(benchState(10))
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	for _, mode := range []string{"REDIRECT", "NONE"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				if _, err := o.ListenersFor(Proxy{Namespace: "ns1", Labels: map[string]string{"app": "b"}, InterceptionMode: mode}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSidecarForOneShot(b *testing.B) {
	st := benchState(3)
	for b.Loop() {
		if _, err := SidecarFor(st, Proxy{Namespace: "ns1", Labels: map[string]string{"app": "a"}}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateSidecar(b *testing.B) {
	spec := benchState(1).Sidecars[3].Spec
	for b.Loop() {
		ValidateSidecar("ns0", "port", spec)
	}
}

func BenchmarkLoadIstioSidecarCases(b *testing.B) {
	for b.Loop() {
		if _, _, err := LoadIstioSidecarCases(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIstiodReleases builds and closes istiod many times and checks that
// goroutines do not pile up, so thousands of states can be checked in one
// test process.
func TestIstiodReleases(t *testing.T) {
	st := benchState(2)
	build := func() {
		o, err := NewIstiod(st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.SidecarFor(Proxy{Namespace: "ns0"}); err != nil {
			t.Fatal(err)
		}
		o.Close()
	}
	for i := 0; i < 5; i++ {
		build()
	}
	time.Sleep(200 * time.Millisecond)
	before := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heapBefore := ms.HeapAlloc
	const n = 200
	start := time.Now()
	for i := 0; i < n; i++ {
		build()
	}
	elapsed := time.Since(start)
	deadline := time.Now().Add(5 * time.Second)
	after := runtime.NumGoroutine()
	for after > before+20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d builds in %v (%v each); goroutines %d -> %d; heap %d KiB -> %d KiB",
		n, elapsed, elapsed/n, before, after, heapBefore/1024, ms.HeapAlloc/1024)
	if after > before+20 {
		t.Errorf("goroutines grew from %d to %d over %d builds", before, after, n)
	}
	if ms.HeapAlloc > heapBefore+32<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB over %d builds", heapBefore/1024, ms.HeapAlloc/1024, n)
	}
}

// BenchmarkSidecarForOneShotParallel measures throughput when states are
// built concurrently: building istiod mostly waits for its fake
// controllers to sync, so parallel builds overlap.
func BenchmarkSidecarForOneShotParallel(b *testing.B) {
	st := benchState(3)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := SidecarFor(st, Proxy{Namespace: "ns1", Labels: map[string]string{"app": "a"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
