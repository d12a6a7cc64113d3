package clusterview

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

func memMeta(ns, name string, labels map[string]string, owners ...string) metav1.ObjectMeta {
	meta := metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}
	for _, kind := range owners {
		meta.OwnerReferences = append(meta.OwnerReferences, metav1.OwnerReference{Kind: kind, Name: "owner"})
	}
	return meta
}

func memTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
}

func TestMemoryWorkloads(t *testing.T) {
	m := NewMemory("istio-system")
	app := map[string]string{"app": "ratings"}
	m.AddPod(&corev1.Pod{ObjectMeta: memMeta("prod", "ratings-7c9f-b", app, "ReplicaSet")})
	m.AddPod(&corev1.Pod{ObjectMeta: memMeta("prod", "ratings-7c9f-a", app, "ReplicaSet")})
	m.AddDeployment(&appsv1.Deployment{
		ObjectMeta: memMeta("prod", "ratings", map[string]string{"ignored": "metadata"}),
		Spec:       appsv1.DeploymentSpec{Template: memTemplate(app)},
	})
	m.AddStatefulSet(&appsv1.StatefulSet{ObjectMeta: memMeta("prod", "db", nil), Spec: appsv1.StatefulSetSpec{Template: memTemplate(map[string]string{"app": "db"})}})
	m.AddDaemonSet(&appsv1.DaemonSet{ObjectMeta: memMeta("prod", "agent", nil), Spec: appsv1.DaemonSetSpec{Template: memTemplate(map[string]string{"app": "agent"})}})
	m.AddReplicaSet(&appsv1.ReplicaSet{ObjectMeta: memMeta("prod", "ratings-7c9f", nil, "Deployment"), Spec: appsv1.ReplicaSetSpec{Template: memTemplate(app)}})
	m.AddReplicaSet(&appsv1.ReplicaSet{ObjectMeta: memMeta("prod", "bare-rs", nil), Spec: appsv1.ReplicaSetSpec{Template: memTemplate(map[string]string{"app": "bare"})}})
	m.AddJob(&batchv1.Job{ObjectMeta: memMeta("prod", "nightly-123", nil, "CronJob"), Spec: batchv1.JobSpec{Template: memTemplate(map[string]string{"app": "nightly"})}})
	m.AddJob(&batchv1.Job{ObjectMeta: memMeta("prod", "migrate", nil), Spec: batchv1.JobSpec{Template: memTemplate(map[string]string{"app": "migrate"})}})
	m.AddCronJob(&batchv1.CronJob{ObjectMeta: memMeta("prod", "nightly", nil), Spec: batchv1.CronJobSpec{
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: memTemplate(map[string]string{"app": "nightly"})}},
	}})
	m.AddWorkloadEntry(&networkingv1.WorkloadEntry{
		ObjectMeta: memMeta("prod", "vm-1", map[string]string{"ignored": "metadata"}),
		Spec:       networkingv1alpha3.WorkloadEntry{Address: "10.0.0.1", Labels: map[string]string{"app": "legacy"}},
	})
	m.AddPod(&corev1.Pod{ObjectMeta: memMeta("staging", "other", app)})

	want := []Workload{
		{Kind: "CronJob", Namespace: "prod", Name: "nightly", Labels: map[string]string{"app": "nightly"}},
		{Kind: "DaemonSet", Namespace: "prod", Name: "agent", Labels: map[string]string{"app": "agent"}},
		{Kind: "Deployment", Namespace: "prod", Name: "ratings", Labels: app},
		{Kind: "Job", Namespace: "prod", Name: "migrate", Labels: map[string]string{"app": "migrate"}},
		{Kind: "Pod", Namespace: "prod", Name: "ratings-7c9f-a", Labels: app},
		{Kind: "Pod", Namespace: "prod", Name: "ratings-7c9f-b", Labels: app},
		{Kind: "ReplicaSet", Namespace: "prod", Name: "bare-rs", Labels: map[string]string{"app": "bare"}},
		{Kind: "StatefulSet", Namespace: "prod", Name: "db", Labels: map[string]string{"app": "db"}},
		{Kind: "WorkloadEntry", Namespace: "prod", Name: "vm-1", Labels: map[string]string{"app": "legacy"}},
	}
	if diff := cmp.Diff(want, m.Workloads("prod")); diff != "" {
		t.Errorf("Workloads(prod) (-want +got):\n%s", diff)
	}
	if got := m.Workloads("nowhere"); len(got) != 0 {
		t.Errorf("Workloads(nowhere) = %v, want none", got)
	}

	// Adding again replaces the earlier version.
	m.AddPod(&corev1.Pod{ObjectMeta: memMeta("staging", "other", map[string]string{"app": "changed"})})
	want = []Workload{{Kind: "Pod", Namespace: "staging", Name: "other", Labels: map[string]string{"app": "changed"}}}
	if diff := cmp.Diff(want, m.Workloads("staging")); diff != "" {
		t.Errorf("Workloads(staging) after replace (-want +got):\n%s", diff)
	}
}

