package informer

import (
	"github.com/sidecar-webhook/sidecar-webhook/clusterview"

	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
)

// trMeta is full object metadata: labels, annotations (ours and others),
// owner references and managed fields.
func trMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: "prod",
		Name:      name,
		Labels:    map[string]string{"meta": "label"},
		Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": "{}",
			clusterview.OwnAnnotationPrefix + "hash":           "abc",
		},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Owner", Name: "owner", UID: "u1"}},
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		ResourceVersion: "42",
		UID:             types.UID("uid-" + name),
	}
}

// trStripped is what trMeta becomes for a workload controller, Service or
// Namespace: annotations and managed fields gone, everything else kept.
func trStripped(name string) metav1.ObjectMeta {
	m := trMeta(name)
	m.Annotations = nil
	m.ManagedFields = nil
	return m
}

// trFullTemplate is a pod template with everything a real one carries.
func trFullTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"app": "ratings", "version": "v1"},
			Annotations: map[string]string{"sidecar.istio.io/inject": "true", "example.com/checksum": "abc"},
		},
		Spec: corev1.PodSpec{
			Containers:         []corev1.Container{{Name: "c", Image: "ratings:1", Env: []corev1.EnvVar{{Name: "A", Value: "B"}}}},
			ServiceAccountName: "ratings",
			HostNetwork:        true,
		},
	}
}

// trLabelsOnly is what trFullTemplate becomes.
func trLabelsOnly() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "ratings", "version": "v1"}}}
}

// trStub is what a workload controller with trFullTemplate becomes: its
// identity, the template's labels, the annotations that decide injection,
// and hostNetwork.
func trStub(name string) *workloadStub {
	return &workloadStub{
		PartialObjectMetadata: metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name, ResourceVersion: "42"}},
		TemplateLabels:        trLabelsOnly().Labels,
		TemplateAnnotations:   map[string]string{"sidecar.istio.io/inject": "true"},
		HostNetwork:           true,
	}
}

func trSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ratings"}}
}

