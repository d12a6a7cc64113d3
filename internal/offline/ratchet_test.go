package offline_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// Specs (YAML under "spec:") of Sidecars Istio admits and the reference
// does not.
const (
	bindWithoutPort    = "  egress:\n  - bind: 127.0.0.1\n    hosts:\n    - ./*\n"
	bindWithoutPortEd  = "  egress:\n  - bind: 127.0.0.1\n    hosts:\n    - ./*\n    - istio-system/*\n"
	bindWithoutPortBad = "  egress:\n  - bind: 127.0.0.1\n    hosts:\n    - ./*\n    - nope\n"
	colonEndpoint      = "  ingress:\n  - port:\n      number: 9080\n      protocol: HTTP\n      name: http\n    defaultEndpoint: \":18082\"\n"
)

// storedSidecar decodes a Sidecar as the cluster stores it.
func storedSidecar(t *testing.T, namespace, name, selector, spec string) *sidecar.Sidecar {
	t.Helper()
	docs, err := offline.Load([]string{"-"}, strings.NewReader(sidecarDoc(namespace, name, selector, spec)))
	if err != nil {
		t.Fatal(err)
	}
	s, errs := sidecar.Decode(docs[0].JSON)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return s
}

// storedView is the cluster state holding stored, in injected namespaces.
func storedView(stored ...*sidecar.Sidecar) *clusterview.Memory {
	view := clusterview.NewMemory("istio-system")
	for _, s := range stored {
		view.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace, Labels: offline.AssumedNamespaceLabels}})
		view.PutSidecar(clusterview.RefOf(s))
	}
	return view
}

