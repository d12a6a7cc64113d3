package webhook_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// deployWebhooksFile is the manifest `kubectl apply -k deploy/` installs.
const deployWebhooksFile = "../deploy/base/webhooks.yaml"

// The in-cluster Service the manifests point the API server at.
const (
	serviceNamespace = "sidecar-webhook-system"
	serviceName      = "sidecar-webhook"
	servicePort      = int32(443)
)

// deployOptions are the options that describe the deploy/ installation.
var deployOptions = webhook.ConfigOptions{
	ExcludedNamespaces: []string{"sidecar-webhook-system", "kube-system"},
	WithPods:           true,
}

func serviceClientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
		Namespace: serviceNamespace, Name: serviceName, Path: &path, Port: ptr(servicePort),
	}}
}

// servedPaths are the paths the server registers handlers on.
var servedPaths = []string{webhook.ValidateSidecarsPath, webhook.MutateSidecarsPath, webhook.MutatePodsPath}

// loadDeployWebhooks decodes the two configurations of deploy/base/webhooks.yaml
// strictly, so that a misspelt field (say, timeoutSecond) fails the test
// instead of being silently dropped.
func loadDeployWebhooks(t *testing.T) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	data, err := os.ReadFile(deployWebhooksFile)
	if err != nil {
		t.Fatal(err)
	}
	var (
		validating *admissionregistrationv1.ValidatingWebhookConfiguration
		mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", deployWebhooksFile, i, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: document %d: %v", deployWebhooksFile, i, err)
		}
		switch tm.Kind {
		case "":
			continue // comments only
		case "ValidatingWebhookConfiguration":
			if validating != nil {
				t.Fatalf("%s: more than one ValidatingWebhookConfiguration", deployWebhooksFile)
			}
			validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, validating); err != nil {
				t.Fatalf("%s: document %d: %v", deployWebhooksFile, i, err)
			}
		case "MutatingWebhookConfiguration":
			if mutating != nil {
				t.Fatalf("%s: more than one MutatingWebhookConfiguration", deployWebhooksFile)
			}
			mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, mutating); err != nil {
				t.Fatalf("%s: document %d: %v", deployWebhooksFile, i, err)
			}
		default:
			t.Fatalf("%s: document %d: unexpected kind %q", deployWebhooksFile, i, tm.Kind)
		}
		if tm.APIVersion != "admissionregistration.k8s.io/v1" {
			t.Errorf("%s: document %d: apiVersion %q, want admissionregistration.k8s.io/v1", deployWebhooksFile, i, tm.APIVersion)
		}
	}
	if validating == nil || mutating == nil {
		t.Fatalf("%s: want one ValidatingWebhookConfiguration and one MutatingWebhookConfiguration (validating found: %t, mutating found: %t)",
			deployWebhooksFile, validating != nil, mutating != nil)
	}
	return validating, mutating
}

