package diff

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/kube/inject"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
)

// absent stands for "the label or annotation is not set" in value lists.
const absent = "<absent>"

// installScenario is one set of Istio installations in the cluster.
type installScenario struct {
	name string
	// installs are the helm installs of istio-discovery; nil means none is
	// installed: the project then uses mesh.DefaultInjectors, and Istio's
	// answer is the chart's default revision, Install{}.
	installs []oracle.Install
	// revisions are the istio.io/rev values generated on namespaces and
	// pods.
	revisions []string
	// anyRevision: the scenario compares the project's default selectors
	// with every revision value (allowDefaultSelectorsRevision applies).
	anyRevision bool
}

var allRevisions = []string{absent, absent, "default", "canary", "stable", "prod", ""}

var installScenarios = []installScenario{
	// Without an injector the project's default selectors accept any
	// istio.io/rev value; a real default install serves only "default".
	// The strict comparison therefore generates only revisions the default
	// chart serves.
	{name: "none installed (revisions the default chart serves)", revisions: []string{absent, absent, "default"}},
	{name: "none installed (any revision)", revisions: allRevisions, anyRevision: true},
	{name: "default revision", installs: []oracle.Install{{}}, revisions: allRevisions},
	{name: "canary revision only", installs: []oracle.Install{{Revision: "canary"}}, revisions: allRevisions},
	{name: "default revision + tag prod", installs: []oracle.Install{{RevisionTags: []string{"prod"}}}, revisions: allRevisions},
	{name: "default + canary revisions", installs: []oracle.Install{{}, {Revision: "canary"}}, revisions: allRevisions},
	{name: "canary revision + tag prod", installs: []oracle.Install{{Revision: "canary", RevisionTags: []string{"prod"}}}, revisions: allRevisions},
	{name: "enableNamespacesByDefault", installs: []oracle.Install{{EnableNamespacesByDefault: true}}, revisions: allRevisions},
	{name: "enableNamespacesByDefault + canary", installs: []oracle.Install{{EnableNamespacesByDefault: true}, {Revision: "canary"}}, revisions: allRevisions},
}

// proxyCase is one generated pod CREATE.
type proxyCase struct {
	index int
	ns    *corev1.Namespace
	pod   *corev1.Pod
}

func (c proxyCase) String() string {
	return fmt.Sprintf("case #%d\n  namespace %s labels %s\n  pod labels %s\n      annotations %s\n      hostNetwork=%v",
		c.index, c.ns.Name, formatLabels(c.ns.Labels), formatLabels(c.pod.Labels), formatLabels(c.pod.Annotations), c.pod.Spec.HostNetwork)
}

var namespaceNames = []string{"app", "app", "web", "default", "istio-system", "kube-system", "kube-public", "kube-node-lease", "local-path-storage", "kube-other"}

func setValue(m map[string]string, key, value string) {
	if value != absent {
		m[key] = value
	}
}

func genProxyCase(r *rand.Rand, index int, revisions []string) proxyCase {
	nsLabels := map[string]string{}
	setValue(nsLabels, mesh.LabelInjection, pick(r, absent, absent, "enabled", "enabled", "disabled", "other"))
	setValue(nsLabels, mesh.LabelRevision, pick(r, revisions...))
	if chance(r, 0.2) {
		nsLabels[mesh.LabelDataplaneMode] = mesh.DataplaneModeAmbient
	}
	if chance(r, 0.2) {
		nsLabels["team"] = "a"
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pick(r, namespaceNames...), Labels: nsLabels}}

	labels := map[string]string{"app": pick(r, "reviews", "ratings")}
	setValue(labels, mesh.KeySidecarInject, pick(r, absent, absent, absent, "true", "false", "True", "yes"))
	setValue(labels, mesh.LabelRevision, pick(r, revisions...))
	if chance(r, 0.08) {
		// The Gateway API deployments istiod renders itself (chart files
		// kube-gateway.yaml and waypoint.yaml).
		labels[mesh.LabelGatewayManaged] = pick(r, managedGatewayController, managedWaypointController)
	}
	annotations := map[string]string{}
	setValue(annotations, mesh.KeySidecarInject, pick(r, absent, absent, absent, "true", "false", "False", "yes"))
	// Only templates the chart defines: an unknown one makes Istio's
	// injector fail the request, i.e. the API server rejects the pod.
	setValue(annotations, mesh.AnnotationTemplates, pick(r, absent, absent, absent, "gateway", "sidecar"))
	if chance(r, 0.08) {
		annotations[mesh.AnnotationStatus] = `{"containers":["istio-proxy"]}`
	}
	if chance(r, 0.1) {
		annotations[mesh.AnnotationAmbientRedirection] = mesh.AmbientRedirectionEnabled
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns.Name, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			Containers:  []corev1.Container{{Name: "app", Image: "app:1"}},
			HostNetwork: chance(r, 0.1),
		},
	}
	return proxyCase{index: index, ns: ns, pod: pod}
}

