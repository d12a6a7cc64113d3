//go:build controlplane

package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// restrictedNamespace enforces "restricted"; one per installation, as the
// first one's is left Terminating (no namespace controller runs).
func restrictedNamespace(inst *installation) string { return "deploy-psa-restricted-" + inst.name }

// warningRecorder collects the API server's warnings (PodSecurity's "warn"
// mode answers with warnings).
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// podFromDeployment is the Pod the ReplicaSet controller would create.
func podFromDeployment(dep *appsv1.Deployment, namespace string) *corev1.Pod {
	tmpl := dep.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: dep.Name + "-",
			Namespace:    namespace,
			Labels:       tmpl.Labels,
			Annotations:  tmpl.Annotations,
		},
		Spec: tmpl.Spec,
	}
}

// TestDeploymentPodSecurityRestricted: a Pod built from the Deployment's
// template is admitted by Pod Security Admission at the restricted level
// (server-side dry run, without a single warning), in a namespace enforcing
// "restricted" and in the webhook's own namespace, which deploy/ labels so.
// A Pod without any hardening is rejected in the same namespace, proving
// that the admission plugin is active.
func TestDeploymentPodSecurityRestricted(t *testing.T) {
	forEachInstallation(t, testDeploymentPodSecurityRestricted)
}

func testDeploymentPodSecurityRestricted(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	ctx := context.Background()
	webhookNamespace, restrictedNamespace := inst.namespace, restrictedNamespace(inst)
	restricted := map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
		"pod-security.kubernetes.io/warn-version":    "latest",
	}
	createNamespace(t, restrictedNamespace, restricted)

	ns, err := env.client.CoreV1().Namespaces().Get(ctx, webhookNamespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s: pod-security.kubernetes.io/enforce=%q, want restricted", webhookNamespace, got)
	}

	dep, err := env.client.AppsV1().Deployments(webhookNamespace).Get(ctx, inst.fullname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(env.cluster.Config)
	cfg.WarningHandler = warnings
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}

	for _, namespace := range []string{restrictedNamespace, webhookNamespace} {
		warnings.take()
		if _, err := client.CoreV1().Pods(namespace).Create(ctx, podFromDeployment(dep, namespace), dryRun); err != nil {
			t.Errorf("dry-run create of the Deployment's pod in %s: %v", namespace, err)
		}
		for _, w := range warnings.take() {
			t.Errorf("dry-run create of the Deployment's pod in %s warned: %s", namespace, w)
		}
	}

	// Control: the same pod without its security contexts is rejected.
	weak := podFromDeployment(dep, restrictedNamespace)
	weak.Spec.SecurityContext = nil
	for i := range weak.Spec.Containers {
		weak.Spec.Containers[i].SecurityContext = nil
	}
	_, err = client.CoreV1().Pods(restrictedNamespace).Create(ctx, weak, dryRun)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a pod without security contexts in %s: got %v, want a PodSecurity rejection (is PodSecurity admission on?)", restrictedNamespace, err)
	}
}

// TestDeploymentHardening checks the properties of the Deployment, its PDB
// and its probes that the issue asks for, one by one (PodSecurity above
// already implies several; these make each failure name its cause).
func TestDeploymentHardening(t *testing.T) { forEachInstallation(t, testDeploymentHardening) }

