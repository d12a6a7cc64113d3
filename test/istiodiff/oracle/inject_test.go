package oracle

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ns(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

type podOpt func(*corev1.Pod)

func podLabels(l map[string]string) podOpt {
	return func(p *corev1.Pod) { p.Labels = l }
}

func podAnnotations(a map[string]string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = a }
}

func hostNetwork(p *corev1.Pod) { p.Spec.HostNetwork = true }

func pod(opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func TestInjection(t *testing.T) {
	def := Install{}
	canary := Install{Revision: "canary"}
	canaryTagged := Install{Revision: "canary", RevisionTags: []string{"prod"}}
	byDefault := Install{EnableNamespacesByDefault: true}
	disabledPolicy := Install{Values: map[string]any{"global": map[string]any{"proxy": map[string]any{"autoInject": "disabled"}}}}
	neverSel := Install{Values: map[string]any{"sidecarInjectorWebhook": map[string]any{
		"neverInjectSelector": []any{map[string]any{"matchExpressions": []any{
			map[string]any{"key": "skip-mesh", "operator": "Exists"},
		}}},
	}}}
	alwaysSel := Install{Values: map[string]any{
		"global": map[string]any{"proxy": map[string]any{"autoInject": "disabled"}},
		"sidecarInjectorWebhook": map[string]any{
			"alwaysInjectSelector": []any{map[string]any{"matchLabels": map[string]any{"mesh": "yes"}}},
		},
	}}

	enabled := map[string]string{"istio-injection": "enabled"}
	cases := []struct {
		name     string
		installs []Install
		ns       *corev1.Namespace
		pod      *corev1.Pod
		called   int    // webhooks called
		injected bool   // sidecar injected
		revision string // revision that decided (when called)
		errSub   string // injector error
		gateway  bool
	}{
		{name: "istio-injection=enabled injects", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(), called: 1, injected: true, revision: "default"},
		{name: "istio-injection=disabled wins over istio.io/rev", installs: []Install{def, canary},
			ns: ns("app", map[string]string{"istio-injection": "disabled", "istio.io/rev": "canary"}), pod: pod()},
		{name: "pod label inject=true in unlabelled namespace", installs: []Install{def},
			ns: ns("app", nil), pod: pod(podLabels(map[string]string{"sidecar.istio.io/inject": "true"})),
			called: 1, injected: true, revision: "default"},
		{name: "pod istio.io/rev=canary with only default installed", installs: []Install{def},
			ns: ns("app", nil), pod: pod(podLabels(map[string]string{"istio.io/rev": "canary"}))},
		{name: "pod istio.io/rev=canary with canary installed", installs: []Install{def, canary},
			ns: ns("app", nil), pod: pod(podLabels(map[string]string{"istio.io/rev": "canary"})),
			called: 1, injected: true, revision: "canary"},
		{name: "namespace istio.io/rev=canary", installs: []Install{def, canary},
			ns: ns("app", map[string]string{"istio.io/rev": "canary"}), pod: pod(), called: 1, injected: true, revision: "canary"},
		{name: "namespace istio.io/rev=default", installs: []Install{def, canary},
			ns: ns("app", map[string]string{"istio.io/rev": "default"}), pod: pod(), called: 1, injected: true, revision: "default"},
		{name: "namespace on a revision tag", installs: []Install{def, canaryTagged},
			ns: ns("app", map[string]string{"istio.io/rev": "prod"}), pod: pod(), called: 1, injected: true, revision: "canary"},
		{name: "hostNetwork is never injected", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(hostNetwork), called: 1, revision: "default"},
		{name: "kube-system is ignored by the injector", installs: []Install{def},
			ns: ns("kube-system", enabled), pod: pod(), called: 1, revision: "default"},
		{name: "local-path-storage is ignored by the injector", installs: []Install{def},
			ns: ns("local-path-storage", enabled), pod: pod(podLabels(map[string]string{"sidecar.istio.io/inject": "true"})),
			called: 1, revision: "default"},
		{name: "label wins over annotation (true over false)", installs: []Install{def},
			ns:     ns("app", enabled),
			pod:    pod(podLabels(map[string]string{"sidecar.istio.io/inject": "true"}), podAnnotations(map[string]string{"sidecar.istio.io/inject": "false"})),
			called: 1, injected: true, revision: "default"},
		{name: "annotation false alone disables", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(podAnnotations(map[string]string{"sidecar.istio.io/inject": "false"})),
			called: 1, revision: "default"},
		{name: "label false is filtered by the object selector", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(podLabels(map[string]string{"sidecar.istio.io/inject": "false"}))},
		{name: "invalid label value falls back to the policy", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(podLabels(map[string]string{"sidecar.istio.io/inject": "yes"})),
			called: 1, injected: true, revision: "default"},
		{name: "enableNamespacesByDefault injects unlabelled namespaces", installs: []Install{byDefault},
			ns: ns("app", nil), pod: pod(), called: 1, injected: true, revision: "default"},
		{name: "enableNamespacesByDefault skips kube-system by selector", installs: []Install{byDefault},
			ns: ns("kube-system", nil), pod: pod()},
		{name: "enableNamespacesByDefault does not skip kube-public-like names", installs: []Install{byDefault},
			ns: ns("kube-other", nil), pod: pod(), called: 1, injected: true, revision: "default"},
		{name: "policy disabled: namespace label alone does not inject", installs: []Install{disabledPolicy},
			ns: ns("app", enabled), pod: pod(), called: 1, revision: "default"},
		{name: "policy disabled: pod opt-in injects", installs: []Install{disabledPolicy},
			ns: ns("app", enabled), pod: pod(podLabels(map[string]string{"sidecar.istio.io/inject": "true"})),
			called: 1, injected: true, revision: "default"},
		{name: "neverInjectSelector", installs: []Install{neverSel},
			ns: ns("app", enabled), pod: pod(podLabels(map[string]string{"skip-mesh": ""})), called: 1, revision: "default"},
		{name: "neverInjectSelector loses to the inject label", installs: []Install{neverSel},
			ns: ns("app", enabled), pod: pod(podLabels(map[string]string{"skip-mesh": "", "sidecar.istio.io/inject": "true"})),
			called: 1, injected: true, revision: "default"},
		{name: "alwaysInjectSelector with policy disabled", installs: []Install{alwaysSel},
			ns: ns("app", enabled), pod: pod(podLabels(map[string]string{"mesh": "yes"})), called: 1, injected: true, revision: "default"},
		{name: "gateway template", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(podAnnotations(map[string]string{"inject.istio.io/templates": "gateway"})),
			called: 1, injected: true, revision: "default", gateway: true},
		{name: "unknown template fails injection", installs: []Install{def},
			ns: ns("app", enabled), pod: pod(podAnnotations(map[string]string{"inject.istio.io/templates": "nope"})),
			called: 1, revision: "default", errSub: "nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMesh(tc.installs...)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m.Evaluate(tc.ns, tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Called) != tc.called {
				t.Errorf("called %+v, want %d webhooks", out.Called, tc.called)
			}
			if out.Injected != tc.injected {
				t.Errorf("injected %v, want %v (decision %+v)", out.Injected, tc.injected, out.Decision)
			}
			if tc.called > 0 && out.Decision.Revision != tc.revision {
				t.Errorf("decided by %q, want %q", out.Decision.Revision, tc.revision)
			}
			if (tc.errSub == "") != (out.Decision.Error == "") || !strings.Contains(out.Decision.Error, tc.errSub) {
				t.Errorf("error %q, want one containing %q", out.Decision.Error, tc.errSub)
			}
			if out.Decision.Gateway != tc.gateway {
				t.Errorf("gateway %v, want %v (templates %v)", out.Decision.Gateway, tc.gateway, out.Decision.Templates)
			}
			if tc.injected && !tc.gateway && (len(out.Decision.Templates) != 1 || out.Decision.Templates[0] != "sidecar") {
				t.Errorf("templates %v, want [sidecar]", out.Decision.Templates)
			}

			// The plain Injected agrees when every install uses the
			// chart's default injector configuration.
			if len(tc.installs) == 1 && tc.installs[0].Values == nil {
				got, err := Injected(m.Webhooks, tc.ns, tc.pod)
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.injected {
					t.Errorf("Injected() = %v, want %v", got, tc.injected)
				}
			}
		})
	}
}