// The values of gateway.istio.io/managed on the pods istiod deploys for
// Gateway API gateways and waypoints (TestManagedGatewayTemplates checks
// them against the chart).
const (
	managedGatewayController  = constants.ManagedGatewayControllerLabel
	managedWaypointController = constants.ManagedGatewayMeshControllerLabel
)

// istioKind is Istio's answer, phrased like the project's ProxyKind.
type istioAnswer struct {
	kind mesh.ProxyKind
	// anyKind: the pod was injected before (status annotation); it has a
	// proxy but its kind is not decided now.
	anyKind bool
	why     string
}

func istioProxyOf(m *oracle.Mesh, c proxyCase, managed map[string]oracle.ProxyType) (istioAnswer, error) {
	if _, ok := c.pod.Annotations[mesh.AnnotationStatus]; ok {
		return istioAnswer{kind: mesh.SidecarProxy, anyKind: true, why: "already injected (status annotation): it has a proxy"}, nil
	}
	if v, ok := c.pod.Labels[mesh.LabelGatewayManaged]; ok {
		typ, known := managed[v]
		if !known {
			return istioAnswer{}, fmt.Errorf("no chart template deploys %s=%s", mesh.LabelGatewayManaged, v)
		}
		return istioAnswer{kind: mesh.GatewayProxy, why: fmt.Sprintf("deployed by istiod as a %s (%s=%s)", typ, mesh.LabelGatewayManaged, v)}, nil
	}
	out, err := m.Evaluate(c.ns, c.pod)
	if err != nil {
		return istioAnswer{}, err
	}
	if out.Decision.Error != "" {
		return istioAnswer{}, fmt.Errorf("injector failed the pod: %s", out.Decision.Error)
	}
	called := make([]string, 0, len(out.Called))
	for _, c := range out.Called {
		called = append(called, c.Configuration+"/"+c.Webhook)
	}
	why := fmt.Sprintf("webhooks called %v; injector %q injected=%v templates %v", called, out.Decision.Revision, out.Decision.Injected, out.Decision.Templates)
	switch {
	case !out.Injected:
		return istioAnswer{kind: mesh.NoProxy, why: why}, nil
	case out.Decision.Gateway:
		return istioAnswer{kind: mesh.GatewayProxy, why: why}, nil
	}
	return istioAnswer{kind: mesh.SidecarProxy, why: why}, nil
}

func kindName(k mesh.ProxyKind) string {
	if k == mesh.NoProxy {
		return "no proxy"
	}
	return string(k)
}

// defaultSelectorsRevisionDifference reports whether the project's default
// injector selectors (used when no injector is installed) select the pod
// only because they accept any istio.io/rev value, where the chart's
// default revision selects istio.io/rev=default only
// (mesh.DefaultInjectorSelectors: "the revision left open").
func defaultSelectorsRevisionDifference(c proxyCase) bool {
	nsRev, nsHasRev := c.ns.Labels[mesh.LabelRevision]
	_, nsHasInjection := c.ns.Labels[mesh.LabelInjection]
	podRev, podHasRev := c.pod.Labels[mesh.LabelRevision]
	switch {
	case nsHasRev && !nsHasInjection:
		return nsRev != "default"
	case !nsHasRev && !nsHasInjection:
		return podHasRev && podRev != "default"
	}
	return false
}

const allowDefaultSelectorsRevision = "no injector installed: the default selectors accept any istio.io/rev value (mesh.DefaultInjectorSelectors, \"the revision left open\"); a default install serves istio.io/rev=default only"

