package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// objectRef names one object rendered from deploy/.
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

// deployed is the one installation of deploy/ the tests share; whichever test
// runs first installs it (so `go test -run` on any single test works).
var deployed struct {
	once    sync.Once
	objects []objectRef
	// rendered holds `kubectl kustomize deploy/`, keyed by objectRef.String().
	rendered map[string]*unstructured.Unstructured
	// diffAfterApply is `kubectl diff -k deploy/` right after the apply.
	diffAfterApply string
	err            error
}

// requireDeployed installs deploy/ once and fails the test if that failed.
func requireDeployed(t *testing.T) []objectRef {
	t.Helper()
	deployed.once.Do(func() {
		deployed.objects, deployed.rendered, deployed.err = installDeploy(t)
	})
	if deployed.err != nil {
		t.Fatalf("installing deploy/: %v", deployed.err)
	}
	return deployed.objects
}

// renderedObject returns the object of that kind and name as kustomize
// renders it.
func renderedObject(t *testing.T, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	requireDeployed(t)
	for _, r := range deployed.objects {
		if r.gvk.Kind == kind && r.namespace == namespace && r.name == name {
			return deployed.rendered[r.String()]
		}
	}
	t.Fatalf("deploy/ renders no %s %s/%s", kind, namespace, name)
	return nil
}

// installDeploy renders deploy/, applies it exactly as a user would
// (`kubectl apply -k deploy/`), checks that every rendered object exists, and
// then removes the two webhook configurations (see below).
func installDeploy(t *testing.T) ([]objectRef, map[string]*unstructured.Unstructured, error) {
	dir := filepath.Join(env.root, "deploy")
	out, err := kubectl(t, nil, "kustomize", dir)
	if err != nil {
		return nil, nil, err
	}
	objects, rendered, err := parseObjects([]byte(out))
	if err != nil {
		return nil, nil, fmt.Errorf("kubectl kustomize %s: %w", dir, err)
	}
	if len(objects) == 0 {
		return nil, nil, fmt.Errorf("kubectl kustomize %s rendered nothing", dir)
	}

	// kubectl validates strictly against the served schemas by default, so
	// an unknown or misspelt field in a Certificate or Issuer (cert-manager's
	// real CRDs) or any built-in kind fails here.
	applyOut, err := kubectl(t, nil, "apply", "-k", dir)
	if err != nil {
		return nil, nil, err
	}
	t.Logf("kubectl apply -k deploy/:\n%s", strings.TrimSpace(applyOut))

	// Applying is idempotent: nothing the API server defaults or rewrites
	// differs from the manifests on a second apply. (`kubectl diff`, not
	// the messages of a second apply: client-side apply always reports a
	// PodDisruptionBudget as "configured", its selector's patch strategy
	// being "replace".)
	if out, err := kubectl(t, nil, "diff", "-k", dir); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return nil, nil, err
		}
		deployed.diffAfterApply = out
	}

	var missing []string
	for _, r := range objects {
		args := []string{"get", r.kubectlType(), r.name, "-o", "name"}
		if r.namespace != "" {
			args = append(args, "-n", r.namespace)
		}
		if _, err := kubectl(t, nil, args...); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", r, err))
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("objects rendered from deploy/ are missing after apply:\n  %s", strings.Join(missing, "\n  "))
	}

	// The configurations point the API server at the in-cluster Service
	// sidecar-webhook-system/sidecar-webhook, which nothing serves here (no
	// kubelet runs the Deployment, no cert-manager fills caBundle). With
	// failurePolicy Fail they would reject every Sidecar the tests create,
	// so they go once their existence has been checked; the server under
	// test is then exercised directly (its RBAC, caches, audit), and the
	// configurations' content is compared with the code in
	// webhook/configurations_test.go.
	for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		if _, err := kubectl(t, nil, "delete", kind+".admissionregistration.k8s.io", webhook.ConfigurationName, "--wait=true"); err != nil {
			return nil, nil, err
		}
	}
	return objects, rendered, nil
}

