//go:build controlplane

package chart_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// rendering is one `helm template` output, read by kind and name.
type rendering []*unstructured.Unstructured

func (r rendering) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of kind; the test fails if there is not
// exactly one.
func (r rendering) one(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	objs := r.ofKind(kind)
	if len(objs) != 1 {
		t.Fatalf("%d objects of kind %s, want 1", len(objs), kind)
	}
	return objs[0]
}

// container is the Deployment's only container.
func (r rendering) container(t *testing.T) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(r.one(t, "Deployment").Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0].(map[string]any)
}

func (r rendering) args(t *testing.T) []string {
	t.Helper()
	a, _, _ := unstructured.NestedStringSlice(r.container(t), "args")
	return a
}

// webhooks returns every entry of both configurations.
func (r rendering) webhooks(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		hooks, _, _ := unstructured.NestedSlice(r.one(t, kind).Object, "webhooks")
		for _, h := range hooks {
			out = append(out, h.(map[string]any))
		}
	}
	return out
}

func hookPath(h map[string]any) string {
	p, _, _ := unstructured.NestedString(h, "clientConfig", "service", "path")
	return p
}

func str(o map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedFieldNoCopy(o, fields...)
	return fmt.Sprint(s)
}

// checkConsistent: whatever the values, the objects refer to each other
// correctly, and everything namespaced is in the webhook's namespace
// (except the mesh-config reader, in istiod's).
func checkConsistent(t *testing.T, r rendering, namespace, fullname, istioNamespace string) {
	t.Helper()
	for _, o := range r {
		want := namespace
		switch {
		case strings.HasSuffix(o.GetName(), "-mesh-config-reader"):
			want = istioNamespace
		case slices.Contains([]string{"Namespace", "ClusterRole", "ClusterRoleBinding",
			"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}, o.GetKind()):
			want = ""
		}
		if o.GetNamespace() != want {
			t.Errorf("%s in namespace %q, want %q", testenv.ObjectKey(o), o.GetNamespace(), want)
		}
		if !strings.HasPrefix(o.GetName(), fullname) && o.GetKind() != "Namespace" {
			t.Errorf("%s: name does not start with %q", testenv.ObjectKey(o), fullname)
		}
	}
	dep := r.one(t, "Deployment")
	sa := r.one(t, "ServiceAccount")
	if got := str(dep.Object, "spec", "template", "spec", "serviceAccountName"); got != sa.GetName() {
		t.Errorf("Deployment runs as ServiceAccount %q, the chart creates %q", got, sa.GetName())
	}
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, b := range r.ofKind(kind) {
			subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
			for _, s := range subjects {
				s := s.(map[string]any)
				if s["name"] != sa.GetName() || s["namespace"] != sa.GetNamespace() {
					t.Errorf("%s binds %s/%s, the ServiceAccount is %s/%s", testenv.ObjectKey(b), s["namespace"], s["name"], sa.GetNamespace(), sa.GetName())
				}
			}
		}
	}
	svc := r.one(t, "Service")
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	for k, v := range selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %v does not select the pods (labels %v)", selector, podLabels)
		}
	}

	var serving *unstructured.Unstructured
	for _, c := range r.ofKind("Certificate") {
		if strings.HasSuffix(c.GetName(), "-serving") {
			serving = c
		}
	}
	if serving == nil {
		t.Fatal("no serving Certificate")
	}
	volumes, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	if len(volumes) != 1 || str(volumes[0].(map[string]any), "secret", "secretName") != str(serving.Object, "spec", "secretName") {
		t.Errorf("Deployment volumes %v do not mount the serving Certificate's Secret %s", volumes, str(serving.Object, "spec", "secretName"))
	}
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if !slices.Contains(dnsNames, svc.GetName()+"."+svc.GetNamespace()+".svc") {
		t.Errorf("serving Certificate dnsNames %q lack the Service's %s.%s.svc", dnsNames, svc.GetName(), svc.GetNamespace())
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		c := r.one(t, kind)
		if c.GetName() != fullname {
			t.Errorf("%s named %q, want %q", kind, c.GetName(), fullname)
		}
		if got, want := c.GetAnnotations()["cert-manager.io/inject-ca-from"], serving.GetNamespace()+"/"+serving.GetName(); got != want {
			t.Errorf("%s: inject-ca-from %q, want %q", kind, got, want)
		}
	}
	for _, h := range r.webhooks(t) {
		if str(h, "clientConfig", "service", "name") != svc.GetName() || str(h, "clientConfig", "service", "namespace") != svc.GetNamespace() {
			t.Errorf("webhook %s calls Service %s/%s, the chart's is %s/%s", h["name"],
				str(h, "clientConfig", "service", "namespace"), str(h, "clientConfig", "service", "name"), svc.GetNamespace(), svc.GetName())
		}
		exprs, _, _ := unstructured.NestedSlice(h, "namespaceSelector", "matchExpressions")
		if len(exprs) == 0 {
			t.Errorf("webhook %s has no namespaceSelector", h["name"])
			continue
		}
		values, _, _ := unstructured.NestedStringSlice(exprs[0].(map[string]any), "values")
		if str(exprs[0].(map[string]any), "operator") != "NotIn" || !slices.Contains(values, namespace) {
			t.Errorf("webhook %s does not exclude its own namespace %s first: %v", h["name"], namespace, exprs[0])
		}
	}
}

