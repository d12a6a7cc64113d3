//go:build controlplane

package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// objectRef names one object an installation renders.
type objectRef struct {
	gvk             schema.GroupVersionKind
	namespace, name string
}

func (r objectRef) String() string {
	s := r.gvk.Kind + " "
	if r.namespace != "" {
		s += r.namespace + "/"
	}
	return s + r.name
}

// kubectlType is the type argument of `kubectl get`: kind.version.group,
// unambiguous even where two groups share a kind name (Event).
func (r objectRef) kubectlType() string {
	if r.gvk.Group == "" {
		return r.gvk.Kind
	}
	return r.gvk.Kind + "." + r.gvk.Version + "." + r.gvk.Group
}

// installation is one way to install the webhook that every test here
// checks: deploy/ with kustomize, and the Helm chart (with a release name
// and namespace of its own, so that both live in the one control plane and
// each ServiceAccount's RBAC is checked against the other's namespace too).
type installation struct {
	name      string // the subtest's name
	namespace string // the webhook's namespace
	// fullname names the ServiceAccount, the Deployment, the Service and
	// both webhook configurations; the other objects add a suffix to it.
	fullname string
	install  func(t *testing.T, inst *installation) ([]byte, error)

	once    sync.Once
	objects []objectRef
	// rendered holds what was applied, keyed by objectRef.String().
	rendered map[string]*unstructured.Unstructured
	// diffAfterApply is `kubectl diff -k deploy/` right after the apply
	// (kustomize only; for the chart, `helm upgrade` with the same values
	// must succeed instead).
	diffAfterApply string
	err            error
}

// serviceAccountUser is the user name the API server gives the pods'
// ServiceAccount token; the tests impersonate it.
func (i *installation) serviceAccountUser() string {
	return "system:serviceaccount:" + i.namespace + ":" + i.fullname
}

// otherNamespaces are namespaces the webhook has no business in beyond
// cluster-wide reads (the other installation's among them); each is checked
// on its own so that a namespaced Role granting too much shows up too.
func (i *installation) otherNamespaces() []string {
	out := []string{"default", "kube-system"}
	for _, o := range installations {
		if o != i {
			out = append(out, o.namespace)
		}
	}
	return out
}

// The chart's release: Helm's record in namespace default, the webhook in a
// namespace of its own (value namespace.name).
const (
	chartRelease          = "sw-chart"
	chartReleaseNamespace = "default"
)

var installations = []*installation{
	{name: "kustomize", namespace: "sidecar-webhook-system", fullname: webhook.ConfigurationName, install: installKustomize},
	{name: "chart", namespace: "sidecar-webhook-chart", fullname: chartRelease + "-sidecar-webhook", install: installChart},
}

// forEachInstallation runs test once per installation, as subtests named
// after them.
func forEachInstallation(t *testing.T, test func(t *testing.T, inst *installation)) {
	t.Helper()
	for _, inst := range installations {
		t.Run(inst.name, func(t *testing.T) {
			if inst.name == "chart" && env.helm == "" {
				t.Skip("no bin/helm; run `make helm` (with CI=true the package fails instead)")
			}
			test(t, inst)
		})
	}
}

// requireInstalled installs inst once and fails the test if that failed;
// whichever test runs first installs it (so `go test -run` on any single
// test works).
func requireInstalled(t *testing.T, inst *installation) []objectRef {
	t.Helper()
	inst.once.Do(func() {
		inst.err = installAndCheck(t, inst)
	})
	if inst.err != nil {
		t.Fatalf("installing %s: %v", inst.name, inst.err)
	}
	return inst.objects
}

// renderedObject returns the object of that kind and name as it was
// applied.
func renderedObject(t *testing.T, inst *installation, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	requireInstalled(t, inst)
	for _, r := range inst.objects {
		if r.gvk.Kind == kind && r.namespace == namespace && r.name == name {
			return inst.rendered[r.String()]
		}
	}
	t.Fatalf("%s renders no %s %s/%s", inst.name, kind, namespace, name)
	return nil
}

