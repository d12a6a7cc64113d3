package webhook

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Names of the webhook configurations and their entries, shared by the dev
// command and deploy/ (a test checks that the manifests agree).
const (
	ConfigurationName    = "sidecar-webhook"
	ValidateSidecarsName = "validate.sidecars.sidecar-webhook.io"
	DefaultSidecarsName  = "default.sidecars.sidecar-webhook.io"
	// AnnotatePodsSuffix ends the name of every pod webhook entry.
	AnnotatePodsSuffix     = ".pods.sidecar-webhook.io"
	SidecarTimeoutSeconds  = int32(5)
	PodTimeoutSeconds      = int32(2)
	admissionReviewVersion = "v1"
)

// CEL conditions that split pods Istio's injector has injected (they carry
// its status annotation) from those it has not.
var (
	injectedCondition = admissionregistrationv1.MatchCondition{
		Name:       "injected-by-istio",
		Expression: "has(object.metadata.annotations) && '" + mesh.AnnotationStatus + "' in object.metadata.annotations",
	}
	notInjectedCondition = admissionregistrationv1.MatchCondition{
		Name:       "not-injected-by-istio",
		Expression: "!has(object.metadata.annotations) || !('" + mesh.AnnotationStatus + "' in object.metadata.annotations)",
	}
)

// ClientConfigFor returns where the API server sends requests for a path.
type ClientConfigFor func(path string) admissionregistrationv1.WebhookClientConfig

// URLClientConfig points the API server at a URL (local runs), trusting caBundle.
func URLClientConfig(baseURL string, caBundle []byte) ClientConfigFor {
	return func(path string) admissionregistrationv1.WebhookClientConfig {
		url := baseURL + path
		return admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle}
	}
}

// SidecarRules are the operations and versions the Sidecar webhooks cover.
func SidecarRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{sidecar.Group},
			APIVersions: append([]string(nil), sidecar.ServedVersions...),
			Resources:   []string{sidecar.Resource},
			Scope:       ptr(admissionregistrationv1.NamespacedScope),
		},
	}}
}

// PodRules are the operations the pod annotation webhook covers.
func PodRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{""},
			APIVersions: []string{"v1"},
			Resources:   []string{"pods"},
			Scope:       ptr(admissionregistrationv1.NamespacedScope),
		},
	}}
}

// ConfigOptions shape the configurations for an installation.
type ConfigOptions struct {
	// ExcludedNamespaces are never sent to the webhook (its own namespace,
	// kube-system), so the webhook can never block its own recovery.
	ExcludedNamespaces []string
	// WithPods adds the pod annotation webhook.
	WithPods bool
}

// ValidatingConfiguration builds the ValidatingWebhookConfiguration.
func ValidatingConfiguration(client ClientConfigFor, opts ConfigOptions) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    ValidateSidecarsName,
			ClientConfig:            client(ValidateSidecarsPath),
			Rules:                   SidecarRules(),
			FailurePolicy:           ptr(admissionregistrationv1.Fail),
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(SidecarTimeoutSeconds),
			AdmissionReviewVersions: []string{admissionReviewVersion},
			NamespaceSelector:       excludeNamespaces(opts.ExcludedNamespaces),
		}},
	}
}

// MutatingConfiguration builds the MutatingWebhookConfiguration: Sidecar
// defaulting, and (WithPods) pod annotation, which must never block a pod.
func MutatingConfiguration(client ClientConfigFor, opts ConfigOptions) *admissionregistrationv1.MutatingWebhookConfiguration {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: ConfigurationName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    DefaultSidecarsName,
			ClientConfig:            client(MutateSidecarsPath),
			Rules:                   SidecarRules(),
			FailurePolicy:           ptr(admissionregistrationv1.Fail),
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(SidecarTimeoutSeconds),
			AdmissionReviewVersions: []string{admissionReviewVersion},
			ReinvocationPolicy:      ptr(admissionregistrationv1.NeverReinvocationPolicy),
			NamespaceSelector:       excludeNamespaces(opts.ExcludedNamespaces),
		}},
	}
	if !opts.WithPods {
		return cfg
	}
	cfg.Webhooks = append(cfg.Webhooks, podWebhooks(client, opts.ExcludedNamespaces)...)
	return cfg
}

// podWebhooks are the pod annotation entries. Together they send this
// webhook every pod that could run an Istio proxy, and each pod at most once
// (their selections are disjoint):
//   - injected: pods Istio's injector has injected (its status annotation),
//     whatever the labels (kube-inject, enableNamespacesByDefault included);
//   - one entry per selector of Istio's injector (mesh.DefaultInjectorSelectors,
//     any revision), for pods not injected: when no injector is installed
//     they decide, and otherwise the handler finds no proxy there;
//   - gateway: gateways and waypoints istiod deploys itself, which run a
//     proxy without being injected.
//
// The handler decides precisely (mesh.ProxyOf); these selectors only need to
// include every candidate.
func podWebhooks(client ClientConfigFor, excluded []string) []admissionregistrationv1.MutatingWebhook {
	podHook := func(name string, nsSelector, objSelector *metav1.LabelSelector, condition admissionregistrationv1.MatchCondition) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name + AnnotatePodsSuffix,
			ClientConfig:            client(MutatePodsPath),
			Rules:                   PodRules(),
			FailurePolicy:           ptr(admissionregistrationv1.Ignore),
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(PodTimeoutSeconds),
			AdmissionReviewVersions: []string{admissionReviewVersion},
			// Later mutating webhooks may add labels that change which
			// Sidecar selects the pod.
			ReinvocationPolicy: ptr(admissionregistrationv1.IfNeededReinvocationPolicy),
			NamespaceSelector:  nsSelector,
			ObjectSelector:     objSelector,
			MatchConditions:    []admissionregistrationv1.MatchCondition{condition},
		}
	}
	notManaged := metav1.LabelSelectorRequirement{Key: mesh.LabelGatewayManaged, Operator: metav1.LabelSelectorOpDoesNotExist}
	hooks := []admissionregistrationv1.MutatingWebhook{
		podHook("injected", excludeNamespaces(excluded), nil, injectedCondition),
	}
	for _, sel := range mesh.DefaultInjectorSelectors() {
		ns := excludeNamespaces(excluded)
		ns.MatchExpressions = append(ns.MatchExpressions, sel.NamespaceSelector.MatchExpressions...)
		obj := sel.ObjectSelector.DeepCopy()
		obj.MatchExpressions = append(obj.MatchExpressions, notManaged)
		hooks = append(hooks, podHook(strings.ReplaceAll(sel.Name, ".", "-"), ns, obj, notInjectedCondition))
	}
	managed := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: mesh.LabelGatewayManaged, Operator: metav1.LabelSelectorOpExists}}}
	return append(hooks, podHook("gateway", excludeNamespaces(excluded), managed, notInjectedCondition))
}

func excludeNamespaces(names []string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	if len(names) > 0 {
		sel.MatchExpressions = []metav1.LabelSelectorRequirement{{
			Key: mesh.LabelNamespaceName, Operator: metav1.LabelSelectorOpNotIn, Values: append([]string(nil), names...),
		}}
	}
	return sel
}

func ptr[T any](v T) *T { return &v }