// TestDeployConfigurationsMatchCode checks that the configurations shipped in
// deploy/ are the ones the code builds for the same installation (what the
// dev command registers), field by field. Label selectors are compared by
// meaning: matchLabels {k: v} is the requirement "k In (v)", and the order
// of requirements (which are ANDed) and of values does not matter.
func TestDeployConfigurationsMatchCode(t *testing.T) {
	gotV, gotM := loadDeployWebhooks(t)
	wantV := webhook.ValidatingConfiguration(serviceClientConfig, deployOptions)
	wantM := webhook.MutatingConfiguration(serviceClientConfig, deployOptions)

	for _, c := range []struct{ kind, got, want string }{
		{"ValidatingWebhookConfiguration", gotV.Name, wantV.Name},
		{"MutatingWebhookConfiguration", gotM.Name, wantM.Name},
	} {
		if c.got != c.want || c.want != webhook.ConfigurationName {
			t.Errorf("%s name: deploy/ has %q, code %q (ConfigurationName %q)", c.kind, c.got, c.want, webhook.ConfigurationName)
		}
	}
	// cert-manager's CA injector fills the caBundle of both configurations.
	for kind, ann := range map[string]map[string]string{
		"ValidatingWebhookConfiguration": gotV.Annotations, "MutatingWebhookConfiguration": gotM.Annotations,
	} {
		if got, want := ann["cert-manager.io/inject-ca-from"], serviceNamespace+"/sidecar-webhook-serving"; got != want {
			t.Errorf("%s: annotation cert-manager.io/inject-ca-from = %q, want %q", kind, got, want)
		}
	}

	compare := func(kind string, gotNames, wantNames []string, diff func(i, j int) string) {
		t.Helper()
		if !slices.Equal(gotNames, wantNames) {
			t.Errorf("%s webhook names (in order): deploy/ has %q, code builds %q", kind, gotNames, wantNames)
		}
		for j, name := range wantNames {
			i := slices.Index(gotNames, name)
			if i < 0 {
				continue
			}
			if d := diff(i, j); d != "" {
				t.Errorf("%s webhook %s differs (-deploy/ +code):\n%s", kind, name, d)
			}
		}
	}

	compare("validating", validatingNames(gotV), validatingNames(wantV), func(i, j int) string {
		return cmp.Diff(normalizeValidating(gotV.Webhooks[i]), normalizeValidating(wantV.Webhooks[j]))
	})
	compare("mutating", mutatingNames(gotM), mutatingNames(wantM), func(i, j int) string {
		return cmp.Diff(normalizeMutating(gotM.Webhooks[i]), normalizeMutating(wantM.Webhooks[j]))
	})
}

// TestDeployConfigurationsPolicy pins what the issue asks of the shipped
// configurations, independently of the code: a change to either side that
// keeps them equal but breaks the policy still fails here.
func TestDeployConfigurationsPolicy(t *testing.T) {
	v, m := loadDeployWebhooks(t)
	type entry struct {
		name           string
		rules          []admissionregistrationv1.RuleWithOperations
		failurePolicy  *admissionregistrationv1.FailurePolicyType
		sideEffects    *admissionregistrationv1.SideEffectClass
		matchPolicy    *admissionregistrationv1.MatchPolicyType
		timeout        *int32
		reviewVersions []string
		nsSelector     *metav1.LabelSelector
	}
	var entries []entry
	for _, w := range v.Webhooks {
		entries = append(entries, entry{w.Name, w.Rules, w.FailurePolicy, w.SideEffects, w.MatchPolicy, w.TimeoutSeconds, w.AdmissionReviewVersions, w.NamespaceSelector})
	}
	for _, w := range m.Webhooks {
		entries = append(entries, entry{w.Name, w.Rules, w.FailurePolicy, w.SideEffects, w.MatchPolicy, w.TimeoutSeconds, w.AdmissionReviewVersions, w.NamespaceSelector})
	}
	sidecarHooks, podHooks := 0, 0
	for _, e := range entries {
		if !slices.Equal(e.reviewVersions, []string{"v1"}) {
			t.Errorf("%s: admissionReviewVersions %q, want [v1]", e.name, e.reviewVersions)
		}
		if e.sideEffects == nil || *e.sideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("%s: sideEffects %v, want None", e.name, deref(e.sideEffects))
		}
		if e.matchPolicy == nil || *e.matchPolicy != admissionregistrationv1.Equivalent {
			t.Errorf("%s: matchPolicy %v, want Equivalent", e.name, deref(e.matchPolicy))
		}
		// "A few seconds": well below the API server's 30 s maximum (and
		// the Deployment's grace period, checked by test/deploy).
		if e.timeout == nil || *e.timeout < 1 || *e.timeout > 10 {
			t.Errorf("%s: timeoutSeconds %v, want set and between 1 and 10", e.name, deref(e.timeout))
		}
		// Never send the webhook's own namespace or kube-system.
		excluded := selectorRequirement(e.nsSelector, "kubernetes.io/metadata.name", metav1.LabelSelectorOpNotIn)
		for _, ns := range []string{serviceNamespace, "kube-system"} {
			if excluded == nil || !slices.Contains(excluded.Values, ns) {
				t.Errorf("%s: namespaceSelector does not exclude namespace %s", e.name, ns)
			}
		}
		if len(e.rules) != 1 {
			t.Errorf("%s: %d rules, want 1", e.name, len(e.rules))
			continue
		}
		r := e.rules[0]
		switch {
		case slices.Equal(r.Resources, []string{"sidecars"}):
			sidecarHooks++
			if !slices.Equal(r.APIGroups, []string{sidecar.Group}) {
				t.Errorf("%s: apiGroups %q, want [%s]", e.name, r.APIGroups, sidecar.Group)
			}
			if !sameSet(r.APIVersions, sidecar.ServedVersions) {
				t.Errorf("%s: apiVersions %q, want every served Sidecar version %q", e.name, r.APIVersions, sidecar.ServedVersions)
			}
			if !sameSet(operationStrings(r.Operations), []string{"CREATE", "UPDATE"}) {
				t.Errorf("%s: operations %q, want CREATE and UPDATE", e.name, r.Operations)
			}
			if e.failurePolicy == nil || *e.failurePolicy != admissionregistrationv1.Fail {
				t.Errorf("%s: failurePolicy %v, want Fail", e.name, deref(e.failurePolicy))
			}
		case slices.Equal(r.Resources, []string{"pods"}):
			podHooks++
			if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.APIVersions, []string{"v1"}) {
				t.Errorf("%s: apiGroups %q apiVersions %q, want core v1", e.name, r.APIGroups, r.APIVersions)
			}
			if e.failurePolicy == nil || *e.failurePolicy != admissionregistrationv1.Ignore {
				t.Errorf("%s: failurePolicy %v, want Ignore (a pod must never be blocked)", e.name, deref(e.failurePolicy))
			}
		default:
			t.Errorf("%s: unexpected resources %q", e.name, r.Resources)
		}
	}
	if sidecarHooks != 2 || podHooks == 0 {
		t.Errorf("want 2 Sidecar webhooks (validate, default) and pod webhooks, got %d and %d", sidecarHooks, podHooks)
	}
}

