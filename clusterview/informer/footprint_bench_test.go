package informer

import (
	"github.com/sidecar-webhook/sidecar-webhook/clusterview"

	"fmt"
	"runtime"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

// footprintPod is a pod's metadata as the API server sends it to a
// metadata informer: a ReplicaSet's pod with the usual labels,
// annotations, owner reference and managed fields.
func footprintPod(namespace string, i int) *metav1.PartialObjectMetadata {
	app := fmt.Sprintf("app-%d", i%10)
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace:       string([]byte(namespace)), // a decoder's own copy
		Name:            fmt.Sprintf("%s-5d8f7c9b6d-%05d", app, i),
		UID:             "6b1c0f5e-8a8e-4c57-9d4e-0d3f1f6f2a11",
		ResourceVersion: fmt.Sprint(100000 + i),
		Labels:          map[string]string{"app": app, "pod-template-hash": "5d8f7c9b6d", "version": "v1"},
		Annotations: map[string]string{
			"kubectl.kubernetes.io/restartedAt":         "2026-01-01T00:00:00Z",
			clusterview.OwnAnnotationPrefix + "sidecar": namespace + "/sc-" + app,
		},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-5d8f7c9b6d", UID: "u"}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate}},
	}}
}

// footprintReplicaSet is a Deployment's ReplicaSet.
func footprintReplicaSet(namespace string, i int) *appsv1.ReplicaSet {
	app := fmt.Sprintf("app-%d", i%10)
	labels := map[string]string{"app": app, "pod-template-hash": fmt.Sprintf("%010d", i)}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: string([]byte(namespace)), Name: fmt.Sprintf("%s-%010d", app, i), Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: app, UID: "d"}},
		},
		Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1.0"}}},
		}},
	}
}

// footprintDeployment is a Deployment with a typical pod template.
func footprintDeployment(namespace string, i int) *appsv1.Deployment {
	app := fmt.Sprintf("app-%05d", i)
	labels := map[string]string{"app": app}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: string([]byte(namespace)), Name: app, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1.0"}}},
			},
		},
	}
}

// BenchmarkCacheFootprint reports the heap a cached object keeps (bytes
// per object, store and namespace index included) when it is stored the
// way the server's informers store it, and without the transform for
// comparison: the figure behind the large state's resident memory.
func BenchmarkCacheFootprint(b *testing.B) {
	const objects, namespaces = 20000, 200
	kinds := []struct {
		name string
		make func(namespace string, i int) any
	}{
		{"pod", func(ns string, i int) any { return footprintPod(ns, i) }},
		{"owned-replicaset", func(ns string, i int) any { return footprintReplicaSet(ns, i) }},
		{"deployment", func(ns string, i int) any { return footprintDeployment(ns, i) }},
	}
	for _, kind := range kinds {
		for _, transformed := range []bool{true, false} {
			name := kind.name + "/transformed"
			if !transformed {
				name = kind.name + "/as-decoded"
			}
			b.Run(name, func(b *testing.B) {
				var perObject float64
				for b.Loop() {
					transform := NewTransform()
					before := heapInUse()
					store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
					for i := range objects {
						obj := kind.make(fmt.Sprintf("namespace-%03d", i%namespaces), i)
						if transformed {
							var err error
							if obj, err = transform(obj); err != nil {
								b.Fatal(err)
							}
						}
						if err := store.Add(obj); err != nil {
							b.Fatal(err)
						}
					}
					perObject = float64(heapInUse()-before) / objects
					runtime.KeepAlive(store)
				}
				b.ReportMetric(perObject, "heap-B/object")
			})
		}
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
