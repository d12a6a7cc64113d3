package validation

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidateWorkloadSelector(t *testing.T) {
	cases := []struct {
		name      string
		selector  *networking.WorkloadSelector
		want      []errAtT
		wantWarns []string
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
		// Istio admits keys and values no Kubernetes label can have: they
		// select nothing, which a warning says.
		{
			name:      "key no label can have",
			selector:  &networking.WorkloadSelector{Labels: map[string]string{"-app": "x"}},
			wantWarns: []string{"spec.workloadSelector.labels[-app]"},
		},
		{
			name:      "value no label can have",
			selector:  &networking.WorkloadSelector{Labels: map[string]string{"app": "has space"}},
			wantWarns: []string{"spec.workloadSelector.labels[app]"},
		},
		{
			name:      "a key with two slashes",
			selector:  &networking.WorkloadSelector{Labels: map[string]string{"a/b/c": "x"}},
			wantWarns: []string{"spec.workloadSelector.labels[a/b/c]"},
		},
		{
			// The CRD's schema: values of at most 63 characters.
			name:     "value too long",
			selector: &networking.WorkloadSelector{Labels: map[string]string{"app": strings.Repeat("a", 64)}},
			want:     []errAtT{errAt(field.ErrorTypeTooLong, "spec.workloadSelector.labels[app]")},
		},
		{
			name: "more than 256 labels",
			selector: &networking.WorkloadSelector{Labels: func() map[string]string {
				m := map[string]string{}
				for i := range 257 {
					m[fmt.Sprintf("k%d", i)] = "v"
				}
				return m
			}()},
			want: []errAtT{errAt(field.ErrorTypeTooMany, "spec.workloadSelector.labels")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := ValidateSidecar(objectSidecar(&networking.Sidecar{
				WorkloadSelector: tc.selector,
				Egress:           []*networking.IstioEgressListener{okEgress(0)},
			}))
			checkObjectErrors(t, errs, tc.want)
			var paths []string
			for _, w := range warns {
				paths = append(paths, w.Path.String())
			}
			if !slices.Equal(paths, tc.wantWarns) {
				t.Errorf("warning paths %q, want %q (%v)", paths, tc.wantWarns, warns.Strings())
			}
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
