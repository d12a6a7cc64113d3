package mesh

import (
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// InjectorWebhook is one webhook of Istio's injector: the API server sends it
// a pod when both selectors match.
type InjectorWebhook struct {
	// Name is "configuration/webhook", for messages.
	Name              string
	NamespaceSelector labels.Selector
	ObjectSelector    labels.Selector
}

// Injectors are the injector webhooks that decide which pods get a proxy.
type Injectors struct {
	// Installed is true when Istio's injector configurations were found in
	// the cluster; Webhooks are then theirs, so a revision no installed
	// revision or tag serves injects nothing. Otherwise Webhooks are
	// DefaultInjectorSelectors, which accept any revision.
	Installed bool
	Webhooks  []InjectorWebhook
}

// IsInjectorConfiguration reports whether a MutatingWebhookConfiguration is
// one of Istio's injectors: the istio-discovery chart labels a revision's
// configuration istio.io/rev, and a revision tag's also istio.io/tag.
func IsInjectorConfiguration(cfg *admissionregistrationv1.MutatingWebhookConfiguration) bool {
	_, rev := cfg.Labels[LabelRevision]
	_, tag := cfg.Labels[LabelTag]
	return rev || tag
}

// InjectorsFrom builds Injectors from the cluster's MutatingWebhookConfigurations
// (those that are not Istio's injectors are ignored). With none installed it
// returns the default selectors, Installed false.
func InjectorsFrom(configs []*admissionregistrationv1.MutatingWebhookConfiguration) Injectors {
	var out Injectors
	for _, cfg := range configs {
		if cfg == nil || !IsInjectorConfiguration(cfg) {
			continue
		}
		out.Installed = true
		for _, hook := range cfg.Webhooks {
			if !coversPodCreate(hook.Rules) {
				continue
			}
			ns, errNS := selectorOf(hook.NamespaceSelector)
			obj, errObj := selectorOf(hook.ObjectSelector)
			if errNS != nil || errObj != nil {
				// The API server refuses such a configuration; one that
				// slipped through selects nothing.
				continue
			}
			out.Webhooks = append(out.Webhooks, InjectorWebhook{Name: cfg.Name + "/" + hook.Name, NamespaceSelector: ns, ObjectSelector: obj})
		}
	}
	if !out.Installed {
		return DefaultInjectors()
	}
	slices.SortFunc(out.Webhooks, func(a, b InjectorWebhook) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// selectorOf converts a webhook's selector as the API server does: absent
// means everything.
func selectorOf(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

func coversPodCreate(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		if matchesAny(r.APIGroups, "") && matchesAny(r.APIVersions, "v1") && matchesAny(r.Resources, "pods") &&
			(slices.Contains(r.Operations, admissionregistrationv1.Create) || slices.Contains(r.Operations, admissionregistrationv1.OperationAll)) {
			return true
		}
	}
	return false
}

func matchesAny(values []string, want string) bool {
	return slices.Contains(values, want) || slices.Contains(values, "*")
}

// DefaultInjectorSelectors are the four webhooks of the istio-discovery
// chart's mutatingwebhook.yaml for the default revision, with the revision
// left open (any value of istio.io/rev selects): they stand in for the
// injector when none is installed (a local control plane, offline checks), and
// this project's own pod webhook registers the same selectors, so it sees
// every pod an injector could inject.
func DefaultInjectorSelectors() []InjectorSelectors {
	notFalse := metav1.LabelSelectorRequirement{Key: KeySidecarInject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"}}
	exists := func(key string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpExists}
	}
	absent := func(key string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpDoesNotExist}
	}
	unlabelled := []metav1.LabelSelectorRequirement{absent(LabelInjection), absent(LabelRevision)}
	return []InjectorSelectors{
		{
			Name:              "namespace",
			Description:       "namespace labelled " + LabelInjection + "=enabled",
			NamespaceSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: LabelInjection, Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled"}}}},
			ObjectSelector:    metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notFalse}},
		},
		{
			Name:              "rev.namespace",
			Description:       "namespace labelled " + LabelRevision + " without " + LabelInjection,
			NamespaceSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{exists(LabelRevision), absent(LabelInjection)}},
			ObjectSelector:    metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notFalse}},
		},
		{
			Name:              "object",
			Description:       "pod labelled " + KeySidecarInject + "=true in a namespace with neither label",
			NamespaceSelector: metav1.LabelSelector{MatchExpressions: slices.Clone(unlabelled)},
			ObjectSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: KeySidecarInject, Operator: metav1.LabelSelectorOpIn, Values: []string{"true"}}, absent(LabelRevision)}},
		},
		{
			Name:              "rev.object",
			Description:       "pod labelled " + LabelRevision + " in a namespace with neither label",
			NamespaceSelector: metav1.LabelSelector{MatchExpressions: slices.Clone(unlabelled)},
			ObjectSelector:    metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{notFalse, exists(LabelRevision)}},
		},
	}
}

// InjectorSelectors is one webhook's selectors in API form, for registering
// them (this project's pod webhook) as well as evaluating them.
type InjectorSelectors struct {
	Name              string
	Description       string
	NamespaceSelector metav1.LabelSelector
	ObjectSelector    metav1.LabelSelector
}

// DefaultInjectors evaluates DefaultInjectorSelectors; Installed is false.
func DefaultInjectors() Injectors {
	var out Injectors
	for _, s := range DefaultInjectorSelectors() {
		ns, err := metav1.LabelSelectorAsSelector(&s.NamespaceSelector)
		if err != nil {
			panic("mesh: invalid default injector selector: " + err.Error())
		}
		obj, err := metav1.LabelSelectorAsSelector(&s.ObjectSelector)
		if err != nil {
			panic("mesh: invalid default injector selector: " + err.Error())
		}
		out.Webhooks = append(out.Webhooks, InjectorWebhook{Name: "the default injector selectors (" + s.Description + ")", NamespaceSelector: ns, ObjectSelector: obj})
	}
	return out
}

// match returns the name of the first webhook that selects the pod.
func (inj Injectors) match(namespace string, namespaceLabels, podLabels map[string]string) (string, bool) {
	nsSet := namespaceSelectorLabels(namespace, namespaceLabels)
	for _, hook := range inj.Webhooks {
		if hook.NamespaceSelector.Matches(nsSet) && hook.ObjectSelector.Matches(labels.Set(podLabels)) {
			return hook.Name, true
		}
	}
	return "", false
}

func (inj Injectors) describe() string {
	if !inj.Installed {
		return "no injector is installed; judged by the default injector selectors"
	}
	if len(inj.Webhooks) == 0 {
		return "the installed injector configurations have no pod webhook"
	}
	return "installed injector webhooks: " + strings.Join(inj.webhookNames(), ", ")
}

func (inj Injectors) webhookNames() []string {
	out := make([]string, 0, len(inj.Webhooks))
	for _, h := range inj.Webhooks {
		out = append(out, h.Name)
	}
	return out
}