// installAndCheck installs inst as a user would, checks that every object
// it applied exists, and then removes the two webhook configurations (see
// below).
func installAndCheck(t *testing.T, inst *installation) error {
	manifest, err := inst.install(t, inst)
	if err != nil {
		return err
	}
	if inst.objects, inst.rendered, err = parseObjects(manifest); err != nil {
		return fmt.Errorf("%s: %w", inst.name, err)
	}
	if len(inst.objects) == 0 {
		return fmt.Errorf("%s rendered nothing", inst.name)
	}

	var missing []string
	for _, r := range inst.objects {
		args := []string{"get", r.kubectlType(), r.name, "-o", "name"}
		if r.namespace != "" {
			args = append(args, "-n", r.namespace)
		}
		if _, err := kubectl(t, "", args...); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", r, err))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("objects rendered by %s are missing after the install:\n  %s", inst.name, strings.Join(missing, "\n  "))
	}

	// The configurations point the API server at the in-cluster Service,
	// which nothing serves here (no kubelet runs the Deployment, no
	// cert-manager fills caBundle). With failurePolicy Fail they would
	// reject every Sidecar the tests create, so they go once their
	// existence has been checked; the server under test is then exercised
	// directly (its RBAC, caches, audit), and the configurations' content
	// is compared with the code in webhook/configurations_test.go (and the
	// chart's with deploy/ in test/chart).
	for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		if _, err := kubectl(t, "", "delete", kind+".admissionregistration.k8s.io", inst.fullname, "--wait=true"); err != nil {
			return err
		}
	}
	return nil
}

// installKustomize applies deploy/ exactly as docs/install.md says
// (`kubectl apply -k deploy/`) and returns what kustomize renders.
func installKustomize(t *testing.T, inst *installation) ([]byte, error) {
	dir := filepath.Join(env.root, testenv.KustomizeDir)
	rendered, err := kubectl(t, "", "kustomize", dir)
	if err != nil {
		return nil, err
	}
	// kubectl validates strictly against the served schemas by default, so
	// an unknown or misspelt field in a Certificate or Issuer (cert-manager's
	// real CRDs) or any built-in kind fails here.
	applyOut, err := kubectl(t, "", "apply", "-k", dir)
	if err != nil {
		return nil, err
	}
	t.Logf("kubectl apply -k deploy/:\n%s", strings.TrimSpace(applyOut))

	// Applying is idempotent: nothing the API server defaults or rewrites
	// differs from the manifests on a second apply. (`kubectl diff`, not
	// the messages of a second apply: client-side apply always reports a
	// PodDisruptionBudget as "configured", its selector's patch strategy
	// being "replace".)
	if out, err := kubectl(t, "", "diff", "-k", dir); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return nil, err
		}
		inst.diffAfterApply = out
	}
	return []byte(rendered), nil
}

// installChart installs the chart as docs/install.md says (`helm install`;
// Helm validates every object against the served schemas, cert-manager's
// CRDs included), then follows docs/install.md's emergency path: the webhook
// configurations are deleted and `helm upgrade` with the same values
// restores them (installAndCheck then finds every object). It returns the
// manifest Helm recorded for the release.
func installChart(t *testing.T, inst *installation) ([]byte, error) {
	chart := filepath.Join(env.root, testenv.ChartDir)
	// Non-default values that reach the server's args, so that the server
	// test proves the binary accepts them.
	values := []string{"--set", "namespace.name=" + inst.namespace, "--set", "clusterDomain=corp.example",
		"--set", "log.level=1", "--set", "istio.namespace=" + istioNamespace}
	out, err := helm(append([]string{"install", chartRelease, chart}, values...)...)
	if err != nil {
		return nil, err
	}
	t.Logf("helm install:\n%s", strings.TrimSpace(out))
	for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		if _, err := kubectl(t, "", "delete", kind+".admissionregistration.k8s.io", inst.fullname, "--wait=true"); err != nil {
			return nil, err
		}
	}
	if out, err = helm(append([]string{"upgrade", chartRelease, chart}, values...)...); err != nil {
		return nil, err
	}
	t.Logf("helm upgrade after deleting the webhook configurations:\n%s", strings.TrimSpace(out))
	out, err = helm("get", "manifest", chartRelease)
	return []byte(out), err
}

