package benchdata

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// Memory returns the state as an in-memory view, shaped exactly as Load
// creates it in a cluster: what the Go benchmarks decide against.
func Memory(s State) *clusterview.Memory {
	m := clusterview.NewMemory("istio-system")
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if s.RootDefaultSidecar {
		m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}})
		m.PutSidecar(clusterview.SidecarRef{Namespace: "istio-system", Name: "default", Created: created})
	}
	for i := range s.Namespaces {
		ns := NamespaceName(i)
		m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{"istio-injection": "enabled", "loadbench": s.Name},
		}})
		m.PutSidecar(clusterview.SidecarRef{Namespace: ns, Name: "default", Created: created})
		for k := range s.SidecarsPerNS - 1 {
			m.PutSidecar(clusterview.SidecarRef{Namespace: ns, Name: fmt.Sprintf("sc-%d", k), Created: created.Add(time.Duration(k) * time.Second),
				Selector: map[string]string{"app": AppName(k)}})
		}
		for k := range s.DeploymentsPerNS {
			m.AddDeployment(Deployment(ns, AppName(k%s.Apps)))
		}
		for k := range s.ServicesPerNS {
			m.AddService(Service(ns, AppName(k%s.Apps)))
		}
		for k := range s.PodsPerNamespace {
			m.AddPod(StatePod(ns, fmt.Sprintf("%s-%d", AppName(k%s.Apps), k), AppName(k%s.Apps)))
		}
	}
	return m
}
