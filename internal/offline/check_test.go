package offline_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sidecar-webhook/sidecar-webhook/internal/offline"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

const referenceDir = "../../validation/testdata/reference"

// sidecarDoc is a Sidecar manifest; selector "" makes it namespace-wide.
func sidecarDoc(namespace, name, selector, spec string) string {
	var b strings.Builder
	b.WriteString("apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: " + name + "\n")
	if namespace != "" {
		b.WriteString("  namespace: " + namespace + "\n")
	}
	b.WriteString("spec:\n")
	if selector != "" {
		k, v, _ := strings.Cut(selector, "=")
		b.WriteString("  workloadSelector:\n    labels:\n      " + k + ": " + v + "\n")
	}
	if spec == "" {
		spec = "  egress:\n  - hosts:\n    - ./*\n"
	}
	b.WriteString(spec)
	return b.String()
}

func deploymentDoc(namespace, name string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + name + "\n")
	if namespace != "" {
		b.WriteString("  namespace: " + namespace + "\n")
	}
	b.WriteString("spec:\n  selector:\n    matchLabels:\n      app: x\n  template:\n    metadata:\n      labels:\n")
	for k, v := range labels {
		b.WriteString("        " + k + ": " + v + "\n")
	}
	b.WriteString("    spec:\n      containers:\n      - name: c\n        image: busybox\n")
	return b.String()
}

func stream(docs ...string) string { return strings.Join(docs, "---\n") }

// verdict is what the Check tests compare of each decision; the message is
// checked for the part that tells the user why.
type verdict struct {
	Namespace, Name string
	Line            int
	Allowed         bool
}

