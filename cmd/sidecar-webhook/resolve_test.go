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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview/informer"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
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
		{"no path", []string{"--namespace", "prod"}, "at least one PATH is required (or a POD, or --cluster)"},
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
		{"unknown flag", []string{"--bogus", "--namespace", "prod", path}, "flag provided but not defined"},
		{"two pods", []string{"--cluster", "-n", "prod", "a", "b"}, "give one POD"},
		{"a file with --cluster", []string{"--cluster", "-n", "prod", path}, "must name a pod"},
		{"a manifest name with --cluster", []string{"--cluster", "-n", "prod", "sidecars.yaml"}, "must name a pod"},
		{"a pod's labels come from the cluster", []string{"-n", "prod", "--labels", "app=x", "ratings-1"}, "--labels: the labels, annotations and hostNetwork of pod ratings-1 come from the cluster"},
		{"a pod's hostNetwork comes from the cluster", []string{"-n", "prod", "--host-network", "ratings-1"}, "--host-network"},
		{"namespace labels come from the cluster", []string{"--cluster", "-n", "prod", "--namespace-labels", "a=b"}, "--namespace-labels: the namespace's labels come from the cluster"},
		{"a pod without a namespace", []string{"ratings-1"}, "--namespace is required"},
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

// TestResolveArgumentNamesPod: one argument that is no file or directory,
// does not end like a manifest and is a valid pod name is a pod in the
// live cluster; anything else is a PATH.
func TestResolveArgumentNamesPod(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("manifests", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args      []string
		wantPod   string
		wantPaths []string
	}{
		{args: []string{"-n", "prod", "ratings-7d9f8-x2x"}, wantPod: "ratings-7d9f8-x2x"},
		{args: []string{"-n", "prod", "web.v2"}, wantPod: "web.v2"},
		{args: []string{"-n", "prod", "manifests"}, wantPaths: []string{"manifests"}},
		{args: []string{"-n", "prod", "missing.yaml"}, wantPaths: []string{"missing.yaml"}},
		{args: []string{"-n", "prod", "Missing"}, wantPaths: []string{"Missing"}},
		{args: []string{"-n", "prod", "-"}, wantPaths: []string{"-"}},
		{args: []string{"-n", "prod", "a", "b"}, wantPaths: []string{"a", "b"}},
		{args: []string{"--cluster", "-n", "prod", "--labels", "app=x"}},
		// Flags after the arguments, as with kubectl.
		{args: []string{"-n", "prod", "ratings-1", "-o", "json"}, wantPod: "ratings-1"},
		{args: []string{"manifests", "-n", "prod", "-"}, wantPaths: []string{"manifests", "-"}},
	} {
		var stderr bytes.Buffer
		cfg, err := parseResolveFlags(tc.args, &stderr)
		if err != nil {
			t.Errorf("%v: %v (%s)", tc.args, err, stderr.String())
			continue
		}
		if slices.Contains(tc.args, "-o") && cfg.output != "json" {
			t.Errorf("%v: output %q, want json", tc.args, cfg.output)
		}
		if cfg.pod != tc.wantPod || cfg.cluster != (tc.wantPaths == nil) || !slices.Equal(cfg.paths, tc.wantPaths) {
			t.Errorf("%v: pod %q, cluster %v, paths %v; want pod %q, paths %v", tc.args, cfg.pod, cfg.cluster, cfg.paths, tc.wantPod, tc.wantPaths)
		}
	}
}

