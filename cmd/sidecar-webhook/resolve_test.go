package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
)

const resolveManifests = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: istio-system
spec:
  egress:
  - hosts: ["./*", "istio-system/*"]
---
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata:
  name: default
  namespace: prod
spec:
  egress:
  - hosts: ["prod/*"]
---
apiVersion: networking.istio.io/v1beta1
kind: Sidecar
metadata:
  name: productpage
  namespace: prod
  creationTimestamp: "2024-01-01T00:00:00Z"
spec:
  workloadSelector:
    labels:
      app: productpage
  ingress:
  - port: {number: 9080, protocol: HTTP, name: somename}
    defaultEndpoint: 127.0.0.1:8080
  egress:
  - port: {number: 3306, protocol: MYSQL, name: egressmysql}
    hosts: ["*/mysql.foo.com"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: v1-pods
  namespace: prod
  creationTimestamp: "2024-02-01T00:00:00Z"
spec:
  workloadSelector:
    labels:
      version: v1
  egress:
  - hosts: ["*/*"]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: ignored
data: {}
`

func writeManifests(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidecars.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func callResolve(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runResolve(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestResolveJSON(t *testing.T) {
	path := writeManifests(t, resolveManifests)
	tests := []struct {
		name string
		args []string
		want resolveOutput
	}{
		{
			name: "selected pod, iptables",
			args: []string{"--namespace", "prod", "--labels", "app=productpage"},
			want: resolveOutput{
				Sidecar: "prod/productpage", Scope: "workload", Conflicts: []string{},
				Egress: []defaults.EffectiveListener{{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "egressmysql",
					CaptureMode: "DEFAULT", Hosts: []string{"*/mysql.foo.com"}, Note: defaults.NoteEnvironmentCapture}},
				Ingress: []defaults.EffectiveListener{{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "somename",
					CaptureMode: "DEFAULT", DefaultEndpoint: "127.0.0.1:8080",
					Note: defaults.NoteEnvironmentCapture + "; " + defaults.NoteInstanceIPBind}},
			},
		},
		{
			name: "the pod annotation overrides --interception-mode",
			args: []string{"--namespace", "prod", "--labels", "app=productpage", "--interception-mode", "TPROXY",
				"--annotations", "sidecar.istio.io/interceptionMode=NONE,other=x"},
			want: resolveOutput{
				Sidecar: "prod/productpage", Scope: "workload", Conflicts: []string{},
				Egress: []defaults.EffectiveListener{{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "egressmysql",
					Bind: "127.0.0.1", CaptureMode: "NONE", Hosts: []string{"*/mysql.foo.com"}}},
				Ingress: []defaults.EffectiveListener{{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "somename",
					CaptureMode: "NONE", DefaultEndpoint: "127.0.0.1:8080", Note: defaults.NoteInstanceIPBind}},
			},
		},
		{
			name: "conflict: the oldest applies, both listed",
			args: []string{"--namespace", "prod", "--labels", "app=productpage,version=v1"},
			want: resolveOutput{
				Sidecar: "prod/productpage", Scope: "workload", Conflicts: []string{"prod/productpage", "prod/v1-pods"},
				Egress: []defaults.EffectiveListener{{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "egressmysql",
					CaptureMode: "DEFAULT", Hosts: []string{"*/mysql.foo.com"}, Note: defaults.NoteEnvironmentCapture}},
				Ingress: []defaults.EffectiveListener{{Direction: "ingress", Port: 9080, Protocol: "HTTP", Name: "somename",
					CaptureMode: "DEFAULT", DefaultEndpoint: "127.0.0.1:8080",
					Note: defaults.NoteEnvironmentCapture + "; " + defaults.NoteInstanceIPBind}},
			},
		},
		{
			name: "namespace-wide, no labels",
			args: []string{"--namespace", "prod"},
			want: resolveOutput{
				Sidecar: "prod/default", Scope: "namespace", Conflicts: []string{},
				Egress:  []defaults.EffectiveListener{{Direction: "egress", CaptureMode: "DEFAULT", Hosts: []string{"prod/*"}, Note: defaults.NoteEnvironmentCapture}},
				Ingress: []defaults.EffectiveListener{},
			},
		},
		{
			name: "mesh default",
			args: []string{"--namespace", "dev", "--labels", "app=productpage"},
			want: resolveOutput{
				Sidecar: "istio-system/default", Scope: "mesh", Conflicts: []string{},
				Egress:  []defaults.EffectiveListener{{Direction: "egress", CaptureMode: "DEFAULT", Hosts: []string{"./*", "istio-system/*"}, Note: defaults.NoteEnvironmentCapture}},
				Ingress: []defaults.EffectiveListener{},
			},
		},
		{
			name: "no Sidecar with another root namespace",
			args: []string{"--namespace", "dev", "--root-namespace", "istio-config"},
			want: resolveOutput{Scope: "none", Conflicts: []string{}, Egress: []defaults.EffectiveListener{}, Ingress: []defaults.EffectiveListener{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := callResolve(t, "", append(append(tc.args, "-o", "json"), path)...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			var got resolveOutput
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveJSONKeys(t *testing.T) {
	path := writeManifests(t, resolveManifests)
	code, stdout, stderr := callResolve(t, "", "--namespace", "dev", "--root-namespace", "nowhere", "-o", "json", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sidecar": `""`, "scope": `"none"`, "conflicts": `[]`, "egress": `[]`, "ingress": `[]`}
	got := map[string]string{}
	for k, v := range raw {
		got[k] = string(v)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
}

func TestResolveText(t *testing.T) {
	code, stdout, stderr := callResolve(t, resolveManifests,
		"--namespace", "prod", "--labels", "app=productpage,version=v1", "--interception-mode", "NONE", "-")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"Sidecar: prod/productpage (scope workload)\n",
		"Conflict: prod/productpage, prod/v1-pods compete for this pod",
		"Interception mode: NONE\n",
		"  - port 3306, protocol MYSQL, name egressmysql, bind 127.0.0.1, capture NONE, hosts */mysql.foo.com\n",
		"  - port 9080, protocol HTTP, name somename, capture NONE, defaultEndpoint 127.0.0.1:8080\n    note: " + defaults.NoteInstanceIPBind + "\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = callResolve(t, resolveManifests, "--namespace", "dev", "--root-namespace", "none-here", "-")
	if code != exitOK || !strings.HasPrefix(stdout, "Sidecar: none (scope none)") {
		t.Errorf("exit %d, output %q; want a none resolution", code, stdout)
	}
}

func TestResolveNamespaceDefaultsToThePods(t *testing.T) {
	manifest := "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: local\nspec:\n  egress:\n  - hosts: [\"./*\"]\n"
	code, stdout, stderr := callResolve(t, manifest, "--namespace", "team-a", "-o", "json", "-")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(stdout, `"sidecar": "team-a/local"`) {
		t.Errorf("a Sidecar without a namespace should live in --namespace:\n%s", stdout)
	}
}

func TestResolveUsageErrors(t *testing.T) {
	path := writeManifests(t, resolveManifests)
	bad := writeManifests(t, "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata:\n  name: x\n  namespace: prod\nspec:\n  egres: []\n")
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"no namespace", []string{path}, "--namespace is required"},
		{"invalid namespace", []string{"--namespace", "Prod", path}, "--namespace"},
		{"no path", []string{"--namespace", "prod"}, "at least one PATH"},
		{"label without =", []string{"--namespace", "prod", "--labels", "app", path}, "--labels"},
		{"label with empty key", []string{"--namespace", "prod", "--labels", "=x", path}, "--labels"},
		{"invalid label value", []string{"--namespace", "prod", "--labels", "app=a b", path}, "--labels"},
		{"duplicate label", []string{"--namespace", "prod", "--labels", "app=a,app=b", path}, "given twice"},
		{"trailing comma", []string{"--namespace", "prod", "--labels", "app=a,", path}, "--labels"},
		{"bad annotation", []string{"--namespace", "prod", "--annotations", "novalue", path}, "--annotations"},
		{"bad interception mode", []string{"--namespace", "prod", "--interception-mode", "IPTABLES", path}, "REDIRECT, TPROXY or NONE"},
		{"bad interception annotation", []string{"--namespace", "prod", "--annotations", "sidecar.istio.io/interceptionMode=none", path}, "REDIRECT, TPROXY or NONE"},
		{"bad output", []string{"--namespace", "prod", "-o", "yaml", path}, "-o must be"},
		{"unknown flag", []string{"--cluster", "--namespace", "prod", path}, "flag provided but not defined"},
		{"missing file", []string{"--namespace", "prod", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
		{"malformed Sidecar", []string{"--namespace", "prod", bad}, "spec.egres"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := callResolve(t, "", tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (stdout %q)", code, exitUsage, stdout)
			}
			if !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tc.wantStderr)
			}
		})
	}
}

func TestResolveHelp(t *testing.T) {
	code, _, stderr := callResolve(t, "", "-h")
	if code != exitOK || !strings.Contains(stderr, "Usage: sidecar-webhook resolve") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr)
	}
}
