package resolve

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func ref(ns, name string, age int, selector map[string]string) clusterview.SidecarRef {
	// age counts hours before now: a bigger age is older.
	return clusterview.SidecarRef{Namespace: ns, Name: name, Created: t0.Add(-time.Duration(age) * time.Hour), Selector: selector}
}

func TestResolve(t *testing.T) {
	app := map[string]string{"app": "ratings", "version": "v1"}
	tests := []struct {
		name      string
		sidecars  []clusterview.SidecarRef
		namespace string
		labels    map[string]string
		want      Resolution
	}{
		{
			name:      "nothing anywhere",
			namespace: "prod",
			labels:    app,
			want:      Resolution{Scope: ScopeNone},
		},
		{
			name: "selector Sidecar beats namespace-wide and mesh default",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 5, nil),
				ref("prod", "ratings", 1, map[string]string{"app": "ratings"}),
				ref("istio-system", "default", 9, nil),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "prod/ratings", Scope: ScopeWorkload},
		},
		{
			name: "selector needs every label",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 5, nil),
				ref("prod", "ratings-v2", 1, map[string]string{"app": "ratings", "version": "v2"}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "prod/default", Scope: ScopeNamespace},
		},
		{
			name: "namespace-wide beats mesh default",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 1, nil),
				ref("istio-system", "default", 9, nil),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "prod/default", Scope: ScopeNamespace},
		},
		{
			name: "mesh default when the namespace has none",
			sidecars: []clusterview.SidecarRef{
				ref("other", "default", 1, nil),
				ref("istio-system", "mesh", 9, nil),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "istio-system/mesh", Scope: ScopeMesh},
		},
		{
			name: "selector Sidecars in the root namespace select only its own workloads",
			sidecars: []clusterview.SidecarRef{
				ref("istio-system", "ratings", 9, map[string]string{"app": "ratings"}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Scope: ScopeNone},
		},
		{
			name: "selector Sidecars in other namespaces do not apply",
			sidecars: []clusterview.SidecarRef{
				ref("other", "ratings", 9, map[string]string{"app": "ratings"}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Scope: ScopeNone},
		},
		{
			name: "root namespace pod gets the root's namespace-wide Sidecar as namespace scope",
			sidecars: []clusterview.SidecarRef{
				ref("istio-system", "default", 9, nil),
			},
			namespace: "istio-system",
			labels:    app,
			want:      Resolution{Sidecar: "istio-system/default", Scope: ScopeNamespace},
		},
		{
			name: "root namespace pod selected by a root selector Sidecar",
			sidecars: []clusterview.SidecarRef{
				ref("istio-system", "default", 9, nil),
				ref("istio-system", "ratings", 1, map[string]string{"app": "ratings"}),
			},
			namespace: "istio-system",
			labels:    app,
			want:      Resolution{Sidecar: "istio-system/ratings", Scope: ScopeWorkload},
		},
		{
			name: "several selecting Sidecars: oldest applies, all reported",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "c-new", 1, map[string]string{"app": "ratings"}),
				ref("prod", "b-old", 5, map[string]string{"version": "v1"}),
				ref("prod", "a-mid", 3, map[string]string{"app": "ratings", "version": "v1"}),
				ref("prod", "unrelated", 9, map[string]string{"app": "reviews"}),
			},
			namespace: "prod",
			labels:    app,
			want: Resolution{Sidecar: "prod/b-old", Scope: ScopeWorkload,
				Conflicts: []string{"prod/a-mid", "prod/b-old", "prod/c-new"}},
		},
		{
			name: "same age: the name decides",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "zeta", 2, map[string]string{"app": "ratings"}),
				ref("prod", "alpha", 2, map[string]string{"version": "v1"}),
			},
			namespace: "prod",
			labels:    app,
			want: Resolution{Sidecar: "prod/alpha", Scope: ScopeWorkload,
				Conflicts: []string{"prod/alpha", "prod/zeta"}},
		},
		{
			name: "several namespace-wide Sidecars: oldest applies, all reported",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 1, nil),
				ref("prod", "legacy", 4, nil),
			},
			namespace: "prod",
			labels:    app,
			want: Resolution{Sidecar: "prod/legacy", Scope: ScopeNamespace,
				Conflicts: []string{"prod/default", "prod/legacy"}},
		},
		{
			name: "several mesh defaults: oldest applies, all reported",
			sidecars: []clusterview.SidecarRef{
				ref("istio-system", "b", 1, nil),
				ref("istio-system", "a", 1, nil),
			},
			namespace: "prod",
			labels:    app,
			want: Resolution{Sidecar: "istio-system/a", Scope: ScopeMesh,
				Conflicts: []string{"istio-system/a", "istio-system/b"}},
		},
		{
			name: "a selecting conflict hides namespace-wide conflicts",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 1, nil),
				ref("prod", "legacy", 4, nil),
				ref("prod", "ratings", 1, map[string]string{"app": "ratings"}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "prod/ratings", Scope: ScopeWorkload},
		},
		{
			name: "nil labels: only namespace-wide Sidecars apply",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 1, nil),
				ref("prod", "ratings", 1, map[string]string{"app": "ratings"}),
			},
			namespace: "prod",
			labels:    nil,
			want:      Resolution{Sidecar: "prod/default", Scope: ScopeNamespace},
		},
		{
			name: "empty labels: only namespace-wide Sidecars apply",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "ratings", 1, map[string]string{"app": "ratings"}),
				ref("istio-system", "default", 1, nil),
			},
			namespace: "prod",
			labels:    map[string]string{},
			want:      Resolution{Sidecar: "istio-system/default", Scope: ScopeMesh},
		},
		{
			name: "an empty (non-nil) selector selects every workload, as istiod treats it",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "empty", 1, map[string]string{}),
			},
			namespace: "prod",
			labels:    map[string]string{},
			want:      Resolution{Sidecar: "prod/empty", Scope: ScopeWorkload},
		},
		{
			name: "an empty selector ranks with the selector Sidecars, before namespace-wide ones",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "default", 9, nil),
				ref("prod", "empty", 1, map[string]string{}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "prod/empty", Scope: ScopeWorkload},
		},
		{
			name: "an empty selector competes by age with a matching selector",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "empty", 5, map[string]string{}),
				ref("prod", "ratings", 1, map[string]string{"app": "ratings"}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "prod/empty", Scope: ScopeWorkload, Conflicts: []string{"prod/empty", "prod/ratings"}},
		},
		{
			name: "an empty selector in the root namespace is no mesh default",
			sidecars: []clusterview.SidecarRef{
				ref("istio-system", "empty", 5, map[string]string{}),
				ref("istio-system", "default", 1, nil),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Sidecar: "istio-system/default", Scope: ScopeMesh},
		},
		{
			name: "label value must match exactly",
			sidecars: []clusterview.SidecarRef{
				ref("prod", "ratings", 1, map[string]string{"app": "Ratings"}),
			},
			namespace: "prod",
			labels:    app,
			want:      Resolution{Scope: ScopeNone},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			view := clusterview.NewMemory("istio-system")
			for _, s := range tc.sidecars {
				view.PutSidecar(s)
			}
			got := Resolve(view, tc.namespace, tc.labels)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Resolve(%s, %v) (-want +got):\n%s", tc.namespace, tc.labels, diff)
			}
		})
	}
}

