//go:build controlplane

package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// allNamespaces stands for `kubectl auth can-i -A` (a cluster-wide grant).
const allNamespaces = "*"

// canI asks the API server, through `kubectl auth can-i --as=<user>`,
// whether the user (an installation's ServiceAccount) may do verb on
// resource in namespace (allNamespaces: cluster-wide). Exit code 0 is yes, 1
// is no; anything else (or output other than yes/no) fails the test.
func canI(user, verb, resource, namespace string) (bool, error) {
	args := []string{"auth", "can-i", verb, resource, "--as=" + user}
	if namespace == allNamespaces {
		args = append(args, "-A")
	} else {
		args = append(args, "-n", namespace)
	}
	out, err := runKubectl("", args...)
	answer := strings.TrimSpace(out)
	var exit *exec.ExitError
	switch {
	case err == nil && answer == "yes":
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1 && strings.HasPrefix(answer, "no"):
		return false, nil
	}
	return false, fmt.Errorf("kubectl %s: unexpected answer %q: %v", strings.Join(args, " "), answer, err)
}

func where(namespace string) string {
	if namespace == allNamespaces {
		return "in all namespaces (-A)"
	}
	return "in namespace " + namespace
}

// TestRBACLeastPrivilege: the ServiceAccount can do what the server needs
// and nothing the issue rules out.
func TestRBACLeastPrivilege(t *testing.T) { forEachInstallation(t, testRBACLeastPrivilege) }

func testRBACLeastPrivilege(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	webhookNamespace, otherNamespaces, serviceAccountUser := inst.namespace, inst.otherNamespaces(), inst.serviceAccountUser()
	everywhere := append([]string{allNamespaces, webhookNamespace, istioNamespace}, otherNamespaces...)

	type check struct {
		verbs      []string
		resource   string
		namespaces []string
		want       bool
		why        string
	}
	checks := []check{
		// Not allowed.
		{[]string{"get", "list", "watch"}, "secrets", everywhere, false,
			"no access to Secrets at all (cert-manager's Secret is mounted, not read through the API)"},
		{[]string{"create", "update", "patch", "delete", "deletecollection"}, "sidecars.networking.istio.io", everywhere, false,
			"the webhook judges Sidecars and never writes them"},
		{[]string{"create", "update", "delete", "deletecollection"}, "pods", everywhere, false,
			"the only write on pods is an annotation patch"},
		{[]string{"list", "watch", "get"}, "configmaps", append([]string{allNamespaces, webhookNamespace}, otherNamespaces...), false,
			"ConfigMaps only in istio-system (mesh config)"},
		{[]string{"create", "update", "delete"}, "leases.coordination.k8s.io", append([]string{allNamespaces, istioNamespace}, otherNamespaces...), false,
			"Leases only in the webhook's own namespace"},
		{[]string{"create", "update", "patch", "delete"}, "validatingwebhookconfigurations.admissionregistration.k8s.io", []string{allNamespaces}, false,
			"the webhook must not be able to edit its own registration"},
		{[]string{"create", "update", "patch", "delete"}, "mutatingwebhookconfigurations.admissionregistration.k8s.io", []string{allNamespaces}, false,
			"the webhook must not be able to edit its own registration"},
		{[]string{"create", "bind", "escalate"}, "clusterroles.rbac.authorization.k8s.io", []string{allNamespaces}, false,
			"no RBAC writes"},
		{[]string{"impersonate"}, "serviceaccounts", everywhere, false, "no impersonation"},
		{[]string{"*"}, "*", everywhere, false, "no wildcard grant"},
		// Needed: informer caches (list and watch), pod annotation patches,
		// audit Events, leader election.
		{[]string{"list", "watch"}, "sidecars.networking.istio.io", []string{allNamespaces}, true, "Sidecar cache"},
		{[]string{"list", "watch"}, "pods", []string{allNamespaces}, true, "pod metadata cache"},
		{[]string{"list", "watch"}, "deployments.apps", []string{allNamespaces}, true, "workload cache"},
		{[]string{"list", "watch"}, "namespaces", []string{allNamespaces}, true, "namespace cache"},
		{[]string{"list", "watch"}, "configmaps", []string{istioNamespace}, true, "mesh config"},
		{[]string{"patch"}, "pods", []string{allNamespaces}, true, "pod annotation reconciler"},
		{[]string{"create"}, "events", []string{allNamespaces}, true, "audit Events (core/v1)"},
		{[]string{"create"}, "events.events.k8s.io", []string{allNamespaces}, true, "audit Events (events.k8s.io/v1)"},
		{[]string{"get", "create", "update"}, "leases.coordination.k8s.io", []string{webhookNamespace}, true, "leader election, the Sidecar decision Lease and its ledgers"},
		{[]string{"list", "watch"}, "mutatingwebhookconfigurations.admissionregistration.k8s.io", []string{allNamespaces}, true, "Istio's injector configurations (which revisions inject)"},
		{[]string{"list"}, "nodes", []string{allNamespaces}, true, "the nodes' pod CIDRs (the cluster's IP family)"},
		{[]string{"get", "watch", "patch", "update", "delete"}, "nodes", []string{allNamespaces}, false, "nodes are listed once at start, nothing more"},
		{[]string{"list", "create", "update", "delete"}, "policyreports.wgpolicyk8s.io", []string{allNamespaces}, true, "the audit's PolicyReports (one per namespace with findings)"},
		{[]string{"get", "watch", "patch", "deletecollection"}, "policyreports.wgpolicyk8s.io", []string{allNamespaces}, false, "the audit lists its reports once per run and writes each on its own"},
		{[]string{"create", "update", "delete"}, "clusterpolicyreports.wgpolicyk8s.io", []string{allNamespaces}, false, "the audit's findings are namespaced"},
	}
	// Over a hundred questions: ask a few at a time.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		sem      = make(chan struct{}, 4)
	)
	for _, c := range checks {
		for _, ns := range c.namespaces {
			for _, verb := range c.verbs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					got, err := canI(serviceAccountUser, verb, c.resource, ns)
					var msg string
					switch {
					case err != nil:
						msg = err.Error()
					case got != c.want:
						msg = fmt.Sprintf("can-i %s %s %s as %s = %t, want %t (%s)", verb, c.resource, where(ns), serviceAccountUser, got, c.want, c.why)
					default:
						return
					}
					mu.Lock()
					failures = append(failures, msg)
					mu.Unlock()
				}()
			}
		}
	}
	wg.Wait()
	slices.Sort(failures)
	for _, f := range failures {
		t.Error(f)
	}
}