func TestMemoryWorkloadLabelsAreCopied(t *testing.T) {
	m := NewMemory("istio-system")
	pod := &corev1.Pod{ObjectMeta: memMeta("prod", "p", map[string]string{"app": "a"})}
	m.AddPod(pod)
	pod.Labels["app"] = "mutated"
	if got := m.Workloads("prod")[0].Labels["app"]; got != "a" {
		t.Errorf("stored label = %q after caller mutation, want %q", got, "a")
	}
}

func TestMemoryNamespaces(t *testing.T) {
	m := NewMemory("istio-system")
	m.AddPod(&corev1.Pod{ObjectMeta: memMeta("implicit", "p", nil)})
	m.AddService(&corev1.Service{ObjectMeta: memMeta("implicit", "s", nil)})
	m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"team": "a"}}})
	m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bare"}})
	m.EnsureNamespace("ensured")
	m.EnsureNamespace("prod") // keeps its labels

	tests := []struct {
		ns         string
		wantExists bool
		wantLabels map[string]string
	}{
		{ns: "prod", wantExists: true, wantLabels: map[string]string{"team": "a"}},
		{ns: "bare", wantExists: true, wantLabels: map[string]string{}},
		{ns: "ensured", wantExists: true, wantLabels: map[string]string{}},
		{ns: "implicit", wantExists: false, wantLabels: nil},
		{ns: "istio-system", wantExists: false, wantLabels: nil},
	}
	for _, tt := range tests {
		t.Run(tt.ns, func(t *testing.T) {
			if got := m.NamespaceExists(tt.ns); got != tt.wantExists {
				t.Errorf("NamespaceExists(%q) = %v, want %v", tt.ns, got, tt.wantExists)
			}
			got := m.NamespaceLabels(tt.ns)
			if (got == nil) != (tt.wantLabels == nil) {
				t.Fatalf("NamespaceLabels(%q) = %#v, want %#v", tt.ns, got, tt.wantLabels)
			}
			if diff := cmp.Diff(tt.wantLabels, got); diff != "" {
				t.Errorf("NamespaceLabels(%q) (-want +got):\n%s", tt.ns, diff)
			}
		})
	}
	if got := m.RootNamespace(); got != "istio-system" {
		t.Errorf("RootNamespace() = %q", got)
	}
}