func verdicts(ds []offline.Decision) []verdict {
	var out []verdict
	for _, d := range ds {
		out = append(out, verdict{Namespace: d.Namespace, Name: d.Name, Line: d.Line, Allowed: d.Allowed})
	}
	return out
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		in   string
		opts offline.Options
		want []verdict
		// wantMessages maps a decision index to substrings of its message.
		wantMessages map[int][]string
		// wantWarnings maps a decision index to substrings, one per warning.
		wantWarnings map[int][]string
	}{
		{
			name: "a Deployment's template makes two selectors select one workload",
			in: stream(
				sidecarDoc("prod", "by-app", "app=ratings", ""),
				deploymentDoc("prod", "ratings", map[string]string{"app": "ratings", "version": "v1"}),
				sidecarDoc("prod", "by-version", "version=v1", ""),
			),
			want: []verdict{
				{Namespace: "prod", Name: "by-app", Line: 1, Allowed: true},
				{Namespace: "prod", Name: "by-version", Line: 33, Allowed: false},
			},
			wantMessages: map[int][]string{1: {
				`Sidecar.networking.istio.io "by-version" is invalid: spec.workloadSelector.labels: Forbidden:`,
				"Sidecar prod/by-app", "both select Deployment prod/ratings",
			}},
		},
		{
			name: "workloads in another namespace do not count",
			in: stream(
				sidecarDoc("prod", "by-app", "app=ratings", ""),
				deploymentDoc("staging", "ratings", map[string]string{"app": "ratings", "version": "v1"}),
				sidecarDoc("prod", "by-version", "version=v1", ""),
			),
			want: []verdict{
				{Namespace: "prod", Name: "by-app", Line: 1, Allowed: true},
				{Namespace: "prod", Name: "by-version", Line: 33, Allowed: true},
			},
		},
		{
			name: "an admitted Sidecar joins the state: the second namespace-wide one is denied",
			in: stream(
				sidecarDoc("prod", "default", "", ""),
				sidecarDoc("prod", "other", "", ""),
			),
			want: []verdict{
				{Namespace: "prod", Name: "default", Line: 1, Allowed: true},
				{Namespace: "prod", Name: "other", Line: 11, Allowed: false},
			},
			wantMessages: map[int][]string{1: {`namespace "prod" already has a Sidecar without workloadSelector: prod/default`}},
			wantWarnings: map[int][]string{1: {"metadata.name: [SW1009] the Sidecar reference recommends"}},
		},
		{
			name: "a denied Sidecar does not join the state",
			in: stream(
				sidecarDoc("prod", "broken", "", "  egress:\n  - hosts:\n    - nope\n"),
				sidecarDoc("prod", "default", "", ""),
			),
			want: []verdict{
				{Namespace: "prod", Name: "broken", Line: 1, Allowed: false},
				{Namespace: "prod", Name: "default", Line: 11, Allowed: true},
			},
			wantMessages: map[int][]string{0: {"spec.egress[0].hosts[0]"}},
			wantWarnings: map[int][]string{0: {}},
		},
		{
			name: "a repeated namespace/name is an update",
			in: stream(
				sidecarDoc("prod", "default", "", ""),
				sidecarDoc("prod", "default", "", "  egress:\n  - hosts:\n    - istio-system/*\n"),
			),
			want: []verdict{
				{Namespace: "prod", Name: "default", Line: 1, Allowed: true},
				{Namespace: "prod", Name: "default", Line: 11, Allowed: true},
			},
		},
		{
			name: "the default namespace applies to objects without one",
			in: stream(
				sidecarDoc("", "default", "", ""),
				sidecarDoc("team", "default", "", ""),
				sidecarDoc("", "second", "", ""),
			),
			opts: offline.Options{DefaultNamespace: "team"},
			want: []verdict{
				{Namespace: "team", Name: "default", Line: 1, Allowed: true},
				{Namespace: "team", Name: "default", Line: 10, Allowed: true},
				{Namespace: "team", Name: "second", Line: 20, Allowed: false},
			},
			wantMessages: map[int][]string{2: {"team/default"}},
		},
		{
			name: "without a default namespace, objects go to default",
			in: stream(
				deploymentDoc("", "ratings", map[string]string{"app": "ratings"}),
				sidecarDoc("", "a", "app=ratings", ""),
				sidecarDoc("default", "b", "app=ratings", ""),
			),
			want: []verdict{
				{Namespace: "default", Name: "a", Line: 18, Allowed: true},
				{Namespace: "default", Name: "b", Line: 30, Allowed: false},
			},
			wantMessages: map[int][]string{1: {"Deployment default/ratings", "default/a"}},
		},
		{
			name: "an unknown field is denied with its path",
			in:   sidecarDoc("prod", "default", "", "  egress:\n  - hostz:\n    - ./*\n"),
			want: []verdict{{Namespace: "prod", Name: "default", Line: 1, Allowed: false}},
			wantMessages: map[int][]string{0: {
				`Sidecar.networking.istio.io "default" is invalid: spec.egress[0].hostz: Forbidden: [SW0002] unknown field`,
			}},
		},
		{
			name: "defaulting happens before validation",
			in: sidecarDoc("prod", "default", "", "  egress:\n  - port:\n      number: 3306\n      protocol: TCP\n      name: db\n"+
				"    captureMode: NONE\n    hosts:\n    - ./*\n"),
			want: []verdict{{Namespace: "prod", Name: "default", Line: 1, Allowed: true}},
		},
		{
			name: "warnings are included",
			in:   sidecarDoc("prod", "default", "", "  egress:\n  - hosts:\n    - ./*\n    - ./*\n"),
			want: []verdict{{Namespace: "prod", Name: "default", Line: 1, Allowed: true}},
			wantWarnings: map[int][]string{0: {
				`spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"`,
				// ./* names namespace prod, which nothing in the input creates
				// but the Sidecar itself; no further warning expected.
			}},
		},
		{
			name: "enforcement warn turns a denial into a warning",
			in: stream(
				sidecarDoc("prod", "default", "", ""),
				sidecarDoc("prod", "other", "", ""),
			),
			opts: offline.Options{Validation: validation.Options{Enforcement: validation.EnforcementWarn}},
			want: []verdict{
				{Namespace: "prod", Name: "default", Line: 1, Allowed: true},
				{Namespace: "prod", Name: "other", Line: 11, Allowed: true},
			},
			wantWarnings: map[int][]string{1: {
				"metadata.name: [SW1009] the Sidecar reference recommends",
				"would be denied (enforcement=warn): spec.workloadSelector: Forbidden:",
			}},
		},
		{
			name: "non-Sidecar kinds the rules do not read are ignored",
			in: stream(
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n",
				"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: g\nspec: {}\n",
				sidecarDoc("prod", "default", "", ""),
			),
			want: []verdict{{Namespace: "prod", Name: "default", Line: 14, Allowed: true}},
		},
		{name: "no Sidecars", in: namespaceDoc("prod")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := offline.Load([]string{"-"}, strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			decisions, err := offline.Check(docs, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, verdicts(decisions), cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("decisions (-want +got):\n%s", diff)
			}
			for i, d := range decisions {
				if d.Allowed != (d.Message == "") {
					t.Errorf("decision %d: allowed=%v with message %q", i, d.Allowed, d.Message)
				}
				if d.Warnings == nil {
					t.Errorf("decision %d: Warnings is nil; the JSON output needs an array", i)
				}
				if d.Kind != "Sidecar" || d.APIVersion != "networking.istio.io/v1" || d.File != "-" {
					t.Errorf("decision %d: identity %s %s in %s", i, d.APIVersion, d.Kind, d.File)
				}
				for _, s := range tc.wantMessages[i] {
					if !strings.Contains(d.Message, s) {
						t.Errorf("decision %d: message %q does not contain %q", i, d.Message, s)
					}
				}
				if want, ok := tc.wantWarnings[i]; ok {
					if len(d.Warnings) != len(want) {
						t.Errorf("decision %d: warnings %q, want %d", i, d.Warnings, len(want))
						continue
					}
					for j, s := range want {
						if !strings.Contains(d.Warnings[j], s) {
							t.Errorf("decision %d: warning %q does not contain %q", i, d.Warnings[j], s)
						}
					}
				}
			}
		})
	}
}

