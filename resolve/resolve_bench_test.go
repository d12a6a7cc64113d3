package resolve_test

import (
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// BenchmarkResolve resolves a pod against the load benchmark's states in
// memory (same namespace shape, 10 or 1000 namespaces): selected by a
// workload Sidecar, by the namespace-wide one only, and in a namespace
// without Sidecars (the mesh default).
func BenchmarkResolve(b *testing.B) {
	for _, st := range []benchdata.State{benchdata.Small, benchdata.Large} {
		view := benchdata.Memory(st)
		view.EnsureNamespace("empty")
		ns := benchdata.NamespaceName(st.Namespaces / 2)
		cases := []struct {
			name      string
			namespace string
			labels    map[string]string
			want      resolve.Scope
		}{
			{"workload", ns, map[string]string{"app": st.SelectedApp(3), "version": "v1"}, resolve.ScopeWorkload},
			{"namespace", ns, map[string]string{"app": benchdata.AppName(st.Apps - 1)}, resolve.ScopeNamespace},
			{"mesh", "empty", map[string]string{"app": "x"}, resolve.ScopeMesh},
		}
		for _, tc := range cases {
			b.Run(st.Name+"/"+tc.name, func(b *testing.B) {
				var v clusterview.View = view
				if got := resolve.Resolve(v, tc.namespace, tc.labels); got.Scope != tc.want {
					b.Fatalf("scope %s, want %s", got.Scope, tc.want)
				}
				b.ReportAllocs()
				for b.Loop() {
					resolve.Resolve(v, tc.namespace, tc.labels)
				}
			})
		}
	}
}