func TestMemoryHostExists(t *testing.T) {
	m := NewMemory("istio-system")
	m.AddService(&corev1.Service{ObjectMeta: memMeta("prod", "ratings", nil)})
	se := func(ns, name string, hosts []string, exportTo ...string) *networkingv1.ServiceEntry {
		return &networkingv1.ServiceEntry{
			ObjectMeta: memMeta(ns, name, nil),
			Spec:       networkingv1alpha3.ServiceEntry{Hosts: hosts, ExportTo: exportTo},
		}
	}
	m.AddServiceEntry(se("ns1", "mysql", []string{"mysql.foo.com"}))
	m.AddServiceEntry(se("ns1", "public", []string{"public.foo.com"}, "*", "."))
	m.AddServiceEntry(se("ns1", "private", []string{"private.foo.com"}, "."))
	m.AddServiceEntry(se("ns1", "shared", []string{"shared.foo.com"}, "prod", "staging"))
	m.AddServiceEntry(se("ns1", "hidden", []string{"hidden.foo.com"}, "~"))
	m.AddServiceEntry(se("ns1", "wild", []string{"*.wild.com"}))

	tests := []struct {
		name      string
		namespace string
		host      string
		from      string
		want      bool
	}{
		{name: "service FQDN", namespace: "prod", host: "ratings.prod.svc.cluster.local", from: "prod", want: true},
		{name: "service FQDN without cluster domain", namespace: "prod", host: "ratings.prod.svc", from: "web", want: true},
		{name: "service FQDN any namespace", namespace: "*", host: "ratings.prod.svc.cluster.local", from: "web", want: true},
		{name: "service short name is not matched", namespace: "prod", host: "ratings.prod", from: "prod", want: false},
		{name: "service in another namespace", namespace: "staging", host: "ratings.prod.svc.cluster.local", from: "prod", want: false},
		{name: "unknown service", namespace: "prod", host: "reviews.prod.svc.cluster.local", from: "prod", want: false},
		{name: "service entry without exportTo", namespace: "*", host: "mysql.foo.com", from: "prod", want: true},
		{name: "service entry in its namespace", namespace: "ns1", host: "mysql.foo.com", from: "prod", want: true},
		{name: "service entry wrong namespace", namespace: "prod", host: "mysql.foo.com", from: "prod", want: false},
		{name: "service entry exportTo star", namespace: "*", host: "public.foo.com", from: "prod", want: true},
		{name: "service entry exportTo dot from own namespace", namespace: "*", host: "private.foo.com", from: "ns1", want: true},
		{name: "service entry exportTo dot from elsewhere", namespace: "*", host: "private.foo.com", from: "prod", want: false},
		{name: "service entry exportTo named namespace", namespace: "*", host: "shared.foo.com", from: "staging", want: true},
		{name: "service entry exportTo other namespace", namespace: "*", host: "shared.foo.com", from: "web", want: false},
		{name: "service entry exportTo tilde", namespace: "*", host: "hidden.foo.com", from: "ns1", want: false},
		{name: "wildcard service entry provides a name", namespace: "*", host: "api.wild.com", from: "prod", want: true},
		{name: "wildcard service entry does not provide its parent", namespace: "*", host: "wild.com", from: "prod", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.HostExists(tt.namespace, tt.host, tt.from); got != tt.want {
				t.Errorf("HostExists(%q, %q, %q) = %v, want %v", tt.namespace, tt.host, tt.from, got, tt.want)
			}
		})
	}
}

func TestMemoryPeerAuthentications(t *testing.T) {
	m := NewMemory("istio-system")
	m.AddPeerAuthentication(&securityv1.PeerAuthentication{
		ObjectMeta: memMeta("prod-us1", "ratings-istio-mtls-exception", nil),
		Spec: securityv1beta1.PeerAuthentication{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "ratings"}},
			PortLevelMtls: map[uint32]*securityv1beta1.PeerAuthentication_MutualTLS{
				9080: {Mode: securityv1beta1.PeerAuthentication_MutualTLS_DISABLE},
				9443: {Mode: securityv1beta1.PeerAuthentication_MutualTLS_DISABLE},
			},
		},
	})
	m.AddPeerAuthentication(&securityv1.PeerAuthentication{
		ObjectMeta: memMeta("prod-us1", "default", nil),
		Spec: securityv1beta1.PeerAuthentication{
			Mtls: &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_STRICT},
		},
	})
	m.AddPeerAuthentication(&securityv1.PeerAuthentication{
		ObjectMeta: memMeta("prod-us1", "empty-selector", nil),
		Spec: securityv1beta1.PeerAuthentication{
			Selector: &typev1beta1.WorkloadSelector{},
			Mtls:     &securityv1beta1.PeerAuthentication_MutualTLS{Mode: securityv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE},
		},
	})
	want := []PeerAuthentication{
		{Namespace: "prod-us1", Name: "default", Mode: "STRICT"},
		{Namespace: "prod-us1", Name: "empty-selector", Mode: "PERMISSIVE"},
		{
			Namespace: "prod-us1", Name: "ratings-istio-mtls-exception",
			Selector:  map[string]string{"app": "ratings"},
			Mode:      "UNSET",
			PortModes: map[uint32]string{9080: "DISABLE", 9443: "DISABLE"},
		},
	}
	if diff := cmp.Diff(want, m.PeerAuthentications("prod-us1")); diff != "" {
		t.Errorf("PeerAuthentications (-want +got):\n%s", diff)
	}
}