// TestCheckDenialMessage pins one whole denial message: what a CI log shows.
func TestCheckDenialMessage(t *testing.T) {
	docs, err := offline.Load([]string{"-"}, strings.NewReader(sidecarDoc("prod", "default", "", "  egress:\n  - port:\n      number: 70000\n    hosts:\n    - ./*\n")))
	if err != nil {
		t.Fatal(err)
	}
	decisions, err := offline.Check(docs, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `Sidecar.networking.istio.io "default" is invalid: spec.egress[0].port.number: Invalid value: 70000: [SW0201] must be a port number between 1 and 65535`
	if len(decisions) != 1 || decisions[0].Message != want {
		t.Errorf("decisions %+v\nwant message %s", decisions, want)
	}
}

func TestCheckReferenceExamples(t *testing.T) {
	docs, err := offline.Load([]string{referenceDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	decisions, err := offline.Check(docs, offline.Options{RootNamespace: "istio-config"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range decisions {
		got[filepath.Base(d.File)] = d.Allowed
	}
	// Lexical order: no-ip-tables is admitted first, so partial-ip-tables,
	// which selects the same workload, conflicts with it.
	want := map[string]bool{
		"global-default.yaml":    true,
		"no-ip-tables.yaml":      true,
		"partial-ip-tables.yaml": false,
		"prod-us1-default.yaml":  true,
		"ratings.yaml":           true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allowed by file (-want +got):\n%s", diff)
	}
}

func TestCheckBadWorkloadIsAReadError(t *testing.T) {
	docs, err := offline.Load([]string{"-"}, strings.NewReader(
		"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: many\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = offline.Check(docs, offline.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "-:1: ") {
		t.Errorf("want a read error at -:1, got %v", err)
	}
}

func TestCheckUnservedVersionIsDenied(t *testing.T) {
	doc := strings.Replace(sidecarDoc("prod", "default", "", "  egress:\n  - hosts:\n    - ./*\n"),
		"networking.istio.io/v1alpha3", "networking.istio.io/v2", 1)
	doc = strings.Replace(doc, "networking.istio.io/v1\n", "networking.istio.io/v2\n", 1)
	docs, err := offline.Load([]string{"-"}, strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	decisions, err := offline.Check(docs, offline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(decisions) != 1 || decisions[0].Allowed || !strings.Contains(decisions[0].Message, `apiVersion: Unsupported value: "networking.istio.io/v2"`) {
		t.Fatalf("an unserved version must be denied naming apiVersion; got %+v", decisions)
	}
}
