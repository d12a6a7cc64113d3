package informer

import (
	"github.com/sidecar-webhook/sidecar-webhook/clusterview"

	"reflect"
	"testing"
	"time"
	"unsafe"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// same reports whether a and b are the same map, not merely equal ones.
func same(a, b map[string]string) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func TestLabelInternerSharesEqualMaps(t *testing.T) {
	in := newLabelInterner()
	first := in.intern(map[string]string{"app": "ratings", "version": "v1"})
	second := in.intern(map[string]string{"version": "v1", "app": "ratings"})
	if !same(first, second) {
		t.Errorf("equal label maps were not shared: %p and %p", first, second)
	}
	if want := map[string]string{"app": "ratings", "version": "v1"}; !reflect.DeepEqual(second, want) {
		t.Errorf("interned map = %v, want %v", second, want)
	}
	for name, other := range map[string]map[string]string{
		"another value": {"app": "ratings", "version": "v2"},
		"a subset":      {"app": "ratings"},
		"a superset":    {"app": "ratings", "version": "v1", "tier": "db"},
		"swapped":       {"app": "v1", "version": "ratings"},
		"key=value run": {"app\x00ratings": "", "version": "v1"},
	} {
		if got := in.intern(other); same(got, first) || !reflect.DeepEqual(got, other) {
			t.Errorf("%s: intern(%v) = %v (shared with %v: %t)", name, other, got, first, same(got, first))
		}
	}
	if got := in.intern(nil); got != nil {
		t.Errorf("intern(nil) = %v, want nil", got)
	}
	if got := in.intern(map[string]string{}); got == nil || len(got) != 0 {
		t.Errorf("intern(empty) = %#v, want the empty map", got)
	}
}

// TestLabelInternerForgetsUnusedSets: a set no object asked for during two
// rotation periods leaves the table, one asked for stays.
func TestLabelInternerForgetsUnusedSets(t *testing.T) {
	in := newLabelInterner()
	clock := time.Unix(0, 0)
	in.now = func() time.Time { return clock }
	kept := in.intern(map[string]string{"app": "kept"})
	dropped := in.intern(map[string]string{"app": "dropped"})
	for range 3 {
		clock = clock.Add(in.period)
		if got := in.intern(map[string]string{"app": "kept"}); !same(got, kept) {
			t.Fatalf("a label set in use was forgotten")
		}
	}
	if got := in.intern(map[string]string{"app": "dropped"}); same(got, dropped) {
		t.Errorf("a label set unused for three periods is still in the table")
	}
	if n := len(in.current) + len(in.previous); n > 3 {
		t.Errorf("the table holds %d hash buckets after rotations, want at most 3", n)
	}
}

// TestTransformSharesPodLabels: pods of one ReplicaSet end up with one
// labels map and one namespace string, which is what keeps a cache of 100k
// pods small.
func TestTransformSharesPodLabels(t *testing.T) {
	transform := NewTransform()
	pod := func(name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Namespace:   string([]byte("prod")), // a fresh copy, as a decoder makes
			Name:        name,
			Labels:      map[string]string{"app": "ratings", "pod-template-hash": "5d8f"},
			Annotations: map[string]string{clusterview.OwnAnnotationPrefix + "sidecar": "prod/ratings", "other": "x"},
		}}
	}
	a, _ := transform(pod("ratings-1"))
	b, _ := transform(pod("ratings-2"))
	pa, pb := a.(*metav1.PartialObjectMetadata), b.(*metav1.PartialObjectMetadata)
	if !same(pa.Labels, pb.Labels) {
		t.Errorf("pods with equal labels do not share the map")
	}
	if !same(pa.Annotations, pb.Annotations) {
		t.Errorf("pods with equal own annotations do not share the map")
	}
	if want := map[string]string{clusterview.OwnAnnotationPrefix + "sidecar": "prod/ratings"}; !reflect.DeepEqual(pa.Annotations, want) {
		t.Errorf("annotations = %v, want %v", pa.Annotations, want)
	}
	if reflect.ValueOf(pa.Namespace).String() != "prod" || unsafeStringData(pa.Namespace) != unsafeStringData(pb.Namespace) {
		t.Errorf("namespace strings are not shared")
	}
}

func unsafeStringData(s string) *byte { return unsafe.StringData(s) }

// TestWorkloadStubDeepCopy: a copy keeps the template labels and shares
// nothing with the original.
func TestWorkloadStubDeepCopy(t *testing.T) {
	stub := newWorkloadStub(&metav1.ObjectMeta{Namespace: "prod", Name: "ratings", ResourceVersion: "7"}, map[string]string{"app": "ratings"}, map[string]string{"sidecar.istio.io/inject": "false"}, true)
	copied, ok := stub.DeepCopyObject().(*workloadStub)
	if !ok {
		t.Fatalf("DeepCopyObject returned %T", stub.DeepCopyObject())
	}
	if !reflect.DeepEqual(stub, copied) {
		t.Errorf("copy = %+v, want %+v", copied, stub)
	}
	copied.TemplateLabels["app"] = "changed"
	if stub.TemplateLabels["app"] != "ratings" {
		t.Errorf("the copy shares its labels with the original")
	}
}
