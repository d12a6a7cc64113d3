package load

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// State describes synthetic cluster state. Every namespace has the same
// shape, so a small and a large state differ only in how many namespaces
// there are: per-request work, which is per namespace, should not change.
type State struct {
	Name       string `json:"name"`
	Namespaces int    `json:"namespaces"`
	// Apps is the number of app label values; pods, Deployments and
	// Services are spread over them.
	Apps             int `json:"apps"`
	PodsPerNamespace int `json:"podsPerNamespace"`
	ServicesPerNS    int `json:"servicesPerNamespace"`
	DeploymentsPerNS int `json:"deploymentsPerNamespace"`
	// ReplicaSetsPerDeployment: the current revision (its pods' owner)
	// and older ones scaled to zero, as a Deployment keeps them.
	ReplicaSetsPerDeployment int  `json:"replicaSetsPerDeployment"`
	SidecarsPerNS            int  `json:"sidecarsPerNamespace"`
	RootDefaultSidecar       bool `json:"rootDefaultSidecar"`
}

// Small and Large are the two states: 1k pods and 100 Sidecars in
// 10 namespaces; 100k pods and 10k Sidecars in 1k namespaces. Each
// namespace: 100 pods over 10 apps, 10 Deployments with two ReplicaSets
// each (the current revision and one older), 10 Services, and 10 Sidecars
// (one namespace-wide "default", nine selecting app-0..app-8).
var (
	Small = State{Name: "small", Namespaces: 10, Apps: 10, PodsPerNamespace: 100, ServicesPerNS: 10, DeploymentsPerNS: 10, ReplicaSetsPerDeployment: 2, SidecarsPerNS: 10, RootDefaultSidecar: true}
	Large = State{Name: "large", Namespaces: 1000, Apps: 10, PodsPerNamespace: 100, ServicesPerNS: 10, DeploymentsPerNS: 10, ReplicaSetsPerDeployment: 2, SidecarsPerNS: 10, RootDefaultSidecar: true}
)

// Pods is the total number of pods.
func (s State) Pods() int { return s.Namespaces * s.PodsPerNamespace }

// Sidecars is the total number of Sidecars, the root namespace's included.
func (s State) Sidecars() int {
	n := s.Namespaces * s.SidecarsPerNS
	if s.RootDefaultSidecar {
		n++
	}
	return n
}

// NamespaceName is the i-th generated namespace.
func NamespaceName(i int) string { return fmt.Sprintf("lb-%04d", i) }

// AppName is the i-th app label value.
func AppName(i int) string { return fmt.Sprintf("app-%d", i) }

// SelectedApp is an app that a workload Sidecar (sc-N) selects; pods of
// the last app are covered by the namespace-wide Sidecar only.
func (s State) SelectedApp(i int) string { return AppName(i % (s.SidecarsPerNS - 1)) }

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
func Load(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, s State, workers int, progress func(done int64, elapsed time.Duration)) (LoadStats, error) {
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
				Name:   NamespaceName(i),
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
			objs <- StateSidecar("istio-system", "default", nil)
		}
		// Namespace by namespace, so that a partial load still has
		// complete namespaces.
		for i := range s.Namespaces {
			ns := NamespaceName(i)
			objs <- StateSidecar(ns, "default", nil)
			for k := range s.SidecarsPerNS - 1 {
				objs <- StateSidecar(ns, fmt.Sprintf("sc-%d", k), map[string]string{"app": AppName(k)})
			}
			for k := range s.DeploymentsPerNS {
				app := AppName(k % s.Apps)
				objs <- deployment(ns, app)
				for r := range s.ReplicaSetsPerDeployment {
					objs <- replicaSet(ns, app, r)
				}
			}
			for k := range s.ServicesPerNS {
				objs <- service(ns, AppName(k%s.Apps))
			}
			for k := range s.PodsPerNamespace {
				objs <- StatePod(ns, fmt.Sprintf("%s-%d", AppName(k%s.Apps), k), AppName(k%s.Apps))
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

// StateSidecar is a Sidecar of the synthetic state: an egress listener
// limited to its own namespace and istio-system; selector nil means
// namespace-wide.
func StateSidecar(namespace, name string, selector map[string]string) *networkingv1.Sidecar {
	sc := &networkingv1.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	sc.Spec.Egress = []*networkingapi.IstioEgressListener{{Hosts: []string{"./*", "istio-system/*"}}}
	if selector != nil {
		sc.Spec.WorkloadSelector = &networkingapi.WorkloadSelector{Labels: selector}
	}
	return sc
}

func deployment(namespace, app string) *appsv1.Deployment {
	labels := map[string]string{"app": app}
	replicas := int32(10)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: app, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec(app),
			},
		},
	}
}

// podTemplateHash is the hash of revision r; revision 0 is the current
// one, whose pods StatePod makes.
func podTemplateHash(r int) string {
	if r == 0 {
		return "5d8f7c9b6d"
	}
	return fmt.Sprintf("7f%08d", r)
}

// replicaSet is revision r of app's Deployment as the Deployment
// controller makes it: owned by the Deployment, older revisions scaled to
// zero. Nothing reconciles it (no controller manager runs), so the owner's
// UID need not be real.
func replicaSet(namespace, app string, r int) *appsv1.ReplicaSet {
	hash := podTemplateHash(r)
	labels := map[string]string{"app": app, "pod-template-hash": hash, "version": "v1"}
	replicas := int32(10)
	if r > 0 {
		replicas = 0
	}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: app + "-" + hash, Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "Deployment", Name: app,
				UID: "00000000-0000-0000-0000-000000000001", Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true),
			}},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec(app),
			},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func service(namespace, app string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: app},
		Spec: corev1.ServiceSpec{
			// Headless: the local API server's service IP range has room
			// for a few hundred Services, not 10k.
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{"app": app},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
}

// StatePod is a pod of app as a Deployment would create it (labels, no
// node: nothing schedules it, it stays Pending).
func StatePod(namespace, name, app string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name,
			Labels: map[string]string{"app": app, "pod-template-hash": podTemplateHash(0), "version": "v1"},
		},
		Spec: podSpec(app),
	}
}

func podSpec(app string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{
		Name:  app,
		Image: "registry.example/" + app + ":1.0",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
	}}}
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
func SidecarLister(cfg *rest.Config, scheme *runtime.Scheme, s State) (Target, error) {
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
		if err := c.List(ctx, list, client.InNamespace(NamespaceName(int(seq%int64(s.Namespaces))))); err != nil {
			return err
		}
		if len(list.Items) != s.SidecarsPerNS {
			return fmt.Errorf("listed %d Sidecars, want %d", len(list.Items), s.SidecarsPerNS)
		}
		return nil
	}), nil
}
