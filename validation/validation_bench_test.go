package validation_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

func decoded(b *testing.B, raw []byte) *sidecar.Sidecar {
	b.Helper()
	s, errs := sidecar.Decode(raw)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	return s
}

// benchSidecars are the reference's Sidecars and a generated 50-listener
// one, decoded.
func benchSidecars(b *testing.B) map[string]*sidecar.Sidecar {
	b.Helper()
	files, err := filepath.Glob("testdata/reference/*.yaml")
	if err != nil || len(files) == 0 {
		b.Fatalf("no reference examples: %v", err)
	}
	out := map[string]*sidecar.Sidecar{}
	for _, f := range files {
		y, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			b.Fatal(err)
		}
		out["reference/"+strings.TrimSuffix(filepath.Base(f), ".yaml")] = decoded(b, j)
	}
	out["generated/50-listeners"] = decoded(b, benchdata.GeneratedSidecar("prod", "big", 50))
	return out
}

func BenchmarkValidateSidecar(b *testing.B) {
	sidecars := benchSidecars(b)
	for _, name := range slices.Sorted(maps.Keys(sidecars)) {
		s := sidecars[name]
		b.Run(name, func(b *testing.B) {
			if errs, _ := validation.ValidateSidecar(s); len(errs) > 0 {
				b.Fatal(errs)
			}
			b.ReportAllocs()
			for b.Loop() {
				validation.ValidateSidecar(s)
			}
		})
	}
}

// views are the load benchmark's two states in memory: the same namespace
// shape (100 pods, 10 Deployments, 10 Sidecars), 10 or 1000 namespaces.
var views = map[string]func() *clusterview.Memory{
	"small": func() *clusterview.Memory { return benchdata.Memory(benchdata.Small) },
	"large": func() *clusterview.Memory { return benchdata.Memory(benchdata.Large) },
}

// conflictCases: a Sidecar admitted (its selector matches nothing else),
// one denied (same selector as sc-0), and a second namespace-wide one
// (denied), all in a namespace of the generated state.
func conflictCases(b *testing.B) map[string]*sidecar.Sidecar {
	ns := benchdata.NamespaceName(7)
	mk := func(name, selector string) *sidecar.Sidecar {
		sel := ""
		if selector != "" {
			sel = fmt.Sprintf(`"workloadSelector":{"labels":{"app":%q}},`, selector)
		}
		return decoded(b, fmt.Appendf(nil, `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":%q,"namespace":%q},"spec":{%s"egress":[{"hosts":["./*","istio-system/*"]}]}}`, name, ns, sel))
	}
	return map[string]*sidecar.Sidecar{
		"admitted":             mk("new", "new"),
		"denied-same-selector": mk("dup", benchdata.AppName(0)),
		"denied-namespacewide": mk("second", ""),
	}
}

func BenchmarkValidateConflicts(b *testing.B) {
	for _, size := range []string{"small", "large"} {
		view := views[size]()
		cases := conflictCases(b)
		for _, name := range slices.Sorted(maps.Keys(cases)) {
			s := cases[name]
			b.Run(size+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					validation.ValidateConflicts(s, view)
				}
			})
		}
	}
}

// BenchmarkDecide is the whole decision the webhook makes per view: the
// per-object rules, conflicts and cluster warnings.
func BenchmarkDecide(b *testing.B) {
	opts := validation.Options{Enforcement: validation.EnforcementDeny}
	for _, size := range []string{"small", "large"} {
		view := views[size]()
		cases := conflictCases(b)
		for name, s := range benchSidecars(b) {
			cases[name] = s
		}
		for _, name := range slices.Sorted(maps.Keys(cases)) {
			s := cases[name]
			b.Run(size+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					validation.Decide(s, nil, view, opts)
				}
			})
		}
	}
}