func testDeploymentHardening(t *testing.T, inst *installation) {
	requireInstalled(t, inst)
	ctx := context.Background()
	webhookNamespace := inst.namespace
	dep, err := env.client.AppsV1().Deployments(webhookNamespace).Get(ctx, inst.fullname, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := dep.Spec.Template.Spec

	// High availability.
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	if replicas < 2 {
		t.Errorf("replicas = %d, want at least 2 (Sidecar validation fails closed)", replicas)
	}
	pdbs, err := env.client.PolicyV1().PodDisruptionBudgets(webhookNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pdbFound bool
	for _, pdb := range pdbs.Items {
		if pdb.Spec.Selector == nil || !selectorMatches(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
			continue
		}
		pdbFound = true
		// At least one replica protected, and a node drain never blocked
		// forever: with N replicas, minAvailable must stay below N.
		switch {
		case pdb.Spec.MinAvailable != nil:
			minAvail, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(replicas), true)
			if err != nil || minAvail < 1 || minAvail >= int(replicas) {
				t.Errorf("PDB %s: minAvailable %s with %d replicas, want at least 1 and fewer than the replicas (err %v)",
					pdb.Name, pdb.Spec.MinAvailable.String(), replicas, err)
			}
		case pdb.Spec.MaxUnavailable != nil:
			maxUnavail, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(replicas), false)
			if err != nil || maxUnavail < 1 || maxUnavail >= int(replicas) {
				t.Errorf("PDB %s: maxUnavailable %s with %d replicas, want at least 1 and fewer than the replicas (err %v)",
					pdb.Name, pdb.Spec.MaxUnavailable.String(), replicas, err)
			}
		default:
			t.Errorf("PDB %s sets neither minAvailable nor maxUnavailable", pdb.Name)
		}
	}
	if !pdbFound {
		t.Errorf("no PodDisruptionBudget in %s selects the Deployment's pods (labels %v)", webhookNamespace, dep.Spec.Template.Labels)
	}

	// Least privilege in the pod.
	podSC := spec.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	if len(spec.InitContainers) > 0 {
		t.Errorf("unexpected init containers")
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("container %s has no securityContext", c.Name)
	}
	if !boolTrue(sc.RunAsNonRoot) && !boolTrue(podSC.RunAsNonRoot) {
		t.Errorf("runAsNonRoot is not set to true (pod or container)")
	}
	if !boolTrue(sc.ReadOnlyRootFilesystem) {
		t.Errorf("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || !contains(capabilityStrings(sc.Capabilities.Drop), "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
	seccomp := podSC.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile %+v, want RuntimeDefault", seccomp)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("uses host namespaces")
	}

	// Graceful shutdown outlasts any in-flight admission request.
	maxTimeout := maxWebhookTimeoutSeconds(t, inst)
	if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds <= int64(maxTimeout) {
		t.Errorf("terminationGracePeriodSeconds %v, want more than the webhooks' longest timeoutSeconds (%d)",
			deref(spec.TerminationGracePeriodSeconds), maxTimeout)
	}

	// Resources. A CPU limit is deliberately not required: it only
	// throttles a latency-sensitive webhook; memory is the limit that
	// protects the node.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("no %s request", r)
		}
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		t.Errorf("no memory limit")
	} else if req := c.Resources.Requests[corev1.ResourceMemory]; q.Cmp(req) < 0 {
		t.Errorf("memory limit %s below the request %s", q.String(), req.String())
	}

	// Probes: readiness on /readyz (ready only once caches synced),
	// liveness on /healthz, both on the port the server's health endpoint
	// is bound to.
	healthPort := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--health-probe-bind-address="); ok {
			healthPort = v[strings.LastIndex(v, ":")+1:]
		}
	}
	if healthPort == "" {
		t.Errorf("args %q do not set --health-probe-bind-address", c.Args)
	}
	checkProbe := func(name string, p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: no httpGet", name)
			return
		}
		if p.HTTPGet.Path != path {
			t.Errorf("%s probe path %q, want %s", name, p.HTTPGet.Path, path)
		}
		port := p.HTTPGet.Port.String()
		if p.HTTPGet.Port.Type == intstr.String {
			for _, cp := range c.Ports {
				if cp.Name == p.HTTPGet.Port.StrVal {
					port = fmt.Sprint(cp.ContainerPort)
				}
			}
		}
		if port != healthPort {
			t.Errorf("%s probe port %s (%s), but the health endpoint listens on %s", name, p.HTTPGet.Port.String(), port, healthPort)
		}
	}
	checkProbe("readiness", c.ReadinessProbe, "/readyz")
	checkProbe("liveness", c.LivenessProbe, "/healthz")

	if spec.ServiceAccountName != inst.fullname {
		t.Errorf("serviceAccountName %q, want %s (the one RBAC binds)", spec.ServiceAccountName, inst.fullname)
	}
}

// maxWebhookTimeoutSeconds is the longest timeoutSeconds among the webhook
// configurations the installation renders (API server default: 10).
func maxWebhookTimeoutSeconds(t *testing.T, inst *installation) int64 {
	t.Helper()
	var max int64
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		u := renderedObject(t, inst, kind, "", inst.fullname)
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		for _, h := range hooks {
			timeout, found, _ := unstructured.NestedInt64(h.(map[string]any), "timeoutSeconds")
			if !found {
				timeout = 10
			}
			if timeout > max {
				max = timeout
			}
		}
	}
	if max == 0 {
		t.Fatal("no webhooks rendered")
	}
	return max
}

func boolTrue(b *bool) bool { return b != nil && *b }

func capabilityStrings(caps []corev1.Capability) []string {
	var out []string
	for _, c := range caps {
		out = append(out, string(c))
	}
	return out
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}
