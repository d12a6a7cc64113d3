package mesh

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// injectorConfig builds an injector configuration the way the
// istio-discovery chart does for a revision (revision-tag configurations
// look the same with the tag's name): a rev.namespace and a rev.object
// webhook selecting istio.io/rev=rev.
func injectorConfig(name, rev string, extraLabels map[string]string) *admissionregistrationv1.MutatingWebhookConfiguration {
	labels := map[string]string{LabelRevision: rev}
	for k, v := range extraLabels {
		labels[k] = v
	}
	notFalse := metav1.LabelSelectorRequirement{Key: KeySidecarInject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"}}
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{
				Name:  "rev.namespace.sidecar-injector.istio.io",
				Rules: rules,
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: LabelRevision, Operator: metav1.LabelSelectorOpIn, Values: []string{rev}},
					{Key: LabelInjection, Operator: metav1.LabelSelectorOpDoesNotExist},
				}},
				ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notFalse}},
			},
			{
				Name:  "rev.object.sidecar-injector.istio.io",
				Rules: rules,
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: LabelRevision, Operator: metav1.LabelSelectorOpDoesNotExist},
					{Key: LabelInjection, Operator: metav1.LabelSelectorOpDoesNotExist},
				}},
				ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					notFalse, {Key: LabelRevision, Operator: metav1.LabelSelectorOpIn, Values: []string{rev}},
				}},
			},
		},
	}
}