// helm runs bin/helm against the test cluster, in the chart release's
// namespace.
func helm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	args = append(args, "--kubeconfig", env.cluster.KubeconfigPath, "--namespace", chartReleaseNamespace)
	out, err := testenv.RunTool(ctx, env.helm, args...)
	return string(out), err
}

func parseObjects(data []byte) ([]objectRef, map[string]*unstructured.Unstructured, error) {
	objs, err := testenv.ParseManifests(data)
	if err != nil {
		return nil, nil, err
	}
	var refs []objectRef
	byRef := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		ref := objectRef{gvk: u.GroupVersionKind(), namespace: u.GetNamespace(), name: u.GetName()}
		refs = append(refs, ref)
		byRef[ref.String()] = u
	}
	return refs, byRef, nil
}

// TestApply: `kubectl apply -k deploy/` and `helm install` of the chart
// succeed on a cluster that has cert-manager's and Istio's CRDs and the
// istio-system namespace, and every object they render exists afterwards.
func TestApply(t *testing.T) { forEachInstallation(t, testApply) }

func testApply(t *testing.T, inst *installation) {
	objects := requireInstalled(t, inst)
	kinds := map[string]int{}
	for _, r := range objects {
		kinds[r.gvk.Kind]++
	}
	// What the issue asks deploy/ to contain.
	for _, kind := range []string{
		"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "PodDisruptionBudget", "Service", "Issuer", "Certificate",
		"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
	} {
		if kinds[kind] == 0 {
			t.Errorf("%s renders no %s", inst.name, kind)
		}
	}
	for _, r := range objects {
		if r.gvk.Kind == "Namespace" && r.name == istioNamespace {
			t.Errorf("%s must not own namespace %s (Istio does; uninstalling would remove it)", inst.name, istioNamespace)
		}
		if r.gvk.Kind == "Secret" {
			t.Errorf("%s ships a Secret (%s); cert-manager creates the serving certificate", inst.name, r)
		}
	}
	t.Logf("%d objects applied and present: %v", len(objects), kinds)
	if inst.diffAfterApply != "" {
		t.Errorf("re-applying deploy/ right after applying it would change objects (kubectl diff -k deploy/):\n%s", inst.diffAfterApply)
	}
}

// TestCertificatesMatchDeployment: the certificate chain cert-manager will
// build lines up with what the Deployment mounts and the Service serves.
func TestCertificatesMatchDeployment(t *testing.T) {
	forEachInstallation(t, testCertificatesMatchDeployment)
}

func testCertificatesMatchDeployment(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	ctx := context.Background()
	serving := renderedObject(t, inst, "Certificate", inst.namespace, inst.fullname+"-serving")
	secretName, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	wantDNS := inst.fullname + "." + inst.namespace + ".svc"
	if !contains(dnsNames, wantDNS) {
		t.Errorf("serving Certificate dnsNames %q lack %s, the name the API server dials", dnsNames, wantDNS)
	}
	for _, ann := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		kind := map[string]string{
			"validatingwebhookconfiguration": "ValidatingWebhookConfiguration",
			"mutatingwebhookconfiguration":   "MutatingWebhookConfiguration",
		}[ann]
		u := renderedObject(t, inst, kind, "", inst.fullname)
		if got, want := u.GetAnnotations()["cert-manager.io/inject-ca-from"], inst.namespace+"/"+serving.GetName(); got != want {
			t.Errorf("%s: cert-manager.io/inject-ca-from = %q, want %q", kind, got, want)
		}
	}

	dep, err := env.client.AppsV1().Deployments(inst.namespace).Get(ctx, inst.fullname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dep.Spec.Template.Spec
	mountedSecret := ""
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			mountedSecret = v.Secret.SecretName
			c := spec.Containers[0]
			for _, m := range c.VolumeMounts {
				if m.Name == v.Name && !contains(c.Args, "--cert-dir="+m.MountPath) {
					t.Errorf("serving certificate is mounted at %s, but the args %q do not pass that --cert-dir", m.MountPath, c.Args)
				}
			}
		}
	}
	if mountedSecret != secretName {
		t.Errorf("Deployment mounts Secret %q, the serving Certificate writes %q", mountedSecret, secretName)
	}

	// The Service's https port reaches the container's webhook port.
	svc, err := env.client.CoreV1().Services(inst.namespace).Get(ctx, inst.fullname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range svc.Spec.Ports {
		if p.Port != 443 {
			continue
		}
		found = true
		for _, cp := range spec.Containers[0].Ports {
			if cp.Name == p.TargetPort.StrVal || cp.ContainerPort == p.TargetPort.IntVal {
				if !contains(spec.Containers[0].Args, fmt.Sprintf("--port=%d", cp.ContainerPort)) {
					t.Errorf("Service port 443 targets container port %d, but the args %q do not pass --port=%d",
						cp.ContainerPort, spec.Containers[0].Args, cp.ContainerPort)
				}
			}
		}
	}
	if !found {
		t.Errorf("Service %s has no port 443 (the webhook configurations use port 443)", svc.Name)
	}
	if !selectorMatches(svc.Spec.Selector, dep.Spec.Template.Labels) {
		t.Errorf("Service selector %v does not select the Deployment's pods (labels %v)", svc.Spec.Selector, dep.Spec.Template.Labels)
	}
}