// TestDeployPodWebhooksSelectEachCandidateOnce evaluates the shipped pod
// webhooks as the API server would, for pods Istio's injector injects (by
// each of its four selectors, or proven by its status annotation), gateways
// istiod deploys, and pods no injector would touch: every candidate is sent
// exactly once, the rest never. The two CEL match conditions are known
// expressions, evaluated here by hand.
func TestDeployPodWebhooksSelectEachCandidateOnce(t *testing.T) {
	_, m := loadDeployWebhooks(t)
	const status = "sidecar.istio.io/status"
	type hook struct {
		name     string
		ns, obj  labels.Selector
		injected *bool
	}
	var hooks []hook
	for _, w := range m.Webhooks {
		if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Resources, []string{"pods"}) {
			continue
		}
		h := hook{name: w.Name}
		var err error
		// As the API server reads them: an absent selector selects everything.
		if h.ns, err = metav1.LabelSelectorAsSelector(normalizeSelector(w.NamespaceSelector)); err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		if h.obj, err = metav1.LabelSelectorAsSelector(normalizeSelector(w.ObjectSelector)); err != nil {
			t.Fatalf("%s: %v", w.Name, err)
		}
		for _, c := range w.MatchConditions {
			switch c.Expression {
			case "has(object.metadata.annotations) && '" + status + "' in object.metadata.annotations":
				h.injected = ptr(true)
			case "!has(object.metadata.annotations) || !('" + status + "' in object.metadata.annotations)":
				h.injected = ptr(false)
			default:
				t.Fatalf("%s: match condition %q is not one this test evaluates", w.Name, c.Expression)
			}
		}
		hooks = append(hooks, h)
	}
	tests := []struct {
		name        string
		namespace   string
		nsLabels    map[string]string
		podLabels   map[string]string
		annotations map[string]string
		want        int
	}{
		{"namespace istio-injection=enabled", "prod", map[string]string{"istio-injection": "enabled"}, nil, nil, 1},
		{"namespace istio-injection=enabled, pod opts out", "prod", map[string]string{"istio-injection": "enabled"}, map[string]string{"sidecar.istio.io/inject": "false"}, nil, 0},
		{"namespace istio.io/rev", "prod", map[string]string{"istio.io/rev": "canary"}, nil, nil, 1},
		{"namespace istio-injection=disabled and istio.io/rev", "prod", map[string]string{"istio-injection": "disabled", "istio.io/rev": "canary"}, nil, nil, 0},
		{"pod sidecar.istio.io/inject=true, unlabelled namespace", "prod", nil, map[string]string{"sidecar.istio.io/inject": "true"}, nil, 1},
		{"pod istio.io/rev, unlabelled namespace", "prod", nil, map[string]string{"istio.io/rev": "canary"}, nil, 1},
		{"pod with both labels, unlabelled namespace", "prod", nil, map[string]string{"istio.io/rev": "canary", "sidecar.istio.io/inject": "true"}, nil, 1},
		{"pod sidecar.istio.io/inject=true, namespace istio-injection=disabled", "prod", map[string]string{"istio-injection": "disabled"}, map[string]string{"sidecar.istio.io/inject": "true"}, nil, 0},
		{"nothing labelled", "prod", nil, nil, nil, 0},
		{"injected pod, unlabelled namespace", "prod", nil, nil, map[string]string{status: "{}"}, 1},
		{"injected pod, injection namespace", "prod", map[string]string{"istio-injection": "enabled"}, nil, map[string]string{status: "{}"}, 1},
		{"waypoint deployed by istiod", "prod", nil, map[string]string{"gateway.istio.io/managed": "istio.io-mesh-controller", "sidecar.istio.io/inject": "false"}, nil, 1},
		{"gateway deployed by istiod, injection namespace", "prod", map[string]string{"istio-injection": "enabled"}, map[string]string{"gateway.istio.io/managed": "istio.io-gateway-controller"}, nil, 1},
		{"kube-system", "kube-system", map[string]string{"istio-injection": "enabled"}, nil, nil, 0},
		{"the webhook's own namespace", serviceNamespace, map[string]string{"istio-injection": "enabled"}, nil, map[string]string{status: "{}"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nsLabels := labels.Set{"kubernetes.io/metadata.name": tc.namespace}
			for k, v := range tc.nsLabels {
				nsLabels[k] = v
			}
			_, injected := tc.annotations[status]
			var sentBy []string
			for _, h := range hooks {
				if h.ns.Matches(nsLabels) && h.obj.Matches(labels.Set(tc.podLabels)) && (h.injected == nil || *h.injected == injected) {
					sentBy = append(sentBy, h.name)
				}
			}
			if len(sentBy) != tc.want {
				t.Errorf("sent %d times (by %q), want %d", len(sentBy), sentBy, tc.want)
			}
		})
	}
}