func TestWebhooksCalledUsesMetadataNameLabel(t *testing.T) {
	// The auto.* webhook excludes kube-system through the
	// kubernetes.io/metadata.name label, which the caller need not set.
	mwcs, err := InjectorWebhooks(Install{EnableNamespacesByDefault: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"} {
		called, err := WebhooksCalled(mwcs, ns(name, nil), pod())
		if err != nil {
			t.Fatal(err)
		}
		if len(called) != 0 {
			t.Errorf("%s: called %v", name, called)
		}
	}
	called, err := WebhooksCalled(mwcs, ns("app", nil), pod())
	if err != nil {
		t.Fatal(err)
	}
	if len(called) != 1 || called[0].Webhook != "auto.sidecar-injector.istio.io" {
		t.Errorf("app: called %v", called)
	}
}

func TestChartTemplates(t *testing.T) {
	r, err := Render(Install{})
	if err != nil {
		t.Fatal(err)
	}
	inj, err := NewInjectorWithChartTemplates(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		templates string
		want      string
	}{{"", "sidecar"}, {"gateway", "router"}, {"sidecar", "sidecar"}} {
		p := pod()
		if tc.templates != "" {
			p.Annotations = map[string]string{"inject.istio.io/templates": tc.templates}
		}
		d, err := inj.Decide("app", p, "")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Injected || d.Pod == nil {
			t.Fatalf("%q: not injected: %+v", tc.templates, d)
		}
		if args := ProxyArgs(d.Pod); len(args) < 2 || args[0] != "proxy" || args[1] != tc.want {
			t.Errorf("%q: istio-proxy args %v, want proxy %s", tc.templates, args, tc.want)
		}
	}
}
