package informer

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// workloadStub is what the cache keeps of a workload controller
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob): its
// identity and its pod template's labels, which is all the rules read. The
// typed objects carry a whole pod spec even when emptied (a Deployment
// struct alone is 1.2 KiB); a stub is a quarter of that. The cache stores
// whatever Transform returns, and only the view reads these informers, so
// the stores of those kinds hold stubs.
type workloadStub struct {
	metav1.PartialObjectMetadata
	// TemplateLabels are the labels of the pods the controller creates.
	TemplateLabels map[string]string
	// TemplateAnnotations are the template's annotations that decide
	// whether its pods get a proxy (clusterview.KeepAnnotations).
	TemplateAnnotations map[string]string
	// HostNetwork is the template's spec.hostNetwork: such pods are never
	// injected.
	HostNetwork bool
}

// newWorkloadStub keeps obj's identity and what the proxy decision and the
// selectors read of its pod template (already interned by the caller).
func newWorkloadStub(obj metav1.Object, templateLabels, templateAnnotations map[string]string, hostNetwork bool) *workloadStub {
	return &workloadStub{
		PartialObjectMetadata: metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Namespace:       obj.GetNamespace(),
			Name:            obj.GetName(),
			ResourceVersion: obj.GetResourceVersion(),
		}},
		TemplateLabels:      templateLabels,
		TemplateAnnotations: templateAnnotations,
		HostNetwork:         hostNetwork,
	}
}

// DeepCopyObject implements runtime.Object (the embedded one would return
// a bare PartialObjectMetadata and lose the labels).
func (s *workloadStub) DeepCopyObject() runtime.Object {
	return &workloadStub{
		PartialObjectMetadata: *s.PartialObjectMetadata.DeepCopy(),
		TemplateLabels:        maps.Clone(s.TemplateLabels),
		TemplateAnnotations:   maps.Clone(s.TemplateAnnotations),
		HostNetwork:           s.HostNetwork,
	}
}