func TestResolveWithoutRootNamespace(t *testing.T) {
	view := clusterview.NewMemory("")
	view.PutSidecar(ref("", "odd", 1, nil))
	if got := Resolve(view, "prod", nil); got.Scope != ScopeNone {
		t.Errorf("Resolve with no root namespace = %+v, want scope none", got)
	}
}

func TestForProxy(t *testing.T) {
	view := clusterview.NewMemory("istio-system")
	view.PutSidecar(ref("prod", "ratings", 1, map[string]string{"app": "ratings"}))
	labels := map[string]string{"app": "ratings"}
	if got, ok := ForProxy(view, "prod", mesh.SidecarProxy, labels); !ok || got.Sidecar != "prod/ratings" {
		t.Errorf("sidecar proxy: got %+v, %v; want prod/ratings", got, ok)
	}
	// istiod gives gateways and waypoints the default scope, never a Sidecar.
	if got, ok := ForProxy(view, "prod", mesh.GatewayProxy, labels); !ok || !cmp.Equal(got, Resolution{Scope: ScopeGateway}) {
		t.Errorf("gateway: got %+v, %v; want scope gateway and no Sidecar", got, ok)
	}
	if got, ok := ForProxy(view, "prod", mesh.NoProxy, labels); ok {
		t.Errorf("no proxy: got %+v, want nothing", got)
	}
}
