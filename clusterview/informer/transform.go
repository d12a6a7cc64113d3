package informer

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OwnAnnotationPrefix marks the pod annotations this project writes; the
// cache keeps those (the annotation reconciler compares them) and drops the
// rest.
const OwnAnnotationPrefix = "sidecar-webhook.io/"

// Transform trims every object before it is stored in the cache, keeping
// only what the rules read: labels and identity everywhere, pod template
// labels of workload controllers, and nothing of specs or statuses. This is
// what keeps a cache of 100k pods small.
func Transform(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		// Pods are by far the most numerous objects: keep identity,
		// labels, our own annotations and the resourceVersion, nothing
		// else (no owner references, UID, finalizers or timestamps).
		o.ObjectMeta = metav1.ObjectMeta{
			Namespace:         o.Namespace,
			Name:              o.Name,
			Labels:            o.Labels,
			Annotations:       ownAnnotations(o.Annotations),
			ResourceVersion:   o.ResourceVersion,
			DeletionTimestamp: o.DeletionTimestamp,
		}
	case *appsv1.Deployment:
		o.Spec = appsv1.DeploymentSpec{Template: templateLabels(o.Spec.Template)}
		o.Status = appsv1.DeploymentStatus{}
		o.Annotations = nil
	case *appsv1.StatefulSet:
		o.Spec = appsv1.StatefulSetSpec{Template: templateLabels(o.Spec.Template)}
		o.Status = appsv1.StatefulSetStatus{}
		o.Annotations = nil
	case *appsv1.DaemonSet:
		o.Spec = appsv1.DaemonSetSpec{Template: templateLabels(o.Spec.Template)}
		o.Status = appsv1.DaemonSetStatus{}
		o.Annotations = nil
	case *appsv1.ReplicaSet:
		o.Spec = appsv1.ReplicaSetSpec{Template: templateLabels(o.Spec.Template)}
		o.Status = appsv1.ReplicaSetStatus{}
		o.Annotations = nil
	case *batchv1.Job:
		o.Spec = batchv1.JobSpec{Template: templateLabels(o.Spec.Template)}
		o.Status = batchv1.JobStatus{}
		o.Annotations = nil
	case *batchv1.CronJob:
		o.Spec = batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{
			Spec: batchv1.JobSpec{Template: templateLabels(o.Spec.JobTemplate.Spec.Template)},
		}}
		o.Status = batchv1.CronJobStatus{}
		o.Annotations = nil
	case *corev1.Service:
		o.Spec = corev1.ServiceSpec{}
		o.Status = corev1.ServiceStatus{}
		o.Annotations = nil
	case *corev1.Namespace:
		o.Spec = corev1.NamespaceSpec{}
		o.Status = corev1.NamespaceStatus{}
		o.Annotations = nil
	}
	return obj, nil
}

func templateLabels(t corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: t.Labels}}
}

func ownAnnotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if strings.HasPrefix(k, OwnAnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