// TestDeployConfigurationPathsAreServed checks that every path in the
// manifests is one the server registers a handler on, and that the clientConfig
// points at the in-cluster Service (never a URL), so that renaming a path
// constant without updating deploy/ (or the reverse) fails.
func TestDeployConfigurationPathsAreServed(t *testing.T) {
	v, m := loadDeployWebhooks(t)
	var configs []struct {
		name string
		cc   admissionregistrationv1.WebhookClientConfig
	}
	for _, w := range v.Webhooks {
		configs = append(configs, struct {
			name string
			cc   admissionregistrationv1.WebhookClientConfig
		}{w.Name, w.ClientConfig})
	}
	for _, w := range m.Webhooks {
		configs = append(configs, struct {
			name string
			cc   admissionregistrationv1.WebhookClientConfig
		}{w.Name, w.ClientConfig})
	}
	used := map[string]bool{}
	for _, c := range configs {
		if c.cc.URL != nil {
			t.Errorf("%s: clientConfig.url %q; deploy/ must use the in-cluster Service", c.name, *c.cc.URL)
		}
		if len(c.cc.CABundle) != 0 {
			t.Errorf("%s: clientConfig.caBundle is set; cert-manager's CA injector owns it", c.name)
		}
		s := c.cc.Service
		if s == nil {
			t.Errorf("%s: no clientConfig.service", c.name)
			continue
		}
		if s.Namespace != serviceNamespace || s.Name != serviceName || s.Port == nil || *s.Port != servicePort {
			t.Errorf("%s: clientConfig.service %s/%s port %v, want %s/%s port %d",
				c.name, s.Namespace, s.Name, deref(s.Port), serviceNamespace, serviceName, servicePort)
		}
		if s.Path == nil {
			t.Errorf("%s: clientConfig.service.path is not set", c.name)
			continue
		}
		if !slices.Contains(servedPaths, *s.Path) {
			t.Errorf("%s: path %q is not served; the server registers %q", c.name, *s.Path, servedPaths)
		}
		used[*s.Path] = true
	}
	for _, p := range servedPaths {
		if !used[p] {
			t.Errorf("served path %s is not used by any webhook in %s", p, deployWebhooksFile)
		}
	}
}

