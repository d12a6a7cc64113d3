package informer

import (
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
}

// newWorkloadStub keeps obj's identity and the template labels.
func newWorkloadStub(obj metav1.Object, templateLabels map[string]string) *workloadStub {
	return &workloadStub{
		PartialObjectMetadata: metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Namespace:       obj.GetNamespace(),
			Name:            obj.GetName(),
			ResourceVersion: obj.GetResourceVersion(),
		}},
		TemplateLabels: templateLabels,
	}
}

// DeepCopyObject implements runtime.Object (the embedded one would return
// a bare PartialObjectMetadata and lose the labels).
func (s *workloadStub) DeepCopyObject() runtime.Object {
	out := &workloadStub{PartialObjectMetadata: *s.PartialObjectMetadata.DeepCopy()}
	if s.TemplateLabels != nil {
		out.TemplateLabels = make(map[string]string, len(s.TemplateLabels))
		for k, v := range s.TemplateLabels {
			out.TemplateLabels[k] = v
		}
	}
	return out
}
