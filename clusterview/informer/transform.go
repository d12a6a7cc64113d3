package informer

import (
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// NewTransform returns the cache's transform: it trims every object before
// it is stored, keeping only what the rules read: labels and identity
// everywhere, pod template labels of workload controllers, and nothing of
// specs or statuses. Equal label maps are shared between objects and
// namespace names are stored once. This is what keeps a cache of 100k pods
// small. One transform serves every informer of a cache (it is safe for
// concurrent use).
func NewTransform() func(any) (any, error) {
	t := &trimmer{labels: newLabelInterner()}
	return t.transform
}

type trimmer struct {
	labels *labelInterner
}

func (t *trimmer) transform(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		m.SetNamespace(internString(m.GetNamespace()))
		m.SetLabels(t.labels.intern(m.GetLabels()))
	}
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		if o.Kind == ServiceGVK.Kind {
			// HostExists only asks whether a Service of that name exists.
			return ownedStub(o), nil
		}
		// Pods are by far the most numerous objects: keep identity,
		// labels, the annotations that decide whether they run a proxy and
		// our own (the annotation reconciler compares them), and the
		// resourceVersion, nothing else (no owner references, UID,
		// finalizers or timestamps).
		o.ObjectMeta = metav1.ObjectMeta{
			Namespace:         o.Namespace,
			Name:              o.Name,
			Labels:            o.Labels,
			Annotations:       t.labels.intern(clusterview.KeepAnnotations(o.Annotations)),
			ResourceVersion:   o.ResourceVersion,
			DeletionTimestamp: o.DeletionTimestamp,
		}
	case *appsv1.Deployment:
		return t.stub(o, o.Spec.Template), nil
	case *appsv1.StatefulSet:
		return t.stub(o, o.Spec.Template), nil
	case *appsv1.DaemonSet:
		return t.stub(o, o.Spec.Template), nil
	case *appsv1.ReplicaSet:
		// A Deployment's ReplicaSets (the current one and its revision
		// history) repeat its template and are never read: in a real
		// cluster they outnumber Deployments up to ten to one. They get a
		// bare stub, which the view skips.
		if ownedBy(o, "Deployment") {
			return ownedStub(o), nil
		}
		return t.stub(o, o.Spec.Template), nil
	case *batchv1.Job:
		// A CronJob's Jobs repeat its template, likewise.
		if ownedBy(o, "CronJob") {
			return ownedStub(o), nil
		}
		return t.stub(o, o.Spec.Template), nil
	case *batchv1.CronJob:
		return t.stub(o, o.Spec.JobTemplate.Spec.Template), nil
	case *networkingv1.Sidecar:
		// The view reads a cached Sidecar's identity, creation time,
		// resourceVersion and workloadSelector; listeners, policies and
		// annotations (kubectl's last-applied copy of the whole object)
		// are dropped. Decisions about the Sidecar under review use the
		// request's copy, never the cache's.
		selector := o.Spec.GetWorkloadSelector()
		proto.Reset(&o.Spec)
		if selector != nil {
			selector.Labels = t.labels.intern(selector.GetLabels())
			o.Spec.WorkloadSelector = selector
		}
		proto.Reset(&o.Status)
		o.Annotations = nil
	case *corev1.Namespace:
		o.Spec = corev1.NamespaceSpec{}
		o.Status = corev1.NamespaceStatus{}
		o.Annotations = nil
	}
	return obj, nil
}

// stub keeps a workload controller's identity and what is read of its pod
// template.
func (t *trimmer) stub(obj metav1.Object, template corev1.PodTemplateSpec) *workloadStub {
	return newWorkloadStub(obj, t.labels.intern(template.Labels),
		t.labels.intern(clusterview.KeepAnnotations(template.Annotations)), template.Spec.HostNetwork)
}

// ownedStub stands in the cache for an object of which only the existence
// matters (a Service) or nothing at all (a ReplicaSet or Job whose owner
// stands for it): namespace, name and resourceVersion, what the informer's
// store needs.
func ownedStub(obj metav1.Object) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace:       obj.GetNamespace(),
		Name:            obj.GetName(),
		ResourceVersion: obj.GetResourceVersion(),
	}}
}