func validatingNames(c *admissionregistrationv1.ValidatingWebhookConfiguration) []string {
	var names []string
	for _, w := range c.Webhooks {
		names = append(names, w.Name)
	}
	return names
}

func mutatingNames(c *admissionregistrationv1.MutatingWebhookConfiguration) []string {
	var names []string
	for _, w := range c.Webhooks {
		names = append(names, w.Name)
	}
	return names
}

func normalizeValidating(w admissionregistrationv1.ValidatingWebhook) admissionregistrationv1.ValidatingWebhook {
	w = *w.DeepCopy()
	w.NamespaceSelector = normalizeSelector(w.NamespaceSelector)
	w.ObjectSelector = normalizeSelector(w.ObjectSelector)
	w.Rules = normalizeRules(w.Rules)
	return w
}

func normalizeMutating(w admissionregistrationv1.MutatingWebhook) admissionregistrationv1.MutatingWebhook {
	w = *w.DeepCopy()
	w.NamespaceSelector = normalizeSelector(w.NamespaceSelector)
	w.ObjectSelector = normalizeSelector(w.ObjectSelector)
	w.Rules = normalizeRules(w.Rules)
	return w
}

// normalizeRules sorts the order-insensitive lists of each rule.
func normalizeRules(rules []admissionregistrationv1.RuleWithOperations) []admissionregistrationv1.RuleWithOperations {
	for i := range rules {
		slices.Sort(rules[i].Operations)
		slices.Sort(rules[i].APIGroups)
		slices.Sort(rules[i].APIVersions)
		slices.Sort(rules[i].Resources)
	}
	return rules
}

// normalizeSelector rewrites a label selector into a canonical form with the
// same meaning: matchLabels become In requirements, values and requirements
// are sorted. nil and the empty selector (both match everything) compare
// equal.
func normalizeSelector(s *metav1.LabelSelector) *metav1.LabelSelector {
	out := &metav1.LabelSelector{}
	if s == nil {
		return out
	}
	for k, v := range s.MatchLabels {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: k, Operator: metav1.LabelSelectorOpIn, Values: []string{v},
		})
	}
	for _, r := range s.MatchExpressions {
		r.Values = slices.Clone(r.Values)
		slices.Sort(r.Values)
		r.Values = slices.Compact(r.Values)
		out.MatchExpressions = append(out.MatchExpressions, r)
	}
	slices.SortFunc(out.MatchExpressions, func(a, b metav1.LabelSelectorRequirement) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Operator), string(b.Operator)); c != 0 {
			return c
		}
		return slices.Compare(a.Values, b.Values)
	})
	return out
}

func selectorRequirement(s *metav1.LabelSelector, key string, op metav1.LabelSelectorOperator) *metav1.LabelSelectorRequirement {
	for _, r := range normalizeSelector(s).MatchExpressions {
		if r.Key == key && r.Operator == op {
			return &r
		}
	}
	return nil
}

func operationStrings(ops []admissionregistrationv1.OperationType) []string {
	var out []string
	for _, o := range ops {
		out = append(out, string(o))
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}

func ptr[T any](v T) *T { return &v }
