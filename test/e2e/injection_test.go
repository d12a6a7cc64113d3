//go:build controlplane

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodInjectionCases creates pods with kubectl, as users do, in each case
// Istio's injector distinguishes (section 1 of the fidelity issue), on dev's
// control plane where no injector is installed: the default injector
// selectors and the injector's own veto decide. A pod that gets a proxy is
// annotated with its namespace's Sidecar; a gateway with scope gateway; the
// others with nothing.
func TestPodInjectionCases(t *testing.T) {
	t.Parallel()
	gateway := podState{Scope: "gateway"}
	tests := []struct {
		name        string
		nsLabels    map[string]string
		podLabels   map[string]string
		annotations map[string]string
		hostNetwork bool
		proxy       bool
		want        podState // when not a sidecar; a sidecar gets the namespace's default
	}{
		{name: "ns-injection-enabled", nsLabels: injected, proxy: true},
		{name: "ns-revision", nsLabels: map[string]string{"istio.io/rev": "canary"}, proxy: true},
		{name: "ns-disabled-with-revision", nsLabels: map[string]string{"istio-injection": "disabled", "istio.io/rev": "canary"}},
		{name: "pod-inject-true-unlabelled-ns", podLabels: map[string]string{"sidecar.istio.io/inject": "true"}, proxy: true},
		{name: "pod-revision-unlabelled-ns", podLabels: map[string]string{"istio.io/rev": "canary"}, proxy: true},
		{name: "pod-inject-true-ns-disabled", nsLabels: map[string]string{"istio-injection": "disabled"}, podLabels: map[string]string{"sidecar.istio.io/inject": "true"}},
		{name: "nothing-labelled"},
		{name: "annotation-opts-out", nsLabels: injected, annotations: map[string]string{"sidecar.istio.io/inject": "false"}},
		{name: "label-wins-over-annotation", nsLabels: injected, podLabels: map[string]string{"sidecar.istio.io/inject": "true"}, annotations: map[string]string{"sidecar.istio.io/inject": "false"}, proxy: true},
		{name: "host-network", nsLabels: injected, hostNetwork: true},
		{name: "injected-by-kube-inject", annotations: map[string]string{"sidecar.istio.io/status": `{"containers":["istio-proxy"]}`}, proxy: true},
		{name: "gateway-template", nsLabels: injected, annotations: map[string]string{"inject.istio.io/templates": "gateway"}, want: gateway},
		{name: "waypoint", podLabels: map[string]string{"gateway.istio.io/managed": "istio.io-mesh-controller", "sidecar.istio.io/inject": "false"}, want: gateway},
		{name: "ambient-ns", nsLabels: map[string]string{"istio.io/dataplane-mode": "ambient"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := createLabelledNamespace(t, "inject-"+tc.name, tc.nsLabels)
			applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
			want := tc.want
			if tc.proxy {
				want = podState{Sidecar: ns + "/default", Scope: "namespace"}
			}
			labels := map[string]string{"app": "web"}
			for k, v := range tc.podLabels {
				labels[k] = v
			}
			manifest := podManifest(ns, "web", labels, tc.annotations)
			if tc.hostNetwork {
				manifest = strings.Replace(manifest, "spec:\n", "spec:\n  hostNetwork: true\n", 1)
			}
			// A dry run settles when the webhook's cache has the Sidecar;
			// then the real create must be annotated at admission.
			waitPodDryRun(t, manifest, want)
			created := createPod(t, manifest)
			if got := stateOf(created.GetAnnotations()); got != want {
				t.Errorf("created with %v, want %v", got, want)
			}
			if !tc.proxy && tc.want == (podState{}) {
				// The reconciler, which saw the pod created, leaves it alone.
				time.Sleep(time.Second)
				if owned := ownedAnnotations(getPod(t, ns, "web").GetAnnotations()); len(owned) > 0 {
					t.Errorf("pod without a proxy has %v", owned)
				}
			}
		})
	}
}

