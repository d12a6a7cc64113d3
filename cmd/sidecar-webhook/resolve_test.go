package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
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
	assumed := func(ns string) string {
		return "injected by the default injector selectors (namespace labelled istio-injection=enabled); namespace " + ns +
			" is not in PATH: assumed labelled istio-injection=enabled (pass its Namespace or --namespace-labels)"
	}
	productpageEgress := func(l defaults.EffectiveListener) []defaults.EffectiveListener {
		l.Direction, l.Port, l.Protocol, l.Name, l.Hosts = "egress", 3306, "MYSQL", "egressmysql", []string{"*/mysql.foo.com"}
		return []defaults.EffectiveListener{l}
	}
	productpageIngress := func(l defaults.EffectiveListener) []defaults.EffectiveListener {
		l.Direction, l.Port, l.Protocol, l.Name, l.DefaultEndpoint = "ingress", 9080, "HTTP", "somename", "127.0.0.1:8080"
		return []defaults.EffectiveListener{l}
	}
	iptables := defaults.EffectiveListener{CaptureMode: "DEFAULT", Note: defaults.NoteIPTables}
	tests := []struct {
		name string
		args []string
		want resolveOutput
	}{
		{
			name: "selected pod, iptables",
			args: []string{"--namespace", "prod", "--labels", "app=productpage"},
			want: resolveOutput{
				Proxy: mesh.SidecarProxy, ProxyReason: assumed("prod"), InterceptionMode: "REDIRECT", IPFamily: mesh.IPv4,
				Sidecar: "prod/productpage", Scope: "workload", Conflicts: []string{},
				Egress:  productpageEgress(iptables),
				Ingress: productpageIngress(iptables),
			},
		},
		{
			name: "the pod annotation overrides the mesh default; every listener binds under NONE; IPv6 loopback",
			args: []string{"--namespace", "prod", "--labels", "app=productpage", "--ip-family", "ipv6",
				"--annotations", "sidecar.istio.io/interceptionMode=NONE,other=x"},
			want: resolveOutput{
				Proxy: mesh.SidecarProxy, ProxyReason: assumed("prod"), InterceptionMode: "NONE", IPFamily: mesh.IPv6,
				Sidecar: "prod/productpage", Scope: "workload", Conflicts: []string{},
				Egress: productpageEgress(defaults.EffectiveListener{CaptureMode: "DEFAULT", BindToPort: true, Binds: []string{"::1"}}),
				Ingress: productpageIngress(defaults.EffectiveListener{CaptureMode: "DEFAULT", BindToPort: true,
					Note: defaults.NoteInstanceIP + "; " + defaults.NoteServiceInbound}),
			},
		},
		{
			name: "conflict: the oldest applies, both listed",
			args: []string{"--namespace", "prod", "--labels", "app=productpage,version=v1"},
			want: resolveOutput{
				Proxy: mesh.SidecarProxy, ProxyReason: assumed("prod"), InterceptionMode: "REDIRECT", IPFamily: mesh.IPv4,
				Sidecar: "prod/productpage", Scope: "workload", Conflicts: []string{"prod/productpage", "prod/v1-pods"},
				Egress:  productpageEgress(iptables),
				Ingress: productpageIngress(iptables),
			},
		},
		{
			name: "namespace-wide, no labels",
			args: []string{"--namespace", "prod"},
			want: resolveOutput{
				Proxy: mesh.SidecarProxy, ProxyReason: assumed("prod"), InterceptionMode: "REDIRECT", IPFamily: mesh.IPv4,
				Sidecar: "prod/default", Scope: "namespace", Conflicts: []string{},
				Egress:  []defaults.EffectiveListener{{Direction: "egress", CaptureMode: "DEFAULT", Hosts: []string{"prod/*"}, Note: defaults.NotePortless + "; " + defaults.NoteIPTables}},
				Ingress: []defaults.EffectiveListener{},
			},
		},
		{
			name: "mesh default",
			args: []string{"--namespace", "dev", "--labels", "app=productpage"},
			want: resolveOutput{
				Proxy: mesh.SidecarProxy, ProxyReason: assumed("dev"), InterceptionMode: "REDIRECT", IPFamily: mesh.IPv4,
				Sidecar: "istio-system/default", Scope: "mesh", Conflicts: []string{},
				Egress:  []defaults.EffectiveListener{{Direction: "egress", CaptureMode: "DEFAULT", Hosts: []string{"./*", "istio-system/*"}, Note: defaults.NotePortless + "; " + defaults.NoteIPTables}},
				Ingress: []defaults.EffectiveListener{},
			},
		},
		{
			name: "no Sidecar with another root namespace",
			args: []string{"--namespace", "dev", "--root-namespace", "istio-config"},
			want: resolveOutput{Proxy: mesh.SidecarProxy, ProxyReason: assumed("dev"), InterceptionMode: "REDIRECT", IPFamily: mesh.IPv4,
				Scope: "none", Conflicts: []string{}, Egress: []defaults.EffectiveListener{}, Ingress: []defaults.EffectiveListener{}},
		},
		{
			name: "a namespace without injection labels: no proxy, no Sidecar",
			args: []string{"--namespace", "prod", "--namespace-labels", "team=a", "--labels", "app=productpage"},
			want: resolveOutput{Proxy: mesh.NoProxy, ProxyReason: "no injector webhook selects the pod (no injector is installed; judged by the default injector selectors)",
				IPFamily: mesh.IPv4, Conflicts: []string{}, Egress: []defaults.EffectiveListener{}, Ingress: []defaults.EffectiveListener{}},
		},
		{
			name: "a hostNetwork pod has no proxy",
			args: []string{"--namespace", "prod", "--host-network", "--labels", "app=productpage"},
			want: resolveOutput{Proxy: mesh.NoProxy, ProxyReason: "hostNetwork pods are never injected; namespace prod is not in PATH: assumed labelled istio-injection=enabled (pass its Namespace or --namespace-labels)",
				IPFamily: mesh.IPv4, Conflicts: []string{}, Egress: []defaults.EffectiveListener{}, Ingress: []defaults.EffectiveListener{}},
		},
		{
			name: "a gateway gets no Sidecar",
			args: []string{"--namespace", "prod", "--labels", "app=productpage", "--annotations", "inject.istio.io/templates=gateway"},
			want: resolveOutput{Proxy: mesh.GatewayProxy, ProxyReason: assumed("prod"), IPFamily: mesh.IPv4, Scope: "gateway",
				Conflicts: []string{}, Egress: []defaults.EffectiveListener{}, Ingress: []defaults.EffectiveListener{}},
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

// TestResolveReadsClusterStateFromFiles: the Namespace, Istio's injector
// configurations and the mesh config in PATH decide, as in the cluster.
func TestResolveReadsClusterStateFromFiles(t *testing.T) {
	state := resolveManifests + `---
apiVersion: v1
kind: Namespace
metadata:
  name: prod
  labels:
    istio.io/rev: stable
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: istio-canary
  namespace: istio-system
data:
  mesh: |
    defaultConfig:
      interceptionMode: NONE
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: istio-sidecar-injector-canary
  labels:
    istio.io/rev: canary
webhooks:
- name: rev.namespace.sidecar-injector.istio.io
  admissionReviewVersions: ["v1"]
  sideEffects: None
  clientConfig: {url: "https://istiod-canary.istio-system:443/inject"}
  rules:
  - operations: ["CREATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
  namespaceSelector:
    matchExpressions:
    - {key: istio.io/rev, operator: In, values: ["canary"]}
    - {key: istio-injection, operator: DoesNotExist}
`
	path := writeManifests(t, state)
	// Namespace prod selects revision stable, which no installed injector serves.
	code, stdout, stderr := callResolve(t, "", "--namespace", "prod", "--labels", "app=productpage", "-o", "json", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var got resolveOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Proxy != mesh.NoProxy || got.Sidecar != "" || !strings.Contains(got.ProxyReason, "istio-sidecar-injector-canary") {
		t.Errorf("revision stable with only canary installed: %+v; want no proxy, naming the installed injector", got)
	}
	// With the canary revision, the pod is injected and canary's mesh
	// config (interception NONE) applies.
	code, stdout, stderr = callResolve(t, "", "--namespace", "prod", "--namespace-labels", "istio.io/rev=canary", "--istio-revision", "canary",
		"--labels", "app=productpage", "-o", "json", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	got = resolveOutput{}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Proxy != mesh.SidecarProxy || got.Sidecar != "prod/productpage" || got.InterceptionMode != mesh.InterceptionNone {
		t.Errorf("canary: %+v; want a sidecar with prod/productpage under interception NONE", got)
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
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"conflicts", "egress", "ingress", "interceptionMode", "ipFamily", "proxy", "proxyReason", "scope", "sidecar"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("JSON keys (-want +got):\n%s", diff)
	}
}

func TestResolveText(t *testing.T) {
	code, stdout, stderr := callResolve(t, resolveManifests,
		"--namespace", "prod", "--labels", "app=productpage,version=v1", "--interception-mode", "NONE", "--ip-family", "dual", "-")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"Proxy: sidecar (injected by the default injector selectors",
		"Sidecar: prod/productpage (scope workload)\n",
		"Conflict: prod/productpage, prod/v1-pods compete for this pod",
		"Interception mode: NONE; IP family: dual\n",
		"  - port 3306, protocol MYSQL, name egressmysql, binds 127.0.0.1 and ::1, captureMode DEFAULT, hosts */mysql.foo.com\n",
		"  - port 9080, protocol HTTP, name somename, binds the pod's IP, captureMode DEFAULT, defaultEndpoint 127.0.0.1:8080\n    note: " + defaults.NoteInstanceIP,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, _ = callResolve(t, resolveManifests, "--namespace", "dev", "--root-namespace", "none-here", "-")
	if code != exitOK || !strings.Contains(stdout, "Sidecar: none (scope none)") {
		t.Errorf("exit %d, output %q; want a none resolution", code, stdout)
	}
	code, stdout, _ = callResolve(t, resolveManifests, "--namespace", "dev", "--namespace-labels", "istio-injection=disabled", "-")
	if code != exitOK || !strings.HasPrefix(stdout, "Proxy: none (") {
		t.Errorf("exit %d, output %q; want no proxy", code, stdout)
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
		{"bad IP family", []string{"--namespace", "prod", "--ip-family", "ipv5", path}, "--ip-family"},
		{"bad namespace labels", []string{"--namespace", "prod", "--namespace-labels", "a", path}, "--namespace-labels"},
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
