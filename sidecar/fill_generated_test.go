package sidecar_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// TestFillBenchdata replays the benchmarks' generated Sidecars through the
// differential check of fill_test.go; every one of them must be filled,
// and taken by the fast path.
func TestFillBenchdata(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 100
	}
	for i := range n {
		name := fmt.Sprintf("benchdata/%d", i)
		raw := benchdata.GeneratedSidecar(fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("s-%d", i), i%30)
		if !sidecar.SameDecode(t, name, raw) {
			t.Errorf("%s: not filled", name)
		}
		if !sidecar.FastAccepts(raw) {
			t.Errorf("%s: not taken by the fast path", name)
		}
	}
}

// The load benchmark's Sidecar reviews carry what the API server sends
// (managedFields among it): the fast path must take every one of them, or
// the benchmark would measure a path that production requests do not take.
func TestFastTakesTheBenchmarkReviews(t *testing.T) {
	ratings, err := os.ReadFile("../validation/testdata/reference/ratings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ratingsJSON, err := yaml.YAMLToJSON(ratings)
	if err != nil {
		t.Fatal(err)
	}
	example, err := benchdata.ExampleSidecar(benchdata.Small, "sidecar-ratings", ratingsJSON, "/validate")
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []*benchdata.Scenario{benchdata.AdmittedSidecar(benchdata.Small, "/validate"), benchdata.DeniedSidecar(benchdata.Small, "/validate"), example} {
		for seq := range int64(3) {
			var review admissionv1.AdmissionReview
			if err := json.Unmarshal(sc.Body(seq), &review); err != nil {
				t.Fatal(err)
			}
			raw := review.Request.Object.Raw
			if !bytes.Contains(raw, []byte(`"managedFields"`)) {
				t.Errorf("%s/%d: the object has no managedFields, unlike what the API server sends", sc.Name, seq)
			}
			if !sidecar.SameDecode(t, sc.Name, raw) || !sidecar.FastAccepts(raw) {
				t.Errorf("%s/%d: not taken by the fast path:\n%s", sc.Name, seq, raw)
			}
		}
	}
}
