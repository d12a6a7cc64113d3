package validation

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// referenceExamplesDir holds the Sidecar examples of the Istio Sidecar
// reference, one document per file. Other packages' tests reuse them.
//
// The reference's ratings example spells the ingress TLS field "inboundTls";
// the CRD (and the istio.io/api field) is "tls", so ratings.yaml uses "tls".
// Written as "inboundTls" the decoder would reject it as an unknown field.
const referenceExamplesDir = "testdata/reference"

// TestReferenceExamples checks that every example of the reference is a
// valid Sidecar: the rules must never reject what the documentation teaches.
func TestReferenceExamples(t *testing.T) {
	// Warnings expected per example; none of them should need any.
	wantWarnings := map[string][]string{
		"global-default.yaml":    nil,
		"prod-us1-default.yaml":  nil,
		"ratings.yaml":           nil,
		"no-ip-tables.yaml":      nil,
		"partial-ip-tables.yaml": nil,
	}

	files, err := filepath.Glob(filepath.Join(referenceExamplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var wantNames []string
	for n := range wantWarnings {
		wantNames = append(wantNames, n)
	}
	sort.Strings(wantNames)
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("reference example files (-want +got):\n%s", diff)
	}

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(referenceExamplesDir, name))
			if err != nil {
				t.Fatal(err)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatalf("YAML: %v", err)
			}
			s, decodeErrs := sidecar.Decode(js)
			if len(decodeErrs) > 0 {
				t.Fatalf("decode: %v", decodeErrs)
			}
			if s.APIVersion != "networking.istio.io/v1alpha3" || s.Kind != sidecar.Kind {
				t.Errorf("got %s %s, want networking.istio.io/v1alpha3 Sidecar", s.APIVersion, s.Kind)
			}
			errs, warns := ValidateSidecar(s)
			if len(errs) > 0 {
				t.Errorf("the reference example must be valid, got errors: %v", errs)
			}
			if diff := cmp.Diff(wantWarnings[name], warns.Strings(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