// clusterObjects is a cluster: namespace prod with injection, Istio's mesh
// config with interception NONE, a Sidecar for app=ratings, and pods.
func clusterObjects(t *testing.T) []client.Object {
	t.Helper()
	s, errs := sidecar.Decode([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"ratings","namespace":"prod","creationTimestamp":"2024-01-01T00:00:00Z"},
		"spec":{"workloadSelector":{"labels":{"app":"ratings"}},"egress":[{"port":{"number":3306,"protocol":"MYSQL","name":"mysql"},"hosts":["*/mysql.foo.com"]}]}}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	pod := func(name string, labels, annotations map[string]string, hostNetwork bool, ips ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name, Labels: labels, Annotations: annotations},
			Spec: corev1.PodSpec{HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		for _, ip := range ips {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
		}
		return p
	}
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"istio-injection": "enabled"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio"},
			Data: map[string]string{"mesh": "defaultConfig:\n  interceptionMode: NONE\n"}},
		s,
		// Admitted before the Sidecar existed: the webhook recorded scope
		// none, and nothing has updated it since.
		pod("ratings-1", map[string]string{"app": "ratings"}, map[string]string{resolve.AnnotationSidecarScope: "none", "other": "kept"}, false, "fd00::5"),
		pod("ratings-2", map[string]string{"app": "ratings"}, map[string]string{resolve.AnnotationSidecarScope: "workload", resolve.AnnotationSidecar: "prod/ratings"}, false, "10.0.0.7"),
		pod("node-agent", map[string]string{"app": "ratings"}, nil, true, "10.0.0.1"),
	}
}

// resolveInCluster runs resolve with args against a fake cluster.
func resolveInCluster(t *testing.T, objects []client.Object, args ...string) (resolveOutput, string, error) {
	t.Helper()
	scheme, err := informer.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
	var stderr bytes.Buffer
	cfg, err := parseResolveFlags(args, &stderr)
	if err != nil {
		t.Fatalf("%v: %v (%s)", args, err, stderr.String())
	}
	if !cfg.cluster {
		t.Fatalf("%v: not read from the cluster", args)
	}
	in, err := clusterInput(context.Background(), reader, cfg)
	if err != nil {
		return resolveOutput{}, "", err
	}
	out := resolveFor(in, cfg)
	var text bytes.Buffer
	if err := writeResolution(&text, out); err != nil {
		t.Fatal(err)
	}
	return out, text.String(), nil
}