func parseObjects(data []byte) ([]objectRef, map[string]*unstructured.Unstructured, error) {
	var refs []objectRef
	byRef := map[string]*unstructured.Unstructured{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return refs, byRef, nil
		}
		if err != nil {
			return nil, nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, nil, err
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue // comments only
		}
		// Unstructured's own JSON decoding keeps integers as int64.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, nil, err
		}
		ref := objectRef{gvk: u.GroupVersionKind(), namespace: u.GetNamespace(), name: u.GetName()}
		if ref.gvk.Kind == "" || ref.name == "" {
			return nil, nil, fmt.Errorf("document without kind or name:\n%s", doc)
		}
		refs = append(refs, ref)
		byRef[ref.String()] = u
	}
}

// TestApply: `kubectl apply -k deploy/` succeeds on a cluster that has
// cert-manager's and Istio's CRDs and the istio-system namespace, and every
// object kustomize renders exists afterwards.
func TestApply(t *testing.T) {
	objects := requireDeployed(t)
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
			t.Errorf("deploy/ renders no %s", kind)
		}
	}
	for _, r := range objects {
		if r.gvk.Kind == "Namespace" && r.name == istioNamespace {
			t.Errorf("deploy/ must not own namespace %s (Istio does; `kubectl delete -k deploy/` would remove it)", istioNamespace)
		}
		if r.gvk.Kind == "Secret" {
			t.Errorf("deploy/ ships a Secret (%s); cert-manager creates the serving certificate", r)
		}
	}
	t.Logf("%d objects applied and present: %v", len(objects), kinds)
	if deployed.diffAfterApply != "" {
		t.Errorf("re-applying deploy/ right after applying it would change objects (kubectl diff -k deploy/):\n%s", deployed.diffAfterApply)
	}
}

// TestCertificatesMatchDeployment: the certificate chain cert-manager will
// build lines up with what the Deployment mounts and the Service serves.
func TestCertificatesMatchDeployment(t *testing.T) {
	requireDeployed(t)
	ctx := context.Background()
	serving := renderedObject(t, "Certificate", webhookNamespace, "sidecar-webhook-serving")
	secretName, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName")
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	wantDNS := webhook.ConfigurationName + "." + webhookNamespace + ".svc"
	if !contains(dnsNames, wantDNS) {
		t.Errorf("serving Certificate dnsNames %q lack %s, the name the API server dials", dnsNames, wantDNS)
	}
	for _, ann := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		kind := map[string]string{
			"validatingwebhookconfiguration": "ValidatingWebhookConfiguration",
			"mutatingwebhookconfiguration":   "MutatingWebhookConfiguration",
		}[ann]
		u := renderedObject(t, kind, "", webhook.ConfigurationName)
		if got, want := u.GetAnnotations()["cert-manager.io/inject-ca-from"], webhookNamespace+"/"+serving.GetName(); got != want {
			t.Errorf("%s: cert-manager.io/inject-ca-from = %q, want %q", kind, got, want)
		}
	}

	dep, err := env.client.AppsV1().Deployments(webhookNamespace).Get(ctx, "sidecar-webhook", metav1.GetOptions{})
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
	svc, err := env.client.CoreV1().Services(webhookNamespace).Get(ctx, webhook.ConfigurationName, metav1.GetOptions{})
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
	requireDeployed(t)
	dep, err := env.client.AppsV1().Deployments(webhookNamespace).Get(context.Background(), "sidecar-webhook", metav1.GetOptions{})
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
	for _, arg := range c.Args {
		for _, flag := range []string{"--advertise-address", "--decider-server-name", "--leader-election-namespace"} {
			if strings.HasPrefix(arg, flag) {
				t.Errorf("arg %s overrides the default the forwarding relies on", arg)
			}
		}
	}
	serving := renderedObject(t, "Certificate", webhookNamespace, "sidecar-webhook-serving")
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if want := "sidecar-webhook." + webhookNamespace + ".svc"; !contains(dnsNames, want) {
		t.Errorf("serving Certificate dnsNames %q lack %s, the name followers verify the leader's certificate for", dnsNames, want)
	}
	issuer, _, _ := unstructured.NestedString(serving.Object, "spec", "issuerRef", "name")
	if _, isCA, _ := unstructured.NestedMap(renderedObject(t, "Issuer", webhookNamespace, issuer).Object, "spec", "ca"); !isCA {
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

// waitFor polls cond every 200ms until it returns true, an error, or timeout.
func waitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