// TestPodKeepsProxyWhenNamespaceRelabelled: injection happens at creation.
// A pod annotated then keeps its proxy after its namespace loses the
// injection label, and its annotations keep following Sidecar changes
// (neither stripped nor frozen).
func TestPodKeepsProxyWhenNamespaceRelabelled(t *testing.T) {
	t.Parallel()
	ns := createLabelledNamespace(t, "inject-relabel", injected)
	applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
	manifest := podManifest(ns, "web", map[string]string{"app": "web"}, nil)
	namespaceWide := podState{Sidecar: ns + "/default", Scope: "namespace"}
	waitPodDryRun(t, manifest, namespaceWide)
	createPod(t, manifest)

	mustKubectl(t, "", "label", "namespace", ns, "istio-injection-")
	// New pods no longer get a proxy ...
	waitPodDryRun(t, podManifest(ns, "probe", map[string]string{"app": "probe"}, nil), podState{})
	// ... but the running one still has its own, and follows a new Sidecar.
	applyAdmitted(t, withNamespace(selectorSidecar("web", "app", "web"), ns))
	waitPods(t, ns, "app=web", 1, podState{Sidecar: ns + "/web", Scope: "workload"}, reconcileTimeout)
}

// TestInstalledInjectorDecides registers an injector configuration the way
// the istio-discovery chart does for revision "canary" (pointing at nothing,
// failurePolicy Ignore, so pods are still created): once the webhook sees
// it, only the revisions it serves inject, and a running pod counts only
// when it carries the injector's status annotation. Not parallel: it
// changes what every other test's pods would get.
func TestInstalledInjectorDecides(t *testing.T) {
	ctx := context.Background()
	mwcs := clientset(t).AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg := canaryInjectorConfiguration(t)
	if _, err := mwcs.Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("registering the canary injector: %v", err)
	}
	removed := false
	remove := func() {
		if removed {
			return
		}
		removed = true
		if err := mwcs.Delete(ctx, cfg.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("removing the canary injector: %v", err)
		}
	}
	t.Cleanup(remove)

	stable := createLabelledNamespace(t, "inject-stable", map[string]string{"istio.io/rev": "stable"})
	canary := createLabelledNamespace(t, "inject-canary", map[string]string{"istio.io/rev": "canary"})
	for _, ns := range []string{stable, canary} {
		applyAdmitted(t, withNamespace(selectorSidecar("web", "app", "web"), ns))
	}
	// A Deployment whose pods a second Sidecar (tier=front) would also
	// select: a conflict only where its pods would get a proxy.
	front := func(ns string) string { return withNamespace(selectorSidecar("front", "tier", "front"), ns) }
	for _, ns := range []string{stable, canary} {
		applyAdmitted(t, deploymentManifest(ns, "web", 0, map[string]string{"app": "web", "tier": "front"}))
	}
	waitDenied(t, front(canary), "both select Deployment "+canary+"/web")
	// Revision stable is served by no installed injector: no proxy, no
	// conflict (the selectors are not subsets of each other).
	waitUntil(t, cacheTimeout, "the Sidecar in the stable namespace to be admitted", func() (bool, string) {
		if status := apiCreate(t, front(stable), true); status != nil {
			return false, status.Message
		}
		return true, ""
	})

	// A pod created in the canary namespace is not injected (the injector
	// is unreachable): the webhook sees no status annotation, so no proxy.
	plain := podManifest(canary, "plain", map[string]string{"app": "web"}, nil)
	waitPodDryRun(t, plain, podState{})
	// One injected by Istio carries the status annotation: proof.
	injectedPod := podManifest(canary, "injected", map[string]string{"app": "web"}, map[string]string{"sidecar.istio.io/status": "{}"})
	waitPodDryRun(t, injectedPod, podState{Sidecar: canary + "/web", Scope: "workload"})

	remove()
	// Without an injector installed, the default selectors decide again.
	waitPodDryRun(t, plain, podState{Sidecar: canary + "/web", Scope: "workload"})
}

// canaryInjectorConfiguration is an injector configuration shaped like the
// istio-discovery chart's for revision canary: labelled istio.io/rev, with a
// rev.namespace webhook. It points at a closed port and fails open, so it
// injects nothing.
func canaryInjectorConfiguration(t *testing.T) *admissionregistrationv1.MutatingWebhookConfiguration {
	url := "https://127.0.0.1:1/inject"
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(1)
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("istio-sidecar-injector-canary-%s", randomSuffix(t)), Labels: map[string]string{"istio.io/rev": "canary"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "rev.namespace.sidecar-injector.istio.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "istio.io/rev", Operator: metav1.LabelSelectorOpIn, Values: []string{"canary"}},
				{Key: "istio-injection", Operator: metav1.LabelSelectorOpDoesNotExist},
			}},
		}},
	}
}
