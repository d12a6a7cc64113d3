package load

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// MarkerName is the ConfigMap (in namespace default) that records a fully
// loaded state, so a kept control plane is not loaded twice.
const MarkerName = "loadbench-state"

// LoadStats reports what loading took.
type LoadStats struct {
	Objects  int64         `json:"objects"`
	Elapsed  time.Duration `json:"elapsedNs"`
	Reused   bool          `json:"reused"`
	PerSec   float64       `json:"objectsPerSecond"`
	Failures int64         `json:"failures"`
}

// Load creates the state through the API server with workers parallel
// clients; objects that already exist are left alone. progress, if set, is
// called every few seconds.
func Load(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, s benchdata.State, workers int, progress func(done int64, elapsed time.Duration)) (LoadStats, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return LoadStats{}, err
	}
	want, _ := json.Marshal(s)
	marker := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: MarkerName}, marker); err == nil && marker.Data["state"] == string(want) {
		return LoadStats{Reused: true}, nil
	}

	start := time.Now()
	var done, failures atomic.Int64
	var firstErr error
	var errOnce sync.Once
	create := func(obj client.Object) {
		err := c.Create(ctx, obj)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			failures.Add(1)
			errOnce.Do(func() { firstErr = fmt.Errorf("creating %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err) })
			return
		}
		done.Add(1)
	}
	run := func(objs <-chan client.Object) {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for o := range objs {
					create(o)
				}
			}()
		}
		wg.Wait()
	}
	stopProgress := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(5 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					progress(done.Load(), time.Since(start))
				case <-stopProgress:
					return
				}
			}
		}()
	}
	defer close(stopProgress)

	// Namespaces first: everything else lives in them.
	nsCh := make(chan client.Object, 256)
	go func() {
		defer close(nsCh)
		if s.RootDefaultSidecar {
			nsCh <- &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}
		}
		for i := range s.Namespaces {
			nsCh <- &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
				Name:   benchdata.NamespaceName(i),
				Labels: map[string]string{"istio-injection": "enabled", "loadbench": s.Name},
			}}
		}
	}()
	run(nsCh)
	if firstErr != nil {
		return LoadStats{}, firstErr
	}

	objs := make(chan client.Object, 1024)
	go func() {
		defer close(objs)
		if s.RootDefaultSidecar {
			objs <- benchdata.StateSidecar("istio-system", "default", nil)
		}
		// Namespace by namespace, so that a partial load still has
		// complete namespaces.
		for i := range s.Namespaces {
			ns := benchdata.NamespaceName(i)
			objs <- benchdata.StateSidecar(ns, "default", nil)
			for k := range s.SidecarsPerNS - 1 {
				objs <- benchdata.StateSidecar(ns, fmt.Sprintf("sc-%d", k), map[string]string{"app": benchdata.AppName(k)})
			}
			for k := range s.DeploymentsPerNS {
				app := benchdata.AppName(k % s.Apps)
				objs <- benchdata.Deployment(ns, app)
				for r := range s.ReplicaSetsPerDeployment {
					objs <- benchdata.ReplicaSet(ns, app, r)
				}
			}
			for k := range s.ServicesPerNS {
				objs <- benchdata.Service(ns, benchdata.AppName(k%s.Apps))
			}
			for k := range s.PodsPerNamespace {
				objs <- benchdata.StatePod(ns, fmt.Sprintf("%s-%d", benchdata.AppName(k%s.Apps), k), benchdata.AppName(k%s.Apps))
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	run(objs)
	if firstErr != nil {
		return LoadStats{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return LoadStats{}, err
	}
	stats := LoadStats{Objects: done.Load(), Elapsed: time.Since(start), Failures: failures.Load()}
	stats.PerSec = float64(stats.Objects) / stats.Elapsed.Seconds()
	marker = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: MarkerName},
		Data:       map[string]string{"state": string(want)},
	}
	if err := c.Create(ctx, marker); err != nil && !apierrors.IsAlreadyExists(err) {
		return stats, err
	}
	return stats, nil
}

// Prime lists the state's big kinds once from the API server's watch cache
// (resourceVersion "0"), which waits for that cache to be filled from etcd.
// A control plane restarted on kept data (--state-dir) is otherwise still
// filling it when the webhook starts, and the webhook's cache sync would
// measure the API server's start-up rather than the webhook's; a cluster's
// API server has long filled it.
func Prime(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) (time.Duration, error) {
	start := time.Now()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return 0, err
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	lists := []client.ObjectList{pods, &networkingv1.SidecarList{}, &appsv1.DeploymentList{}, &appsv1.ReplicaSetList{}, &corev1.ServiceList{}, &corev1.NamespaceList{}}
	deadline := time.Now().Add(5 * time.Minute)
	for _, l := range lists {
		for {
			err := c.List(ctx, l, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}})
			if err == nil {
				break
			}
			// "storage is (re)initializing" while the cache fills.
			if time.Now().After(deadline) || ctx.Err() != nil {
				return 0, fmt.Errorf("listing %T: %w", l, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return time.Since(start), nil
}

// SidecarLister is a load target that lists one namespace's Sidecars
// straight from the API server per request, rotating over the state's
// namespaces: the webhook's confirming read on its own, without the
// webhook.
func SidecarLister(cfg *rest.Config, scheme *runtime.Scheme, s benchdata.State) (Target, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1 // no client-side limit: the API server is what is measured
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return TargetFunc(func(ctx context.Context, seq int64) error {
		// Metadata only, as the webhook's confirming read.
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(networkingv1.SchemeGroupVersion.WithKind("SidecarList"))
		if err := c.List(ctx, list, client.InNamespace(benchdata.NamespaceName(int(seq%int64(s.Namespaces))))); err != nil {
			return err
		}
		if len(list.Items) != s.SidecarsPerNS {
			return fmt.Errorf("listed %d Sidecars, want %d", len(list.Items), s.SidecarsPerNS)
		}
		return nil
	}), nil
}
