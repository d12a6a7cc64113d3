package validation

import (
	"slices"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateWorkloadSelector(t *testing.T) {
	cases := []struct {
		name     string
		selector *networking.WorkloadSelector
		want     []errAtT
	}{
		{name: "no selector means the whole namespace"},
		{name: "one label", selector: &networking.WorkloadSelector{Labels: map[string]string{"app": "ratings"}}},
		{name: "prefixed key and empty value", selector: &networking.WorkloadSelector{Labels: map[string]string{
			"app.kubernetes.io/name": "ratings", "canary": "",
		}}},
		{
			name:     "selector without labels",
			selector: &networking.WorkloadSelector{},
			want:     []errAtT{errAt(field.ErrorTypeRequired, "spec.workloadSelector.labels")},
		},
		{
			name:     "selector with an empty label map",
			selector: &networking.WorkloadSelector{Labels: map[string]string{}},
			want:     []errAtT{errAt(field.ErrorTypeRequired, "spec.workloadSelector.labels")},
		},
		{
			name:     "wildcard value",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"app": "*"}},
			want:     []errAtT{errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[app]")},
		},
		{
			name:     "wildcard key",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"app*": "x"}},
			want:     []errAtT{errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[app*]")},
		},
		{
			name:     "empty key",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"": "x"}},
			want:     []errAtT{errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[]")},
		},
		{
			name:     "invalid key",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"-app": "x"}},
			want:     []errAtT{errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[-app]")},
		},
		{
			name:     "invalid value",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"app": "has space"}},
			want:     []errAtT{errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[app]")},
		},
		{
			name:     "bad key and bad value are both reported",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"a/b/c": "-x-"}},
			want: []errAtT{
				errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[a/b/c]"),
				errAt(field.ErrorTypeInvalid, "spec.workloadSelector.labels[a/b/c]"),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, _ := ValidateSidecar(objectSidecar(&networking.Sidecar{
				WorkloadSelector: tc.selector,
				Egress:           []*networking.IstioEgressListener{okEgress(0)},
			}))
			checkObjectErrors(t, errs, tc.want)
		})
	}
}

func TestValidateWorkloadSelectorOrder(t *testing.T) {
	sel := &networking.WorkloadSelector{Labels: map[string]string{"z*": "1", "a*": "1", "m*": "1", "c*": "1"}}
	for range 20 {
		errs := validateWorkloadSelector(sel, field.NewPath("workloadSelector"))
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
		}
		want := []string{
			"workloadSelector.labels[a*]", "workloadSelector.labels[c*]",
			"workloadSelector.labels[m*]", "workloadSelector.labels[z*]",
		}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("errors not in sorted key order: got %v, want %v", got, want)
			}
		}
	}
}

func TestSelectorTopologyWarnings(t *testing.T) {
	path := field.NewPath("spec", "workloadSelector")
	sel := &networking.WorkloadSelector{Labels: map[string]string{"app": "a", "kubernetes.io/hostname": "node-1", "topology.istio.io/cluster": "c1"}}
	var got []string
	for _, w := range selectorTopologyWarnings(sel, path) {
		got = append(got, w.Path.String())
	}
	want := []string{"spec.workloadSelector.labels[topology.istio.io/cluster]", "spec.workloadSelector.labels[kubernetes.io/hostname]"}
	if !slices.Equal(got, want) {
		t.Errorf("warning paths %q, want %q", got, want)
	}
	if w := selectorTopologyWarnings(&networking.WorkloadSelector{Labels: map[string]string{"app": "a"}}, path); len(w) != 0 {
		t.Errorf("plain selector warned: %v", w.Strings())
	}
	if w := selectorTopologyWarnings(nil, path); len(w) != 0 {
		t.Errorf("no selector warned: %v", w.Strings())
	}
}