// TestResolveFromCluster: a running pod is judged with its own labels,
// annotations, hostNetwork and addresses, as a running pod; the mesh config
// comes from the cluster; the pod's annotations are compared with what
// resolves now.
func TestResolveFromCluster(t *testing.T) {
	objects := clusterObjects(t)
	mysql := []defaults.EffectiveListener{{Direction: "egress", Port: 3306, Protocol: "MYSQL", Name: "mysql", Hosts: []string{"*/mysql.foo.com"},
		CaptureMode: "DEFAULT", BindToPort: true}}
	tests := []struct {
		name string
		args []string
		want resolveOutput
	}{
		{
			name: "a pod whose annotations are out of date",
			args: []string{"-n", "prod", "ratings-1"},
			want: resolveOutput{
				Pod: "prod/ratings-1", Proxy: mesh.SidecarProxy, ProxyReason: "recorded when the pod was admitted",
				Sidecar: "prod/ratings", Scope: "workload", Conflicts: []string{},
				// Interception NONE from the cluster's mesh config; IPv6
				// from the pod's address.
				InterceptionMode: "NONE", IPFamily: mesh.IPv6,
				Egress:  withBinds(mysql, "::1"),
				Ingress: []defaults.EffectiveListener{},
				Annotations: &annotationCheck{Agree: false,
					Pod: map[string]string{resolve.AnnotationSidecarScope: "none"},
					Now: map[string]string{resolve.AnnotationSidecarScope: "workload", resolve.AnnotationSidecar: "prod/ratings"}},
			},
		},
		{
			name: "--ip-family wins over the pod's addresses",
			args: []string{"-n", "prod", "--ip-family", "ipv4", "ratings-1"},
			want: resolveOutput{
				Pod: "prod/ratings-1", Proxy: mesh.SidecarProxy, ProxyReason: "recorded when the pod was admitted",
				Sidecar: "prod/ratings", Scope: "workload", Conflicts: []string{}, InterceptionMode: "NONE", IPFamily: mesh.IPv4,
				Egress: withBinds(mysql, "127.0.0.1"), Ingress: []defaults.EffectiveListener{},
				Annotations: &annotationCheck{Agree: false,
					Pod: map[string]string{resolve.AnnotationSidecarScope: "none"},
					Now: map[string]string{resolve.AnnotationSidecarScope: "workload", resolve.AnnotationSidecar: "prod/ratings"}},
			},
		},
		{
			name: "a pod whose annotations agree",
			args: []string{"--cluster", "--namespace", "prod", "ratings-2"},
			want: resolveOutput{
				Pod: "prod/ratings-2", Proxy: mesh.SidecarProxy, ProxyReason: "recorded when the pod was admitted",
				Sidecar: "prod/ratings", Scope: "workload", Conflicts: []string{}, InterceptionMode: "NONE", IPFamily: mesh.IPv4,
				Egress: withBinds(mysql, "127.0.0.1"), Ingress: []defaults.EffectiveListener{},
				Annotations: &annotationCheck{Agree: true,
					Pod: map[string]string{resolve.AnnotationSidecarScope: "workload", resolve.AnnotationSidecar: "prod/ratings"},
					Now: map[string]string{resolve.AnnotationSidecarScope: "workload", resolve.AnnotationSidecar: "prod/ratings"}},
			},
		},
		{
			name: "a hostNetwork pod: no proxy, no annotations",
			args: []string{"-n", "prod", "node-agent"},
			want: resolveOutput{
				Pod: "prod/node-agent", Proxy: mesh.NoProxy, ProxyReason: "hostNetwork pods are never injected",
				Conflicts: []string{}, IPFamily: mesh.IPv4, Egress: []defaults.EffectiveListener{}, Ingress: []defaults.EffectiveListener{},
				Annotations: &annotationCheck{Agree: true, Pod: map[string]string{}, Now: map[string]string{}},
			},
		},
		{
			name: "labels: a pod about to be created",
			args: []string{"--cluster", "-n", "prod", "--labels", "app=ratings"},
			want: resolveOutput{
				Proxy: mesh.SidecarProxy, ProxyReason: "injected by the default injector selectors (namespace labelled istio-injection=enabled)",
				Sidecar: "prod/ratings", Scope: "workload", Conflicts: []string{}, InterceptionMode: "NONE", IPFamily: mesh.IPv4,
				Egress: withBinds(mysql, "127.0.0.1"), Ingress: []defaults.EffectiveListener{},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := resolveInCluster(t, objects, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}

	_, text, err := resolveInCluster(t, objects, "-n", "prod", "ratings-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Pod: prod/ratings-1 (read from the cluster)\n",
		"Sidecar: prod/ratings (scope workload)\n",
		"Annotations: the pod's sidecar-webhook.io/ annotations disagree with this resolution:\n" +
			"  sidecar-webhook.io/sidecar: absent on the pod, \"prod/ratings\" now\n" +
			"  sidecar-webhook.io/sidecar-scope: \"none\" on the pod, \"workload\" now\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	_, text, _ = resolveInCluster(t, objects, "-n", "prod", "ratings-2")
	if !strings.Contains(text, "Annotations: the pod's sidecar-webhook.io/ annotations agree with this resolution\n") {
		t.Errorf("text:\n%s", text)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "prod", "nope"}, `pod prod/nope not found (nor a file or directory named "nope")`},
		{[]string{"-n", "staging", "ratings-1"}, `namespace "staging" does not exist in the cluster`},
	} {
		if _, _, err := resolveInCluster(t, objects, tc.args...); err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// withBinds sets the binds of listeners that bind under interception NONE.
func withBinds(listeners []defaults.EffectiveListener, binds ...string) []defaults.EffectiveListener {
	out := slices.Clone(listeners)
	for i := range out {
		out[i].Binds = binds
	}
	return out
}