func TestTransform(t *testing.T) {
	podMeta := func() *metav1.PartialObjectMetadata {
		p := PodMetadata()
		p.ObjectMeta = trMeta("ratings-abc")
		p.Annotations["other.io/x"] = "y"
		p.Annotations[clusterview.OwnAnnotationPrefix+"other"] = "z"
		// Looks like ours but is not under the prefix.
		p.Annotations["sidecar-webhook.io.evil/x"] = "no"
		return p
	}
	podMetaWant := func() *metav1.PartialObjectMetadata {
		p := PodMetadata()
		in := trMeta("ratings-abc")
		p.ObjectMeta = metav1.ObjectMeta{
			Namespace: in.Namespace, Name: in.Name, Labels: in.Labels, ResourceVersion: in.ResourceVersion,
			Annotations: map[string]string{clusterview.OwnAnnotationPrefix + "hash": "abc", clusterview.OwnAnnotationPrefix + "other": "z"},
		}
		return p
	}
	podNoOwn := func() *metav1.PartialObjectMetadata {
		p := PodMetadata()
		p.ObjectMeta = metav1.ObjectMeta{Namespace: "prod", Name: "p", Annotations: map[string]string{"a": "b"}}
		return p
	}
	podNoOwnWant := func() *metav1.PartialObjectMetadata {
		p := PodMetadata()
		p.ObjectMeta = metav1.ObjectMeta{Namespace: "prod", Name: "p"}
		return p
	}

	sidecarIn := &networkingv1.Sidecar{
		ObjectMeta: trMeta("s"),
		Spec: networkingv1alpha3.Sidecar{
			WorkloadSelector: &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "ratings"}},
			Egress:           []*networkingv1alpha3.IstioEgressListener{{Hosts: []string{"./*"}}},
			OutboundTrafficPolicy: &networkingv1alpha3.OutboundTrafficPolicy{
				Mode: networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY,
			},
		},
	}
	sidecarWant := &networkingv1.Sidecar{
		ObjectMeta: trStripped("s"),
		Spec: networkingv1alpha3.Sidecar{
			WorkloadSelector: &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "ratings"}},
		},
	}
	namespaceWideIn := &networkingv1.Sidecar{
		ObjectMeta: trMeta("default"),
		Spec: networkingv1alpha3.Sidecar{
			Egress: []*networkingv1alpha3.IstioEgressListener{{Hosts: []string{"./*"}}},
		},
	}
	namespaceWideWant := &networkingv1.Sidecar{ObjectMeta: trStripped("default")}

	cmIn := &corev1.ConfigMap{ObjectMeta: trMeta("istio"), Data: map[string]string{"mesh": "rootNamespace: x\n"}}
	cmWant := cmIn.DeepCopy()
	cmWant.ManagedFields = nil

	cases := []struct {
		name string
		in   any
		want any
	}{
		{name: "pod metadata keeps only own annotations", in: podMeta(), want: podMetaWant()},
		{name: "pod metadata without own annotations", in: podNoOwn(), want: podNoOwnWant()},
		{
			name: "Deployment",
			in: &appsv1.Deployment{
				ObjectMeta: trMeta("ratings"),
				Spec:       appsv1.DeploymentSpec{Replicas: trPtr[int32](3), Selector: trSelector(), Template: trFullTemplate()},
				Status:     appsv1.DeploymentStatus{Replicas: 3, ReadyReplicas: 2},
			},
			want: trStub("ratings"),
		},
		{
			name: "StatefulSet",
			in: &appsv1.StatefulSet{
				ObjectMeta: trMeta("db"),
				Spec:       appsv1.StatefulSetSpec{Replicas: trPtr[int32](1), Selector: trSelector(), ServiceName: "db", Template: trFullTemplate()},
				Status:     appsv1.StatefulSetStatus{Replicas: 1},
			},
			want: trStub("db"),
		},
		{
			name: "DaemonSet",
			in: &appsv1.DaemonSet{
				ObjectMeta: trMeta("agent"),
				Spec:       appsv1.DaemonSetSpec{Selector: trSelector(), Template: trFullTemplate()},
				Status:     appsv1.DaemonSetStatus{NumberReady: 5},
			},
			want: trStub("agent"),
		},
		{
			name: "ReplicaSet",
			in: &appsv1.ReplicaSet{
				ObjectMeta: trMeta("ratings-7c9f"),
				Spec:       appsv1.ReplicaSetSpec{Replicas: trPtr[int32](2), Selector: trSelector(), Template: trFullTemplate()},
				Status:     appsv1.ReplicaSetStatus{Replicas: 2},
			},
			want: trStub("ratings-7c9f"),
		},
		{
			name: "Job",
			in: &batchv1.Job{
				ObjectMeta: trMeta("migrate"),
				Spec:       batchv1.JobSpec{Parallelism: trPtr[int32](2), BackoffLimit: trPtr[int32](4), Template: trFullTemplate()},
				Status:     batchv1.JobStatus{Succeeded: 1},
			},
			want: trStub("migrate"),
		},
		{
			name: "CronJob keeps the job template's pod template labels",
			in: &batchv1.CronJob{
				ObjectMeta: trMeta("nightly"),
				Spec: batchv1.CronJobSpec{
					Schedule: "0 3 * * *",
					Suspend:  trPtr(true),
					JobTemplate: batchv1.JobTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"job": "meta"}},
						Spec:       batchv1.JobSpec{BackoffLimit: trPtr[int32](1), Template: trFullTemplate()},
					},
				},
				Status: batchv1.CronJobStatus{LastScheduleTime: &metav1.Time{}},
			},
			want: trStub("nightly"),
		},
		{
			name: "Service metadata keeps only its identity",
			in: func() *metav1.PartialObjectMetadata {
				m := &metav1.PartialObjectMetadata{ObjectMeta: trMeta("ratings")}
				m.SetGroupVersionKind(ServiceGVK)
				return m
			}(),
			want: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "ratings", ResourceVersion: "42"}},
		},
		{
			name: "Namespace loses spec and status",
			in: &corev1.Namespace{
				ObjectMeta: trMeta("prod"),
				Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
				Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
			want: &corev1.Namespace{ObjectMeta: trStripped("prod")},
		},
		{name: "Sidecar keeps only its workloadSelector", in: sidecarIn, want: sidecarWant},
		{name: "namespace-wide Sidecar keeps no spec", in: namespaceWideIn, want: namespaceWideWant},
		{name: "ConfigMap only loses managed fields", in: cmIn, want: cmWant},
		{name: "tombstone passes through untouched", in: tombstone(), want: tombstone()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Transform := NewTransform()
			got, err := Transform(tc.in)
			if err != nil {
				t.Fatalf("Transform: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, trCmpOpts...); diff != "" {
				t.Errorf("Transform (-want +got):\n%s", diff)
			}
			if m, ok := got.(metav1.Object); ok && m.GetManagedFields() != nil {
				t.Errorf("managedFields = %v, want nil", m.GetManagedFields())
			}
			// Applying it twice changes nothing (client-go may transform an
			// object more than once).
			again, err := Transform(got)
			if err != nil {
				t.Fatalf("second Transform: %v", err)
			}
			if diff := cmp.Diff(tc.want, again, trCmpOpts...); diff != "" {
				t.Errorf("second Transform (-want +got):\n%s", diff)
			}
		})
	}
}