func TestProxyDecision(t *testing.T) {
	managed := managedGatewayTypes(t)
	seed := seedFor(t, 1001)
	perScenario := scaled(t, 700)
	for si, sc := range installScenarios {
		t.Run(sc.name, func(t *testing.T) {
			rec := newRecorder(t, "proxy decision, "+sc.name, seed)
			defer rec.finish()
			installs := sc.installs
			if installs == nil {
				installs = []oracle.Install{{}}
			}
			m, err := oracle.NewMesh(installs...)
			if err != nil {
				t.Fatal(err)
			}
			var mwcs []*admissionregistrationv1.MutatingWebhookConfiguration
			inj := mesh.DefaultInjectors()
			if sc.installs != nil {
				mwcs = m.Webhooks
				inj = mesh.InjectorsFrom(mwcs)
				if !inj.Installed {
					t.Fatalf("mesh.InjectorsFrom does not recognise the chart's configurations %v", mwcNames(mwcs))
				}
			}
			r := rand.New(rand.NewSource(seed + int64(si)*1_000_003))
			for i := 0; i < perScenario; i++ {
				c := genProxyCase(r, i, sc.revisions)
				want, err := istioProxyOf(m, c, managed)
				if err != nil {
					t.Fatalf("%s\n%v", c, err)
				}
				got := mesh.ProxyOf(inj, c.ns.Labels, mesh.Workload{
					Namespace: c.ns.Name, Labels: c.pod.Labels, Annotations: c.pod.Annotations,
					HostNetwork: c.pod.Spec.HostNetwork, Stage: mesh.StageTemplate,
				})
				// The same decision through the cluster view the server
				// and the offline checker use (a Deployment's template is
				// judged like a pod being created).
				viaView := proxyViaView(c, mwcs)
				switch {
				case want.anyKind:
					rec.count("istio: injected earlier")
				default:
					rec.count("istio: " + kindName(want.kind))
				}
				detail := fmt.Sprintf("%s\n  project: %s (%s)\n  istio:   %s (%s)", c, kindName(got.Kind), got.Reason, kindName(want.kind), want.why)
				if viaView.Kind != got.Kind {
					rec.disagree("clusterview.ProxyOf differs from mesh.ProxyOf", detail+fmt.Sprintf("\n  via clusterview: %s (%s)", kindName(viaView.Kind), viaView.Reason))
				}
				switch {
				case want.anyKind && got.Kind != mesh.NoProxy:
					rec.ok()
				case got.Kind == want.kind:
					rec.ok()
				case sc.anyRevision && want.kind == mesh.NoProxy && defaultSelectorsRevisionDifference(c):
					rec.allow(allowDefaultSelectorsRevision)
				case (got.Kind == mesh.NoProxy) != (want.kind == mesh.NoProxy):
					rec.disagree("proxy or not", detail)
				default:
					rec.disagree("proxy kind", detail)
				}
			}
		})
	}
}

func proxyViaView(c proxyCase, mwcs []*admissionregistrationv1.MutatingWebhookConfiguration) mesh.Proxy {
	view := clusterview.NewMemory("istio-system")
	view.AddNamespace(c.ns)
	for _, m := range mwcs {
		view.AddMutatingWebhookConfiguration(m)
	}
	return clusterview.ProxyOf(view, clusterview.Workload{
		Kind: "Deployment", Namespace: c.ns.Name, Name: "app",
		Labels: c.pod.Labels, Annotations: clusterview.KeepAnnotations(c.pod.Annotations), HostNetwork: c.pod.Spec.HostNetwork,
	})
}

func mwcNames(mwcs []*admissionregistrationv1.MutatingWebhookConfiguration) []string {
	var out []string
	for _, m := range mwcs {
		out = append(out, m.Name)
	}
	return out
}