// TestRBACPodPatchInPractice: beyond can-i, the ServiceAccount really can
// patch a pod's annotations (the pod annotation reconciler's only write) and
// really cannot update, delete or read Secrets. (The reconciler itself is
// exercised in-process only once server.Run wires it; this proves the
// permission it relies on.)
func TestRBACPodPatchInPractice(t *testing.T) { forEachInstallation(t, testRBACPodPatchInPractice) }

func testRBACPodPatchInPractice(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	webhookNamespace, serviceAccountUser := inst.namespace, inst.serviceAccountUser()
	ctx := context.Background()
	// One namespace per installation: the first one's is left Terminating
	// (no namespace controller runs), where nothing new can be created.
	ns := "deploy-rbac-" + inst.name
	createNamespace(t, ns, nil)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "workload", Namespace: ns, Labels: map[string]string{"app": "workload"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
	}
	if _, err := env.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	cfg := rest.CopyConfig(env.cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: serviceAccountUser}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	patch := []byte(`{"metadata":{"annotations":{"sidecar-webhook.io/test":"patched"}}}`)
	got, err := sa.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patching a pod's annotations as %s: %v", serviceAccountUser, err)
	}
	if got.Annotations["sidecar-webhook.io/test"] != "patched" {
		t.Errorf("patch did not apply: annotations %v", got.Annotations)
	}

	forbidden := func(what string, err error) {
		t.Helper()
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: got %v, want Forbidden", what, serviceAccountUser, err)
		}
	}
	got.Annotations["sidecar-webhook.io/test"] = "updated"
	_, err = sa.CoreV1().Pods(ns).Update(ctx, got, metav1.UpdateOptions{})
	forbidden("updating a pod", err)
	forbidden("deleting a pod", sa.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}))
	_, err = sa.CoreV1().Secrets(webhookNamespace).List(ctx, metav1.ListOptions{})
	forbidden(fmt.Sprintf("listing Secrets in %s", webhookNamespace), err)
	_, err = sa.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	forbidden("listing ConfigMaps in default", err)
}
