package defaults_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// BenchmarkApply defaults the reference's Sidecars and a generated
// 50-listener one from their JSON, as the defaulting webhook does (Apply
// works in place, so each iteration decodes a fresh copy; the decode is
// part of the figure, as it is of the webhook's work).
func BenchmarkApply(b *testing.B) {
	files, err := filepath.Glob("../validation/testdata/reference/*.yaml")
	if err != nil || len(files) == 0 {
		b.Fatalf("no reference examples: %v", err)
	}
	objects := map[string][]byte{"generated/50-listeners": benchdata.GeneratedSidecar("prod", "big", 50)}
	for _, f := range files {
		y, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			b.Fatal(err)
		}
		objects["reference/"+strings.TrimSuffix(filepath.Base(f), ".yaml")] = j
	}
	for _, name := range slices.Sorted(maps.Keys(objects)) {
		raw := objects[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var obj map[string]any
				if err := json.Unmarshal(raw, &obj); err != nil {
					b.Fatal(err)
				}
				defaults.Apply(obj, defaults.Options{})
			}
		})
	}
}
