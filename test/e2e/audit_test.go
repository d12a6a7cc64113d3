//go:build controlplane

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// webhookConfigurationName is the name dev gives both configurations.
const webhookConfigurationName = "sidecar-webhook"

// TestAuditReportsExistingConflicts: two namespace-wide Sidecars created
// while the webhook is not registered (they predate it, as far as it can
// tell) are reported by the periodic audit as a Warning Event with reason
// SidecarConflict on each, and by `check --cluster`.
//
// The webhook configurations are removed for a moment, so this part does
// not run in parallel with anything; the waiting afterwards does.
func TestAuditReportsExistingConflicts(t *testing.T) {
	ns := createLabelledNamespace(t, "audit", injected)
	restore := unregisterWebhooks(t, true, true)
	for _, name := range []string{"default", "second"} {
		applyAdmitted(t, withNamespace(wideSidecar(name), ns))
	}
	restore()
	t.Parallel()

	// dev runs with --audit-interval=2s (TestMain).
	start := time.Now()
	cs := clientset(t)
	var events []corev1.Event
	waitUntil(t, 20*time.Second, "a SidecarConflict Event on both Sidecars", func() (bool, string) {
		list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=SidecarConflict"})
		if err != nil {
			return false, err.Error()
		}
		events = list.Items
		seen := map[string]bool{}
		var desc []string
		for _, e := range events {
			seen[e.InvolvedObject.Name] = true
			desc = append(desc, e.InvolvedObject.Kind+" "+e.InvolvedObject.Name+": "+e.Message)
		}
		return seen["default"] && seen["second"], strings.Join(desc, "\n")
	})
	t.Logf("SidecarConflict Events on both Sidecars %s after the webhook was registered again", time.Since(start).Round(100*time.Millisecond))
	for _, e := range events {
		if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Kind != "Sidecar" || e.InvolvedObject.APIVersion != "networking.istio.io/v1" {
			t.Errorf("Event %s: type %s on %s %s, want a Warning on a networking.istio.io/v1 Sidecar", e.Name, e.Type, e.InvolvedObject.APIVersion, e.InvolvedObject.Kind)
		}
		other := map[string]string{"default": "second", "second": "default"}[e.InvolvedObject.Name]
		if want := `already has a Sidecar without workloadSelector: ` + ns + "/" + other; !strings.Contains(e.Message, want) {
			t.Errorf("Event on %s: %q, want it to contain %q", e.InvolvedObject.Name, e.Message, want)
		}
	}

	// `check --cluster` with no files (the pre-flight) lists the conflicts
	// already there: created today, each would be denied.
	cmd := exec.Command(filepath.Join(env.root, "bin", "sidecar-webhook"), "check", "--cluster", "--kubeconfig", env.kubeconfig, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := testenv.ExitCode(err); code != 1 {
		t.Errorf("check --cluster: exit %d (%v), want 1 (conflicts exist)\nstderr:\n%s", code, err, stderr.String())
	}
	var decisions []struct {
		Namespace, Name, File, Message string
		Allowed                        bool
	}
	if err := json.Unmarshal(stdout.Bytes(), &decisions); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, stdout.String())
	}
	found := map[string]bool{}
	for _, d := range decisions {
		if d.Namespace != ns {
			continue
		}
		found[d.Name] = true
		other := map[string]string{"default": "second", "second": "default"}[d.Name]
		if d.Allowed || d.File != "cluster" || !strings.HasPrefix(d.Message, "would be denied if created today: ") ||
			!strings.Contains(d.Message, "already has a Sidecar without workloadSelector: "+ns+"/"+other) {
			t.Errorf("check --cluster on %s/%s: allowed=%v file=%q message=%q; want denied if created today, naming %s/%s", d.Namespace, d.Name, d.Allowed, d.File, d.Message, ns, other)
		}
	}
	if !found["default"] || !found["second"] {
		t.Errorf("check --cluster lists %v in %s, want default and second:\n%s", found, ns, stdout.String())
	}
}

var clientsetOnce struct {
	sync.Once
	cs  kubernetes.Interface
	err error
}

// clientset is a typed client for the shared control plane.
func clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	clientsetOnce.Do(func() {
		cfg, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
		if err != nil {
			clientsetOnce.err = err
			return
		}
		cfg.QPS, cfg.Burst = 200, 400
		cfg.Timeout = 30 * time.Second
		clientsetOnce.cs, clientsetOnce.err = kubernetes.NewForConfig(cfg)
	})
	if clientsetOnce.err != nil {
		t.Fatal(clientsetOnce.err)
	}
	return clientsetOnce.cs
}