// TestProxyDecisionHandPicked runs the cases the brief lists by name
// through the same comparison.
func TestProxyDecisionHandPicked(t *testing.T) {
	managed := managedGatewayTypes(t)
	type podSpec struct {
		labels, annotations map[string]string
		hostNetwork         bool
	}
	enabled := map[string]string{mesh.LabelInjection: "enabled"}
	cases := []struct {
		name     string
		installs []oracle.Install
		ns       string
		nsLabels map[string]string
		pod      podSpec
		want     mesh.ProxyKind
	}{
		{"kube-system labelled for injection", []oracle.Install{{}}, "kube-system", enabled, podSpec{}, mesh.NoProxy},
		{"kube-public, pod opts in", []oracle.Install{{}}, "kube-public", nil, podSpec{labels: map[string]string{mesh.KeySidecarInject: "true"}}, mesh.NoProxy},
		{"kube-node-lease with enableNamespacesByDefault", []oracle.Install{{EnableNamespacesByDefault: true}}, "kube-node-lease", nil, podSpec{}, mesh.NoProxy},
		{"local-path-storage labelled", []oracle.Install{{}}, "local-path-storage", enabled, podSpec{}, mesh.NoProxy},
		{"hostNetwork in an injected namespace", []oracle.Install{{}}, "app", enabled, podSpec{hostNetwork: true}, mesh.NoProxy},
		{"label True is not true for the object selector", []oracle.Install{{}}, "app", nil, podSpec{labels: map[string]string{mesh.KeySidecarInject: "True"}}, mesh.NoProxy},
		{"label yes falls back to the policy", []oracle.Install{{}}, "app", enabled, podSpec{labels: map[string]string{mesh.KeySidecarInject: "yes"}}, mesh.SidecarProxy},
		{"annotation false vetoes", []oracle.Install{{}}, "app", enabled, podSpec{annotations: map[string]string{mesh.KeySidecarInject: "false"}}, mesh.NoProxy},
		{"label true wins over annotation false", []oracle.Install{{}}, "app", enabled,
			podSpec{labels: map[string]string{mesh.KeySidecarInject: "true"}, annotations: map[string]string{mesh.KeySidecarInject: "false"}}, mesh.SidecarProxy},
		{"gateway template", []oracle.Install{{}}, "app", enabled, podSpec{annotations: map[string]string{mesh.AnnotationTemplates: "gateway"}}, mesh.GatewayProxy},
		{"ambient namespace without injection labels", []oracle.Install{{}}, "app", map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient}, podSpec{}, mesh.NoProxy},
		{"ambient namespace also labelled for injection", []oracle.Install{{}}, "app",
			map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient, mesh.LabelInjection: "enabled"}, podSpec{}, mesh.SidecarProxy},
		{"istio.io/rev empty on the namespace, default installed", []oracle.Install{{}}, "app", map[string]string{mesh.LabelRevision: ""}, podSpec{}, mesh.NoProxy},
		{"namespace on the prod tag", []oracle.Install{{RevisionTags: []string{"prod"}}}, "app", map[string]string{mesh.LabelRevision: "prod"}, podSpec{}, mesh.SidecarProxy},
		{"istio-injection=enabled with canary only", []oracle.Install{{Revision: "canary"}}, "app", enabled, podSpec{}, mesh.NoProxy},
		{"pod on canary, canary only", []oracle.Install{{Revision: "canary"}}, "app", nil, podSpec{labels: map[string]string{mesh.LabelRevision: "canary"}}, mesh.SidecarProxy},
		{"injected earlier, namespace no longer labelled", []oracle.Install{{}}, "app", nil, podSpec{annotations: map[string]string{mesh.AnnotationStatus: "{}"}}, mesh.SidecarProxy},
		{"managed gateway in an injected namespace", []oracle.Install{{}}, "app", enabled,
			podSpec{labels: map[string]string{mesh.LabelGatewayManaged: managedGatewayController, mesh.KeySidecarInject: "false"}}, mesh.GatewayProxy},
		{"managed waypoint", []oracle.Install{{}}, "app", nil,
			podSpec{labels: map[string]string{mesh.LabelGatewayManaged: managedWaypointController, mesh.KeySidecarInject: "false"}}, mesh.GatewayProxy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := oracle.NewMesh(tc.installs...)
			if err != nil {
				t.Fatal(err)
			}
			c := proxyCase{
				ns: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tc.ns, Labels: tc.nsLabels}},
				pod: &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: tc.ns, Labels: tc.pod.labels, Annotations: tc.pod.annotations},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}, HostNetwork: tc.pod.hostNetwork},
				},
			}
			want, err := istioProxyOf(m, c, managed)
			if err != nil {
				t.Fatal(err)
			}
			if want.kind != tc.want {
				t.Fatalf("the oracle says %s (%s), the case expects %s", kindName(want.kind), want.why, kindName(tc.want))
			}
			got := mesh.ProxyOf(mesh.InjectorsFrom(m.Webhooks), c.ns.Labels, mesh.Workload{
				Namespace: tc.ns, Labels: tc.pod.labels, Annotations: tc.pod.annotations, HostNetwork: tc.pod.hostNetwork, Stage: mesh.StageTemplate,
			})
			if got.Kind != want.kind {
				t.Errorf("%s\n  project: %s (%s)\n  istio:   %s (%s)", c, kindName(got.Kind), got.Reason, kindName(want.kind), want.why)
			}
		})
	}
}

