// Package benchdata is what the benchmarks measure with: the synthetic
// cluster states (small and large), the same state as an in-memory view for
// the Go benchmarks, and the AdmissionReviews they send. The load benchmark
// (hack/loadbench, a module of its own) creates the same objects in a real
// API server and sends the same reviews over HTTPS.
package benchdata

import (
	"fmt"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// Deployment is app's Deployment of the synthetic state.
func Deployment(namespace, app string) *appsv1.Deployment {
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

// ReplicaSet is revision r of app's Deployment as the Deployment
// controller makes it: owned by the Deployment, older revisions scaled to
// zero. Nothing reconciles it (no controller manager runs), so the owner's
// UID need not be real.
func ReplicaSet(namespace, app string, r int) *appsv1.ReplicaSet {
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

// Service is app's (headless) Service of the synthetic state.
func Service(namespace, app string) *corev1.Service {
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