// unregisterWebhooks deletes dev's validating and/or mutating webhook
// configuration and waits until the API server no longer calls them. The
// returned function creates them again exactly as they were and waits until
// the API server calls them; it is idempotent and also runs at cleanup.
// Callers must not run in parallel with other tests while unregistered.
func unregisterWebhooks(t *testing.T, validating, mutating bool) (restore func()) {
	t.Helper()
	ctx := context.Background()
	admission := clientset(t).AdmissionregistrationV1()
	var savedValidating *admissionregistrationv1.ValidatingWebhookConfiguration
	var savedMutating *admissionregistrationv1.MutatingWebhookConfiguration
	var once sync.Once
	restore = func() {
		once.Do(func() {
			if savedValidating != nil {
				if _, err := admission.ValidatingWebhookConfigurations().Create(ctx, savedValidating, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Errorf("restoring the ValidatingWebhookConfiguration: %v", err)
				}
			}
			if savedMutating != nil {
				if _, err := admission.MutatingWebhookConfigurations().Create(ctx, savedMutating, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Errorf("restoring the MutatingWebhookConfiguration: %v", err)
				}
			}
			waitWebhooksEffective(t, savedValidating != nil, savedMutating != nil, true)
		})
	}
	t.Cleanup(restore)

	if validating {
		cfg, err := admission.ValidatingWebhookConfigurations().Get(ctx, webhookConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading the ValidatingWebhookConfiguration: %v", err)
		}
		cfg.ObjectMeta = cleanMeta(cfg.ObjectMeta)
		savedValidating = cfg
		if err := admission.ValidatingWebhookConfigurations().Delete(ctx, webhookConfigurationName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting the ValidatingWebhookConfiguration: %v", err)
		}
	}
	if mutating {
		cfg, err := admission.MutatingWebhookConfigurations().Get(ctx, webhookConfigurationName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading the MutatingWebhookConfiguration: %v", err)
		}
		cfg.ObjectMeta = cleanMeta(cfg.ObjectMeta)
		savedMutating = cfg
		if err := admission.MutatingWebhookConfigurations().Delete(ctx, webhookConfigurationName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting the MutatingWebhookConfiguration: %v", err)
		}
	}
	waitWebhooksEffective(t, validating, mutating, false)
	return restore
}

// cleanMeta keeps what a create needs: the name, labels and annotations.
func cleanMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Labels: m.Labels, Annotations: m.Annotations}
}

// probeNamespace holds the dry-run probes; it exists in every cluster.
const probeNamespace = "default"

// waitWebhooksEffective waits until the API server calls (want true) or no
// longer calls (want false) the Sidecar webhooks: a dry-run Sidecar with an
// empty spec is denied by the validating webhook, and a dry-run Sidecar's
// egress listener gets captureMode DEFAULT from the mutating one.
func waitWebhooksEffective(t testing.TB, validating, mutating, want bool) {
	t.Helper()
	state := map[bool]string{true: "called", false: "no longer called"}[want]
	if validating {
		probe := sidecarManifest("networking.istio.io/v1", probeNamespace, "webhook-probe", "  {}")
		waitUntil(t, cacheTimeout, "the validating webhook to be "+state, func() (bool, string) {
			status := apiCreate(t, probe, true)
			called := status != nil && strings.Contains(status.Message, deniedByWebhook)
			if status == nil {
				return called == want, "admitted"
			}
			return called == want, status.Message
		})
	}
	if mutating {
		probe := withNamespace(wideSidecar("webhook-probe"), probeNamespace)
		waitUntil(t, cacheTimeout, "the mutating webhook to be "+state, func() (bool, string) {
			obj, status := dryRunCreate(t, probe)
			if status != nil {
				return false, status.Message
			}
			egress, _, _ := unstructured.NestedSlice(obj.Object, "spec", "egress")
			called := len(egress) == 1 && egress[0].(map[string]any)["captureMode"] == "DEFAULT"
			return called == want, toYAML(obj.Object["spec"])
		})
	}
}

// resources maps the kinds the tests dry-run to their resources.
var resources = map[string]schema.GroupVersionResource{
	"Sidecar":    {Group: "networking.istio.io", Version: "v1", Resource: "sidecars"},
	"Pod":        {Version: "v1", Resource: "pods"},
	"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
}

// dryRunCreate sends manifest (one object of a kind in resources) as a
// server-side dry-run create and returns the object as it would be stored,
// or the API server's refusal.
func dryRunCreate(t testing.TB, manifest string) (*unstructured.Unstructured, *metav1.Status) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatalf("parsing manifest: %v\n%s", err, manifest)
	}
	u := &unstructured.Unstructured{Object: obj}
	gvr, ok := resources[u.GetKind()]
	if !ok {
		t.Fatalf("dryRunCreate: no resource for kind %q", u.GetKind())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	created, err := env.dynamic.Resource(gvr).Namespace(u.GetNamespace()).Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil {
		return created, nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		t.Fatalf("dry-run create of %s %s/%s: %v", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	s := status.Status()
	return nil, &s
}