func TestMemorySidecars(t *testing.T) {
	m := NewMemory("istio-system")
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	m.PutSidecar(SidecarRef{Namespace: "prod", Name: "ratings", Selector: map[string]string{"app": "ratings"}})
	m.PutSidecar(SidecarRef{Namespace: "prod", Name: "default"})
	m.PutSidecar(SidecarRef{Namespace: "prod", Name: "old", Created: created})
	m.PutSidecar(SidecarRef{Namespace: "staging", Name: "default"})
	m.PutSidecar(SidecarRef{Namespace: "prod", Name: "ratings", Selector: map[string]string{"app": "ratings", "v": "2"}})
	m.DeleteSidecar("prod", "old")
	m.DeleteSidecar("prod", "absent")
	m.DeleteSidecar("absent", "absent")

	want := []SidecarRef{
		{Namespace: "prod", Name: "default"},
		{Namespace: "prod", Name: "ratings", Selector: map[string]string{"app": "ratings", "v": "2"}},
	}
	if diff := cmp.Diff(want, m.Sidecars("prod")); diff != "" {
		t.Errorf("Sidecars(prod) (-want +got):\n%s", diff)
	}
}

func TestMemoryRefOf(t *testing.T) {
	created := metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	build := func(selector *networkingv1alpha3.WorkloadSelector) *sidecar.Sidecar {
		return &sidecar.Sidecar{
			ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "s", CreationTimestamp: created},
			Spec:       networkingv1alpha3.Sidecar{WorkloadSelector: selector},
		}
	}
	tests := []struct {
		name     string
		selector *networkingv1alpha3.WorkloadSelector
		want     map[string]string
		wantNil  bool
	}{
		{name: "namespace-wide", selector: nil, wantNil: true},
		{name: "empty selector stays non-nil", selector: &networkingv1alpha3.WorkloadSelector{}, want: map[string]string{}},
		{name: "labels", selector: &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "a"}}, want: map[string]string{"app": "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := RefOf(build(tt.selector))
			if ref.Namespace != "prod" || ref.Name != "s" || !ref.Created.Equal(created.Time) {
				t.Errorf("RefOf identity = %s created %v", ref.Key(), ref.Created)
			}
			if (ref.Selector == nil) != tt.wantNil {
				t.Fatalf("RefOf selector = %#v, want nil: %v", ref.Selector, tt.wantNil)
			}
			if diff := cmp.Diff(tt.want, ref.Selector); !tt.wantNil && diff != "" {
				t.Errorf("RefOf selector (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMemoryConcurrentReads(t *testing.T) {
	m := NewMemory("istio-system")
	m.EnsureNamespace("prod")
	m.PutSidecar(SidecarRef{Namespace: "prod", Name: "default"})
	m.AddPod(&corev1.Pod{ObjectMeta: memMeta("prod", "p", map[string]string{"app": "a"})})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_ = m.Sidecars("prod")
				_ = m.Workloads("prod")
				_ = m.NamespaceExists("prod")
				_ = m.HostExists("*", "x", "prod")
			}
		}()
	}
	wg.Wait()
}