// TestCheckRatchetsUpdates: a document that repeats the namespace/name of a
// stored Sidecar (check --cluster) or of an earlier admitted document is an
// UPDATE of it; problems it already had are admitted with a warning, new
// ones denied.
func TestCheckRatchetsUpdates(t *testing.T) {
	legacy := func(t *testing.T) *sidecar.Sidecar { return storedSidecar(t, "prod", "legacy", "", bindWithoutPort) }
	cases := []struct {
		name   string
		stored func(*testing.T) []*sidecar.Sidecar
		in     string
		opts   offline.Options
		want   []verdict
		// wantErrors maps a decision index to the paths of its errors.
		wantErrors map[int][]string
		// wantPredates maps a decision index to substrings its pre-dates
		// warnings must contain; none are allowed where it has no entry.
		wantPredates map[int][]string
	}{
		{
			name:   "stored legacy Sidecar edited, problem kept: admitted with a warning",
			stored: func(t *testing.T) []*sidecar.Sidecar { return []*sidecar.Sidecar{legacy(t)} },
			in:     sidecarDoc("prod", "legacy", "", bindWithoutPortEd),
			want:   []verdict{{Namespace: "prod", Name: "legacy", Line: 1, Allowed: true}},
			wantPredates: map[int][]string{0: {
				"spec.egress[0].port: [SW0301] pre-dates this change (the stored Sidecar already has it, so it is admitted; a change to this field must fix it); fix: Required value: a port is required when bind is set",
			}},
		},
		{
			name:         "stored legacy Sidecar edited with a new problem: denied for the new one only",
			stored:       func(t *testing.T) []*sidecar.Sidecar { return []*sidecar.Sidecar{legacy(t)} },
			in:           sidecarDoc("prod", "legacy", "", bindWithoutPortBad),
			want:         []verdict{{Namespace: "prod", Name: "legacy", Line: 1, Allowed: false}},
			wantErrors:   map[int][]string{0: {"spec.egress[0].hosts[1]"}},
			wantPredates: map[int][]string{0: {"spec.egress[0].port: [SW0301] pre-dates this change"}},
		},
		{
			name:       "the same problem in a new Sidecar: denied",
			stored:     func(t *testing.T) []*sidecar.Sidecar { return []*sidecar.Sidecar{legacy(t)} },
			in:         sidecarDoc("prod", "copy", "app=x", bindWithoutPort),
			want:       []verdict{{Namespace: "prod", Name: "copy", Line: 1, Allowed: false}},
			wantErrors: map[int][]string{0: {"spec.egress[0].port"}},
		},
		{
			name: "stored conflict, one side edited keeping its selector: admitted naming the other",
			stored: func(t *testing.T) []*sidecar.Sidecar {
				return []*sidecar.Sidecar{storedSidecar(t, "prod", "default", "", ""), storedSidecar(t, "prod", "second", "", "")}
			},
			in:           sidecarDoc("prod", "second", "", "  egress:\n  - hosts:\n    - ./*\n    - istio-system/*\n"),
			want:         []verdict{{Namespace: "prod", Name: "second", Line: 1, Allowed: true}},
			wantPredates: map[int][]string{0: {"spec.workloadSelector: [SW1001] pre-dates this change (this update keeps the workloadSelector", "prod/default"}},
		},
		{
			name: "stored Sidecar given a selector that conflicts: denied as today",
			stored: func(t *testing.T) []*sidecar.Sidecar {
				return []*sidecar.Sidecar{storedSidecar(t, "prod", "a", "app=one", ""), storedSidecar(t, "prod", "b", "app=two", "")}
			},
			in:         sidecarDoc("prod", "b", "app=one", ""),
			want:       []verdict{{Namespace: "prod", Name: "b", Line: 1, Allowed: false}},
			wantErrors: map[int][]string{0: {"spec.workloadSelector.labels"}},
		},
		{
			name: "files only, warn mode: the second version of a document ratchets against the first",
			in: stream(
				sidecarDoc("prod", "legacy", "", colonEndpoint),
				sidecarDoc("prod", "legacy", "", strings.Replace(colonEndpoint, "protocol: HTTP", "protocol: HTTP2", 1)),
			),
			opts: offline.Options{Validation: validation.Options{Enforcement: validation.EnforcementWarn}},
			want: []verdict{
				{Namespace: "prod", Name: "legacy", Line: 1, Allowed: true},
				{Namespace: "prod", Name: "legacy", Line: 14, Allowed: true},
			},
			wantPredates: map[int][]string{1: {"spec.ingress[0].defaultEndpoint: [SW0209] pre-dates this change"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if tc.stored != nil {
				opts.Stored = tc.stored(t)
				opts.View = storedView(opts.Stored...)
			}
			docs, err := offline.Load([]string{"-"}, strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			decisions, err := offline.Check(docs, opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, verdicts(decisions), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("decisions (-want +got):\n%s\n%+v", diff, decisions)
			}
			for i, d := range decisions {
				var paths []string
				for _, e := range d.Errors {
					path, _, _ := strings.Cut(e, ": ")
					paths = append(paths, path)
				}
				if diff := cmp.Diff(tc.wantErrors[i], paths, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("decision %d: error paths (-want +got):\n%s", i, diff)
				}
				var predates []string
				for _, w := range d.Warnings {
					if strings.Contains(w, "] pre-dates this change (") {
						predates = append(predates, w)
					}
				}
				want := tc.wantPredates[i]
				if (len(predates) == 0) != (len(want) == 0) {
					t.Errorf("decision %d: pre-dates warnings %q, want %q", i, predates, want)
					continue
				}
				for _, s := range want {
					if !strings.Contains(strings.Join(predates, "\n"), s) {
						t.Errorf("decision %d: pre-dates warnings %q do not contain %q", i, predates, s)
					}
				}
			}
		})
	}
}

// TestPreflight: every stored Sidecar judged as if created today, ordered
// by namespace and name, with each reason as one error.
func TestPreflight(t *testing.T) {
	stored := []*sidecar.Sidecar{
		storedSidecar(t, "web", "second", "", ""),
		storedSidecar(t, "web", "default", "", ""),
		storedSidecar(t, "api", "legacy", "app=api", bindWithoutPort+"  ingress:\n  - port:\n      number: 9080\n      protocol: HTTP\n      name: http\n"),
		storedSidecar(t, "api", "fine", "app=other", ""),
	}
	decisions := offline.Preflight(stored, storedView(stored...))
	want := []verdict{
		{Namespace: "api", Name: "fine", Allowed: true},
		{Namespace: "api", Name: "legacy", Allowed: false},
		{Namespace: "web", Name: "default", Allowed: false},
		{Namespace: "web", Name: "second", Allowed: false},
	}
	if diff := cmp.Diff(want, verdicts(decisions)); diff != "" {
		t.Fatalf("decisions (-want +got):\n%s", diff)
	}
	wantErrors := [][]string{
		{},
		{"spec.ingress[0].defaultEndpoint: Required value:", "spec.egress[0].port: Required value:"},
		{`spec.workloadSelector: Forbidden: [SW1001] namespace "web" already has a Sidecar without workloadSelector: web/second`},
		{`spec.workloadSelector: Forbidden: [SW1001] namespace "web" already has a Sidecar without workloadSelector: web/default`},
	}
	for i, d := range decisions {
		if d.File != offline.ClusterFile || d.Kind != "Sidecar" || d.Errors == nil || d.Warnings == nil {
			t.Errorf("decision %d: file %q kind %q errors %v warnings %v", i, d.File, d.Kind, d.Errors, d.Warnings)
		}
		if d.Allowed != (d.Message == "") || (!d.Allowed && !strings.HasPrefix(d.Message, offline.PreflightPrefix)) {
			t.Errorf("decision %d: allowed=%v message %q", i, d.Allowed, d.Message)
		}
		if len(d.Errors) != len(wantErrors[i]) {
			t.Errorf("decision %d: errors %q, want %d", i, d.Errors, len(wantErrors[i]))
			continue
		}
		for j, prefix := range wantErrors[i] {
			if !strings.HasPrefix(d.Errors[j], prefix) {
				t.Errorf("decision %d: error %q does not start with %q", i, d.Errors[j], prefix)
			}
		}
	}
}