// TestDecisionLeaderReachable: with leader election on, the other replicas
// forward to the decision leader at the address it advertises ($POD_IP and
// the webhook port) and check its certificate for the Service's name in the
// Lease namespace ($POD_NAMESPACE): the Deployment passes both from the
// downward API, and the serving certificate names the Service.
func TestDecisionLeaderReachable(t *testing.T) {
	forEachInstallation(t, testDecisionLeaderReachable)
}

func testDecisionLeaderReachable(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	dep, err := env.client.AppsV1().Deployments(inst.namespace).Get(context.Background(), inst.fullname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if !contains(c.Args, "--leader-elect=true") {
		t.Fatalf("args %q: the Deployment runs several replicas and needs --leader-elect=true", c.Args)
	}
	fieldOf := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			fieldOf[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if fieldOf["POD_IP"] != "status.podIP" {
		t.Errorf("env POD_IP comes from %q, want the downward API's status.podIP (the address the leader advertises)", fieldOf["POD_IP"])
	}
	if fieldOf["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("env POD_NAMESPACE comes from %q, want metadata.namespace (the Leases' namespace and the certificate's name)", fieldOf["POD_NAMESPACE"])
	}
	// The server's default: sidecar-webhook.$POD_NAMESPACE.svc.
	serverName := "sidecar-webhook." + inst.namespace + ".svc"
	for _, arg := range c.Args {
		for _, flag := range []string{"--advertise-address", "--leader-election-namespace"} {
			if strings.HasPrefix(arg, flag) {
				t.Errorf("arg %s overrides the default the forwarding relies on", arg)
			}
		}
		if v, ok := strings.CutPrefix(arg, "--decider-server-name="); ok {
			serverName = v
		}
	}
	if want := inst.fullname + "." + inst.namespace + ".svc"; serverName != want {
		t.Errorf("followers verify the leader's certificate for %s, but the Service is %s", serverName, want)
	}
	serving := renderedObject(t, inst, "Certificate", inst.namespace, inst.fullname+"-serving")
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if !contains(dnsNames, serverName) {
		t.Errorf("serving Certificate dnsNames %q lack %s, the name followers verify the leader's certificate for", dnsNames, serverName)
	}
	issuer, _, _ := unstructured.NestedString(serving.Object, "spec", "issuerRef", "name")
	if _, isCA, _ := unstructured.NestedMap(renderedObject(t, inst, "Issuer", inst.namespace, issuer).Object, "spec", "ca"); !isCA {
		t.Errorf("the serving Certificate's issuer %s is not a CA issuer: its Secret would carry no ca.crt for followers to verify the leader with", issuer)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func selectorMatches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// createNamespace creates a namespace for one test and removes it after.
func createNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := env.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// No namespace controller runs, so the namespace stays Terminating;
		// deleting it still keeps reruns of a single test from colliding.
		_ = env.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// waitFor asks cond until it returns true, through the shared harness;
// on timeout the error carries cond's last error.
func waitFor(timeout time.Duration, cond func() (bool, error)) error {
	return testenv.WaitFor(context.Background(), timeout, func(context.Context) error {
		ok, err := cond()
		switch {
		case ok:
			return nil
		case err != nil:
			return err
		default:
			return errors.New("condition not met")
		}
	})
}