// trCmpOpts compares protobuf-backed Istio specs by value.
var trCmpOpts = []cmp.Option{protocmp.Transform()}

// TestTransformStubsOwnedReplicaSetsAndJobs: a Deployment's ReplicaSets
// and a CronJob's Jobs are stored as stubs (their owner stands for them);
// bare ones keep their template labels.
func TestTransformStubsOwnedReplicaSetsAndJobs(t *testing.T) {
	transform := NewTransform()
	deploymentOwner := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "ratings", UID: "d1", Controller: trPtr(true)}}
	cronJobOwner := []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly", UID: "c1"}}
	stub := func(name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name, ResourceVersion: "42"}}
	}
	withOwner := func(name string, owners []metav1.OwnerReference) metav1.ObjectMeta {
		m := trMeta(name)
		m.OwnerReferences = owners
		return m
	}
	cases := []struct {
		name    string
		in, out any
	}{
		{
			name: "Deployment's ReplicaSet",
			in:   &appsv1.ReplicaSet{ObjectMeta: withOwner("ratings-5d8f", deploymentOwner), Spec: appsv1.ReplicaSetSpec{Template: trFullTemplate()}},
			out:  stub("ratings-5d8f"),
		},
		{
			name: "CronJob's Job",
			in:   &batchv1.Job{ObjectMeta: withOwner("nightly-1", cronJobOwner), Spec: batchv1.JobSpec{Template: trFullTemplate()}},
			out:  stub("nightly-1"),
		},
		{
			name: "bare ReplicaSet",
			in:   &appsv1.ReplicaSet{ObjectMeta: trMeta("bare"), Spec: appsv1.ReplicaSetSpec{Template: trFullTemplate()}},
			out:  trStub("bare"),
		},
		{
			name: "bare Job",
			in:   &batchv1.Job{ObjectMeta: trMeta("migrate"), Spec: batchv1.JobSpec{Template: trFullTemplate()}},
			out:  trStub("migrate"),
		},
	}
	for _, tc := range cases {
		got, err := transform(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.out, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestTransformUnknownTypeUnchanged covers an object type Transform has no
// case for: only managed fields go.
func TestTransformUnknownTypeUnchanged(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: trMeta("typed"),
		Spec:       corev1.PodSpec{NodeName: "n1"},
	}
	want := pod.DeepCopy()
	want.ManagedFields = nil
	got, err := NewTransform()(pod)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("typed Pod (-want +got):\n%s", diff)
	}
}

// tombstone is what client-go may hand a transform for an object deleted
// while the watch was down; its inner object was transformed on the way in.
func tombstone() toolscache.DeletedFinalStateUnknown {
	return toolscache.DeletedFinalStateUnknown{
		Key: "prod/ratings",
		Obj: &appsv1.Deployment{ObjectMeta: trMeta("ratings")},
	}
}

func trPtr[T any](v T) *T { return &v }
