package webhook

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// Names of the webhook configurations and their entries, shared by the dev
// command and deploy/ (a test checks that the manifests agree).
const (
	ConfigurationName      = "sidecar-webhook"
	ValidateSidecarsName   = "validate.sidecars.sidecar-webhook.io"
	DefaultSidecarsName    = "default.sidecars.sidecar-webhook.io"
	AnnotatePodsName       = "annotate.pods.sidecar-webhook.io"
	AnnotatePodsRevName    = "annotate-rev.pods.sidecar-webhook.io"
	SidecarTimeoutSeconds  = int32(5)
	PodTimeoutSeconds      = int32(2)
	IstioInjectionLabel    = "istio-injection"
	IstioRevisionLabel     = "istio.io/rev"
	SidecarInjectPodLabel  = "sidecar.istio.io/inject"
	namespaceNameLabelKey  = "kubernetes.io/metadata.name"
	admissionReviewVersion = "v1"
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
	podHook := func(name string, selector *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:                    name,
			ClientConfig:            client(MutatePodsPath),
			Rules:                   PodRules(),
			FailurePolicy:           ptr(admissionregistrationv1.Ignore),
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(PodTimeoutSeconds),
			AdmissionReviewVersions: []string{admissionReviewVersion},
			// Later mutating webhooks (Istio's injector among them) may add
			// labels that change which Sidecar selects the pod.
			ReinvocationPolicy: ptr(admissionregistrationv1.IfNeededReinvocationPolicy),
			NamespaceSelector:  selector,
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: SidecarInjectPodLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"},
			}}},
		}
	}
	// Two entries express "istio-injection=enabled OR istio.io/rev set";
	// the second excludes the first's namespaces so no pod is seen twice.
	injection := excludeNamespaces(opts.ExcludedNamespaces)
	injection.MatchExpressions = append(injection.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: IstioInjectionLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled"}})
	revision := excludeNamespaces(opts.ExcludedNamespaces)
	revision.MatchExpressions = append(revision.MatchExpressions,
		metav1.LabelSelectorRequirement{Key: IstioRevisionLabel, Operator: metav1.LabelSelectorOpExists},
		metav1.LabelSelectorRequirement{Key: IstioInjectionLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"enabled"}})
	cfg.Webhooks = append(cfg.Webhooks, podHook(AnnotatePodsName, injection), podHook(AnnotatePodsRevName, revision))
	return cfg
}

func excludeNamespaces(names []string) *metav1.LabelSelector {
	sel := &metav1.LabelSelector{}
	if len(names) > 0 {
		sel.MatchExpressions = []metav1.LabelSelectorRequirement{{
			Key: namespaceNameLabelKey, Operator: metav1.LabelSelectorOpNotIn, Values: append([]string(nil), names...),
		}}
	}
	return sel
}

func ptr[T any](v T) *T { return &v }
