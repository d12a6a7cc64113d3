package sidecar_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// benchObjects are the reference's Sidecars (as the JSON the API server
// sends) and a generated 50-listener one.
func benchObjects(b *testing.B) map[string][]byte {
	b.Helper()
	files, err := filepath.Glob("../validation/testdata/reference/*.yaml")
	if err != nil || len(files) == 0 {
		b.Fatalf("no reference examples: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		y, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			b.Fatal(err)
		}
		out["reference/"+strings.TrimSuffix(filepath.Base(f), ".yaml")] = j
	}
	out["generated/50-listeners"] = benchdata.GeneratedSidecar("prod", "big", 50)
	return out
}

func BenchmarkDecode(b *testing.B) {
	objects := benchObjects(b)
	for _, name := range slices.Sorted(maps.Keys(objects)) {
		raw := objects[name]
		b.Run(name, func(b *testing.B) {
			if _, errs := sidecar.Decode(raw); len(errs) > 0 {
				b.Fatal(errs)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				sidecar.Decode(raw)
			}
		})
	}
}