// TestValues: each value a user tunes changes what it says, and nothing
// breaks the cross-references (checkConsistent runs on every rendering).
func TestValues(t *testing.T) {
	const ns = "sidecar-webhook-system"
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	cases := []struct {
		name           string
		release        string // default defaultRelease
		args           []string
		namespace      string // the webhook's; default ns
		releaseNS      string // helm --namespace; default "default"
		fullname       string // default "sidecar-webhook"
		istioNamespace string // default istio-system
		check          func(t *testing.T, r rendering)
	}{
		{name: "defaults", check: func(t *testing.T, r rendering) {
			if got := str(r.container(t), "image"); got != "sidecar-webhook:latest" {
				t.Errorf("image %q, want sidecar-webhook:latest (appVersion)", got)
			}
		}},
		{name: "image by tag", args: []string{"--set", "image.repository=registry.example/sw", "--set", "image.tag=v1.4.0", "--set", "image.pullPolicy=Always"},
			check: func(t *testing.T, r rendering) {
				c := r.container(t)
				if str(c, "image") != "registry.example/sw:v1.4.0" || str(c, "imagePullPolicy") != "Always" {
					t.Errorf("image %s (%s), want registry.example/sw:v1.4.0 (Always)", str(c, "image"), str(c, "imagePullPolicy"))
				}
			}},
		{name: "image by digest", args: []string{"--set", "image.repository=registry.example/sw", "--set", "image.tag=v1.4.0", "--set", "image.digest=" + digest},
			check: func(t *testing.T, r rendering) {
				if got := str(r.container(t), "image"); got != "registry.example/sw@"+digest {
					t.Errorf("image %q, want registry.example/sw@%s", got, digest)
				}
			}},
		{name: "replicas and resources", args: []string{"--set", "replicaCount=3", "--set", "resources.requests.cpu=250m", "--set", "resources.limits.memory=1Gi", "--set", "goMemLimit=800MiB"},
			check: func(t *testing.T, r rendering) {
				if got := str(r.one(t, "Deployment").Object, "spec", "replicas"); got != "3" {
					t.Errorf("replicas %s, want 3", got)
				}
				c := r.container(t)
				if str(c, "resources", "requests", "cpu") != "250m" || str(c, "resources", "limits", "memory") != "1Gi" || str(c, "resources", "requests", "memory") != "256Mi" {
					t.Errorf("resources %v", c["resources"])
				}
				if !strings.Contains(fmt.Sprint(c["env"]), "value:800MiB") {
					t.Errorf("env %v lacks GOMEMLIMIT=800MiB", c["env"])
				}
			}},
		{name: "enforcement", args: []string{"--set", "enforcement.mode=warn", "--set", "enforcement.allowNamespaceOverride=true", "--set", "podConflicts=deny", "--set", "reconcilePods=false"},
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, []string{"--enforcement=warn", "--allow-namespace-override=true", "--pod-conflicts=deny", "--reconcile-pods=false"}, nil)
			}},
		{name: "root namespace and istio", args: []string{"--set", "rootNamespace=istio-config", "--set", "istio.namespace=istio-cp", "--set", "istio.revision=canary"},
			istioNamespace: "istio-cp",
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, []string{"--root-namespace=istio-config", "--istio-namespace=istio-cp", "--istio-revision=canary"}, nil)
			}},
		{name: "defaults pass no optional flags",
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, nil, []string{"--root-namespace", "--istio-namespace", "--istio-revision", "--cluster-domain", "-v", "--log-development"})
			}},
		{name: "log level", args: []string{"--set", "log.level=1", "--set", "log.development=true"},
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, []string{"-v=1", "--log-development"}, nil)
			}},
		{name: "namespace", args: []string{"--set", "namespace.name=platform-webhooks"}, namespace: "platform-webhooks",
			check: func(t *testing.T, r rendering) {
				if got := r.one(t, "Namespace").GetName(); got != "platform-webhooks" {
					t.Errorf("Namespace %s, want platform-webhooks", got)
				}
				dns, _, _ := unstructured.NestedStringSlice(r.ofKind("Certificate")[len(r.ofKind("Certificate"))-1].Object, "spec", "dnsNames")
				if !slices.Contains(dns, "sidecar-webhook.platform-webhooks.svc.cluster.local") {
					t.Errorf("dnsNames %q", dns)
				}
			}},
		{name: "cluster domain", args: []string{"--set", "clusterDomain=corp.example"},
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, []string{"--cluster-domain=corp.example"}, nil)
				var serving *unstructured.Unstructured
				for _, c := range r.ofKind("Certificate") {
					if strings.HasSuffix(c.GetName(), "-serving") {
						serving = c
					}
				}
				dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
				if !slices.Contains(dns, "sidecar-webhook.sidecar-webhook-system.svc.corp.example") {
					t.Errorf("dnsNames %q lack the cluster domain", dns)
				}
			}},
		{name: "existing namespace", args: []string{"--set", "namespace.create=false"},
			check: func(t *testing.T, r rendering) {
				if n := len(r.ofKind("Namespace")); n != 0 {
					t.Errorf("%d Namespaces rendered with namespace.create=false", n)
				}
			}},
		{name: "the release's namespace", args: []string{"--set", "namespace.name=", "--set", "namespace.create=false"},
			releaseNS: "team-a", namespace: "team-a"},
		{name: "release name", release: "edge", fullname: "edge-sidecar-webhook",
			check: func(t *testing.T, r rendering) {
				if got := str(r.one(t, "Deployment").Object, "spec", "template", "metadata", "labels", "app.kubernetes.io/name"); got != "sidecar-webhook" {
					t.Errorf("pod label app.kubernetes.io/name=%s, want sidecar-webhook", got)
				}
			}},
		{name: "fullname override", release: "edge", args: []string{"--set", "fullnameOverride=sw"}, fullname: "sw"},
		{name: "pod webhook", args: []string{"--set", "podWebhook.failurePolicy=Fail", "--set", "podWebhook.timeoutSeconds=4"},
			check: func(t *testing.T, r rendering) {
				var pods int
				for _, h := range r.webhooks(t) {
					want := [2]string{"Fail", "5"} // the Sidecar entries
					if hookPath(h) == "/mutate/pods" {
						pods++
						want = [2]string{"Fail", "4"}
					}
					if got := [2]string{str(h, "failurePolicy"), str(h, "timeoutSeconds")}; got != want {
						t.Errorf("webhook %s: failurePolicy/timeoutSeconds %v, want %v", h["name"], got, want)
					}
				}
				if pods != 6 {
					t.Errorf("%d pod entries, want 6", pods)
				}
			}},
		{name: "excluded namespaces", args: []string{"--set-json", `excludedNamespaces=["kube-system","monitoring"]`},
			check: func(t *testing.T, r rendering) {
				for _, h := range r.webhooks(t) {
					exprs, _, _ := unstructured.NestedSlice(h, "namespaceSelector", "matchExpressions")
					values, _, _ := unstructured.NestedStringSlice(exprs[0].(map[string]any), "values")
					if diff := cmp.Diff([]string{ns, "kube-system", "monitoring"}, values); diff != "" {
						t.Errorf("webhook %s excludes (-want +got):\n%s", h["name"], diff)
					}
				}
			}},
		{name: "metrics off", args: []string{"--set", "metrics.enabled=false"},
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, []string{"--metrics-bind-address=0"}, nil)
				if s := fmt.Sprint(r.container(t)["ports"], r.one(t, "Service").Object["spec"]); strings.Contains(s, "metrics") {
					t.Errorf("a metrics port is still rendered: %s", s)
				}
				ann, _, _ := unstructured.NestedStringMap(r.one(t, "Deployment").Object, "spec", "template", "metadata", "annotations")
				if _, ok := ann["prometheus.io/scrape"]; ok {
					t.Errorf("scrape annotations kept: %v", ann)
				}
			}},
		{name: "metrics port", args: []string{"--set", "metrics.port=9090"},
			check: func(t *testing.T, r rendering) {
				wantArgs(t, r, []string{"--metrics-bind-address=:9090"}, nil)
				c := r.container(t)
				svc := r.one(t, "Service").Object
				ann, _, _ := unstructured.NestedStringMap(r.one(t, "Deployment").Object, "spec", "template", "metadata", "annotations")
				if !strings.Contains(fmt.Sprint(c["ports"]), "containerPort:9090") || !strings.Contains(fmt.Sprint(svc["spec"]), "port:9090") || ann["prometheus.io/port"] != "9090" {
					t.Errorf("port 9090 not everywhere: container %v, Service %v, annotations %v", c["ports"], svc["spec"], ann)
				}
			}},
		{name: "no disruption budget", args: []string{"--set", "podDisruptionBudget.enabled=false", "--set", "replicaCount=1"},
			check: func(t *testing.T, r rendering) {
				if n := len(r.ofKind("PodDisruptionBudget")); n != 0 {
					t.Errorf("%d PodDisruptionBudgets", n)
				}
			}},
		{name: "existing issuer", args: []string{"--set", "certManager.issuerRef.name=corp-ca", "--set", "certManager.issuerRef.kind=ClusterIssuer"},
			check: func(t *testing.T, r rendering) {
				if n := len(r.ofKind("Issuer")); n != 0 {
					t.Errorf("%d Issuers rendered with an existing issuer", n)
				}
				certs := r.ofKind("Certificate")
				if len(certs) != 1 {
					t.Fatalf("%d Certificates, want the serving one only", len(certs))
				}
				ref, _, _ := unstructured.NestedStringMap(certs[0].Object, "spec", "issuerRef")
				if diff := cmp.Diff(map[string]string{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "corp-ca"}, ref); diff != "" {
					t.Errorf("issuerRef (-want +got):\n%s", diff)
				}
			}},
		{name: "scheduling", args: []string{"--set", "priorityClassName=system-cluster-critical", "--set", "nodeSelector.pool=system",
			"--set-json", `tolerations=[{"key":"dedicated","operator":"Equal","value":"system","effect":"NoSchedule"}]`},
			check: func(t *testing.T, r rendering) {
				spec, _, _ := unstructured.NestedMap(r.one(t, "Deployment").Object, "spec", "template", "spec")
				if spec["priorityClassName"] != "system-cluster-critical" || fmt.Sprint(spec["nodeSelector"]) != "map[pool:system]" ||
					!strings.Contains(fmt.Sprint(spec["tolerations"]), "dedicated") {
					t.Errorf("scheduling fields: priorityClassName %v nodeSelector %v tolerations %v", spec["priorityClassName"], spec["nodeSelector"], spec["tolerations"])
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			release, namespace, releaseNS, fullname, istioNS := c.release, c.namespace, c.releaseNS, c.fullname, c.istioNamespace
			if release == "" {
				release = defaultRelease
			}
			if releaseNS == "" {
				releaseNS = "default"
			}
			if namespace == "" {
				namespace = ns
			}
			if fullname == "" {
				fullname = "sidecar-webhook"
			}
			if istioNS == "" {
				istioNS = "istio-system"
			}
			r := rendering(render(t, release, releaseNS, c.args...))
			checkConsistent(t, r, namespace, fullname, istioNS)
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

// wantArgs checks that the server's args include every one of want and no
// arg starting with any of absent ("-v" matches "-v=1", not "-verbose").
func wantArgs(t *testing.T, r rendering, want, absent []string) {
	t.Helper()
	args := r.args(t)
	for _, w := range want {
		if !slices.Contains(args, w) {
			t.Errorf("args %q lack %s", args, w)
		}
	}
	for _, a := range args {
		for _, p := range absent {
			if a == p || strings.HasPrefix(a, p+"=") {
				t.Errorf("args %q include %s", args, a)
			}
		}
	}
}

// TestValuesRejected: values.schema.json and the templates refuse what
// would install something broken, with a message that names the value.
func TestValuesRejected(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--set", "podWebhook.failurePolicy=Sometimes"}, "failurePolicy"},
		{[]string{"--set", "enforcement.mode=audit"}, "mode"},
		{[]string{"--set", "replicas=3"}, "replicas"}, // a typo of replicaCount
		{[]string{"--set", "image.digest=latest"}, "digest"},
		{[]string{"--set", "podWebhook.timeoutSeconds=31"}, "timeoutSeconds"},
		{[]string{"--set", "metrics.port=9443"}, "port"},
		{[]string{"--set", "replicaCount=1"}, "minAvailable (1) must be below replicaCount (1)"},
	}
	for _, c := range cases {
		_, err := testenv.RenderChart(ctx(t), tools.helm, tools.chart, defaultRelease, "default", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("helm template %q: got %v, want an error mentioning %q", c.args, err, c.wantErr)
		}
	}
}