func TestProxyOf(t *testing.T) {
	none := DefaultInjectors()
	canaryOnly := InjectorsFrom([]*admissionregistrationv1.MutatingWebhookConfiguration{injectorConfig("istio-sidecar-injector-canary", "canary", nil)})
	withTag := InjectorsFrom([]*admissionregistrationv1.MutatingWebhookConfiguration{
		injectorConfig("istio-sidecar-injector-canary", "canary", nil),
		injectorConfig("istio-revision-tag-prod", "prod", map[string]string{LabelTag: "prod"}),
	})
	enabled := map[string]string{LabelInjection: "enabled"}
	tests := []struct {
		name     string
		inj      Injectors
		nsLabels map[string]string
		w        Workload
		want     ProxyKind
		ambient  bool
	}{
		// The four selectors of the injector (no injector installed).
		{name: "namespace istio-injection=enabled", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod"}, want: SidecarProxy},
		{name: "namespace istio-injection=disabled", inj: none, nsLabels: map[string]string{LabelInjection: "disabled"}, w: Workload{Namespace: "prod"}, want: NoProxy},
		{name: "namespace istio.io/rev without istio-injection", inj: none, nsLabels: map[string]string{LabelRevision: "canary"}, w: Workload{Namespace: "prod"}, want: SidecarProxy},
		{name: "namespace istio-injection=disabled plus istio.io/rev", inj: none, nsLabels: map[string]string{LabelInjection: "disabled", LabelRevision: "canary"}, w: Workload{Namespace: "prod"}, want: NoProxy},
		{name: "pod sidecar.istio.io/inject=true in an unlabelled namespace", inj: none, w: Workload{Namespace: "prod", Labels: map[string]string{KeySidecarInject: "true"}}, want: SidecarProxy},
		{name: "pod sidecar.istio.io/inject=true in a namespace with istio-injection=disabled", inj: none, nsLabels: map[string]string{LabelInjection: "disabled"}, w: Workload{Namespace: "prod", Labels: map[string]string{KeySidecarInject: "true"}}, want: NoProxy},
		{name: "pod istio.io/rev in an unlabelled namespace", inj: none, w: Workload{Namespace: "prod", Labels: map[string]string{LabelRevision: "canary"}}, want: SidecarProxy},
		{name: "pod istio.io/rev opting out", inj: none, w: Workload{Namespace: "prod", Labels: map[string]string{LabelRevision: "canary", KeySidecarInject: "false"}}, want: NoProxy},
		{name: "nothing labelled", inj: none, w: Workload{Namespace: "prod"}, want: NoProxy},
		// The injector's own veto.
		{name: "hostNetwork", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", HostNetwork: true}, want: NoProxy},
		{name: "kube-system", inj: none, nsLabels: enabled, w: Workload{Namespace: "kube-system"}, want: NoProxy},
		{name: "local-path-storage", inj: none, nsLabels: enabled, w: Workload{Namespace: "local-path-storage"}, want: NoProxy},
		{name: "annotation inject=false counts without the label", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Annotations: map[string]string{KeySidecarInject: "false"}}, want: NoProxy},
		{name: "label wins over the annotation", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Labels: map[string]string{KeySidecarInject: "true"}, Annotations: map[string]string{KeySidecarInject: "false"}}, want: SidecarProxy},
		{name: "a label value other than true/false falls back to the policy", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Labels: map[string]string{KeySidecarInject: "False"}}, want: SidecarProxy},
		{name: "an annotation value other than true/false falls back to the policy", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Annotations: map[string]string{KeySidecarInject: "no"}}, want: SidecarProxy},
		// Installed injectors decide which revisions inject.
		{name: "namespace revision no installed revision serves", inj: canaryOnly, nsLabels: map[string]string{LabelRevision: "stable"}, w: Workload{Namespace: "prod"}, want: NoProxy},
		{name: "namespace revision served", inj: canaryOnly, nsLabels: map[string]string{LabelRevision: "canary"}, w: Workload{Namespace: "prod"}, want: SidecarProxy},
		{name: "namespace revision served by a tag", inj: withTag, nsLabels: map[string]string{LabelRevision: "prod"}, w: Workload{Namespace: "prod"}, want: SidecarProxy},
		{name: "istio-injection=enabled with no default-revision injector", inj: canaryOnly, nsLabels: enabled, w: Workload{Namespace: "prod"}, want: NoProxy},
		{name: "pod revision not served", inj: canaryOnly, w: Workload{Namespace: "prod", Labels: map[string]string{LabelRevision: "stable"}}, want: NoProxy},
		// Evidence on running pods.
		{name: "status annotation is proof, whatever the labels", inj: canaryOnly, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationStatus: ""}, Stage: StageRunning}, want: SidecarProxy},
		{name: "status annotation with the gateway template", inj: none, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationStatus: "", AnnotationTemplates: "gateway"}, Stage: StageRunning}, want: GatewayProxy},
		{name: "injector installed, admitted without status: not injected", inj: canaryOnly, nsLabels: map[string]string{LabelRevision: "canary"}, w: Workload{Namespace: "prod", Stage: StageAdmission}, want: NoProxy},
		{name: "injector installed, running without status: not injected (created before the label)", inj: canaryOnly, nsLabels: map[string]string{LabelRevision: "canary"}, w: Workload{Namespace: "prod", Stage: StageRunning}, want: NoProxy},
		{name: "no injector, running pod recorded at admission keeps its proxy after the namespace loses its label", inj: none, w: Workload{Namespace: "prod", Stage: StageRunning, RecordedKind: SidecarProxy}, want: SidecarProxy},
		{name: "no injector, recorded gateway", inj: none, w: Workload{Namespace: "prod", Stage: StageRunning, RecordedKind: GatewayProxy}, want: GatewayProxy},
		{name: "a recorded kind is ignored at admission (a user may have copied the annotation)", inj: none, w: Workload{Namespace: "prod", Stage: StageAdmission, RecordedKind: SidecarProxy}, want: NoProxy},
		// Gateways and waypoints.
		{name: "gateway template", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationTemplates: "gateway"}}, want: GatewayProxy},
		{name: "templates list with gateway", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationTemplates: "spire, gateway"}}, want: GatewayProxy},
		{name: "a later template overrides the gateway's proxy type", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationTemplates: "gateway,sidecar"}}, want: SidecarProxy},
		{name: "gateway after grpc-agent", inj: none, nsLabels: enabled, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationTemplates: "grpc-agent,gateway"}}, want: GatewayProxy},
		{name: "waypoint deployed by istiod", inj: canaryOnly, w: Workload{Namespace: "prod", Labels: map[string]string{LabelGatewayManaged: "istio.io-mesh-controller", KeySidecarInject: "false"}, Stage: StageRunning}, want: GatewayProxy},
		// Ambient.
		{name: "ambient namespace", inj: none, nsLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}, w: Workload{Namespace: "prod"}, want: NoProxy, ambient: true},
		{name: "ambient namespace, pod injected by its own label", inj: none, nsLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}, w: Workload{Namespace: "prod", Labels: map[string]string{KeySidecarInject: "true"}}, want: SidecarProxy},
		{name: "ambient label with istio-injection=enabled is not ambient", inj: none, nsLabels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient, LabelInjection: "enabled"}, w: Workload{Namespace: "prod"}, want: SidecarProxy},
		{name: "pod enrolled by istio-cni", inj: canaryOnly, w: Workload{Namespace: "prod", Annotations: map[string]string{AnnotationAmbientRedirection: AmbientRedirectionEnabled}, Stage: StageRunning}, want: NoProxy, ambient: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ProxyOf(tc.inj, tc.nsLabels, tc.w)
			if got.Kind != tc.want || got.Ambient != tc.ambient {
				t.Errorf("ProxyOf = %+v; want kind %q, ambient %v", got, tc.want, tc.ambient)
			}
			if got.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestInjectorsFrom(t *testing.T) {
	if got := InjectorsFrom(nil); got.Installed || len(got.Webhooks) != 4 {
		t.Errorf("no configurations: %+v; want the 4 default selectors, not installed", got)
	}
	other := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cert-manager"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "x"}}}
	if got := InjectorsFrom([]*admissionregistrationv1.MutatingWebhookConfiguration{other}); got.Installed {
		t.Errorf("a configuration that is not Istio's counts as an injector: %+v", got)
	}
	cfg := injectorConfig("istio-sidecar-injector", "default", nil)
	// A webhook for something other than pod creation is not an injector.
	cfg.Webhooks = append(cfg.Webhooks, admissionregistrationv1.MutatingWebhook{Name: "other", Rules: []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
	}}})
	// An invalid selector selects nothing.
	cfg.Webhooks = append(cfg.Webhooks, admissionregistrationv1.MutatingWebhook{Name: "bad", Rules: cfg.Webhooks[0].Rules,
		ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}})
	got := InjectorsFrom([]*admissionregistrationv1.MutatingWebhookConfiguration{cfg})
	if !got.Installed || len(got.Webhooks) != 2 {
		t.Errorf("got %d webhooks (installed %v), want the 2 pod-creation webhooks", len(got.Webhooks), got.Installed)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		in      string
		want    Config
		wantErr bool
	}{
		{in: "", want: Config{}},
		{in: "rootNamespace: istio-config\n", want: Config{RootNamespace: "istio-config"}},
		{in: "defaultConfig:\n  interceptionMode: NONE\n", want: Config{InterceptionMode: InterceptionNone}},
		{in: `{"rootNamespace": "json-root"}`, want: Config{RootNamespace: "json-root"}},
		{in: "defaultConfig:\n  interceptionMode: none\n", wantErr: true},
		{in: "rootNamespace: [\n", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseConfig(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseConfig(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestEffectiveInterceptionMode(t *testing.T) {
	tests := []struct {
		annotation, meshDefault, want string
	}{
		{"", "", InterceptionRedirect},
		{"", InterceptionNone, InterceptionNone},
		{InterceptionTProxy, InterceptionNone, InterceptionTProxy},
		// istiod reads only the exact names.
		{"none", InterceptionNone, InterceptionRedirect},
	}
	for _, tc := range tests {
		annotations := map[string]string{}
		if tc.annotation != "" {
			annotations[AnnotationInterceptionMode] = tc.annotation
		}
		if got := EffectiveInterceptionMode(annotations, tc.meshDefault); got != tc.want {
			t.Errorf("EffectiveInterceptionMode(%q, %q) = %q, want %q", tc.annotation, tc.meshDefault, got, tc.want)
		}
	}
}

func TestIPFamilyOf(t *testing.T) {
	tests := []struct {
		in   []string
		want IPFamily
		ok   bool
	}{
		{[]string{"10.244.0.0/24"}, IPv4, true},
		{[]string{"fd00::/64"}, IPv6, true},
		{[]string{"10.244.0.0/24", "fd00::/64"}, DualStack, true},
		{[]string{"10.96.0.1"}, IPv4, true},
		{[]string{"::ffff:10.0.0.1"}, IPv4, true},
		{[]string{"", "None"}, "", false},
		{nil, "", false},
	}
	for _, tc := range tests {
		got, ok := IPFamilyOf(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("IPFamilyOf(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, f := range []IPFamily{IPv4, IPv6, DualStack} {
		if parsed, err := ParseIPFamily(string(f)); err != nil || parsed != f {
			t.Errorf("ParseIPFamily(%q) = %q, %v", f, parsed, err)
		}
	}
	if _, err := ParseIPFamily("auto"); err == nil {
		t.Error("ParseIPFamily(auto) succeeded; auto is the caller's business")
	}
}