// managedGatewayTypes reads, from the injector ConfigMap the chart renders,
// which node type istiod's Gateway API deployments run: the kube-gateway
// template labels its pods gateway.istio.io/managed=istio.io-gateway-controller
// and starts `pilot-agent proxy router`; the waypoint template labels them
// with the mesh controller's name and starts `proxy waypoint`.
func managedGatewayTypes(t *testing.T) map[string]oracle.ProxyType {
	t.Helper()
	r, err := oracle.Render(oracle.Install{})
	if err != nil {
		t.Fatal(err)
	}
	templates, err := injectorTemplates(r)
	if err != nil {
		t.Fatal(err)
	}
	check := func(template, label string, typ oracle.ProxyType) {
		body, ok := templates[template]
		if !ok {
			t.Fatalf("the chart's injector config has no %s template", template)
		}
		if label != "" && !strings.Contains(body, `"gateway.istio.io/managed" "`+label+`"`) {
			t.Fatalf("template %s does not label its pods gateway.istio.io/managed=%s", template, label)
		}
		if !containsArgs(body, "proxy", string(typ)) {
			t.Fatalf("template %s does not start `proxy %s`", template, typ)
		}
	}
	check("kube-gateway", managedGatewayController, oracle.Router)
	// The waypoint template takes its label value from istiod
	// (.ControllerLabel, the mesh controller's name).
	check("waypoint", "", oracle.Waypoint)
	return map[string]oracle.ProxyType{
		managedGatewayController:  oracle.Router,
		managedWaypointController: oracle.Waypoint,
	}
}

// containsArgs reports whether a template's YAML lists args a then b on
// consecutive lines ("- proxy" followed by "- router").
func containsArgs(body, a, b string) bool {
	lines := strings.Split(body, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "- "+a && strings.TrimSpace(lines[i+1]) == "- "+b {
			return true
		}
	}
	return false
}

func TestManagedGatewayTemplates(t *testing.T) {
	got := managedGatewayTypes(t)
	if len(got) != 2 {
		t.Fatalf("%v", got)
	}
}

// injectorTemplates returns the raw injection templates of a rendered
// install's injector ConfigMap, parsed as istiod parses it.
func injectorTemplates(r *oracle.Rendered) (map[string]string, error) {
	cfg, err := inject.UnmarshalConfig([]byte(r.InjectorConfig))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, body := range cfg.RawTemplates {
		out[name] = body
	}
	return out, nil
}

// TestProxyKindFromChartTemplates injects pods asking for one or two of the
// chart's injection templates with Istio's real templates, and compares the
// proxy type the injected istio-proxy container starts (`proxy router` is a
// gateway, `proxy sidecar` a sidecar) with the project's kind. Templates
// without an istio-proxy container (grpc-simple: proxyless gRPC, whose
// xDS client istiod also serves as a sidecar node) count as sidecar.
func TestProxyKindFromChartTemplates(t *testing.T) {
	r, err := oracle.Render(oracle.Install{})
	if err != nil {
		t.Fatal(err)
	}
	inj, err := oracle.NewInjectorWithChartTemplates(r)
	if err != nil {
		t.Fatal(err)
	}
	injectable := []string{"sidecar", "gateway", "grpc-agent", "grpc-simple"}
	var values []string
	for _, a := range injectable {
		values = append(values, a, " "+a+" ")
		for _, b := range injectable {
			if a != b {
				values = append(values, a+","+b)
			}
		}
	}
	rec := newRecorder(t, "proxy kind from the chart's injection templates", 0)
	defer rec.finish()
	enabled := map[string]string{mesh.LabelInjection: "enabled"}
	for _, v := range values {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "app", Annotations: map[string]string{mesh.AnnotationTemplates: v}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		}
		d, err := inj.Decide("app", pod, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.Error != "" || !d.Injected {
			t.Fatalf("templates %q: injected %v, error %q", v, d.Injected, d.Error)
		}
		args := oracle.ProxyArgs(d.Pod)
		want := mesh.SidecarProxy
		if len(args) >= 2 && args[0] == "proxy" && args[1] == "router" {
			want = mesh.GatewayProxy
		}
		got := mesh.ProxyOf(mesh.InjectorsFrom(r.Webhooks), enabled, mesh.Workload{Namespace: "app", Annotations: pod.Annotations, Stage: mesh.StageTemplate})
		detail := fmt.Sprintf("namespace app labels %s, pod annotations %s\n  project: %s (%s)\n  istio:   istio-proxy args %v",
			formatLabels(enabled), formatLabels(pod.Annotations), kindName(got.Kind), got.Reason, args)
		if got.Kind == want {
			rec.ok()
			continue
		}
		rec.disagree("proxy kind with several templates: the last template's istio-proxy args decide, not the presence of gateway", detail)
	}
}
