package oracle

import (
	"context"
	"fmt"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/webhook"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/generic"
	webhookutil "k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// CalledWebhook names one webhook the API server would call.
type CalledWebhook struct {
	// Configuration is the MutatingWebhookConfiguration's name.
	Configuration string
	// Webhook is the webhook's name inside it.
	Webhook string
	// Revision is the configuration's istio.io/rev label ("default" for
	// the default revision).
	Revision string
}

// apiServerMatcher wraps the API server's generic admission webhook plugin
// so its ShouldCallHook can be called without an API server: a Webhook built
// by generic.NewWebhook, fed a namespace lister whose store the oracle fills.
type apiServerMatcher struct {
	mu      sync.Mutex
	hook    *generic.Webhook
	nsStore cache.Indexer
	objs    admission.ObjectInterfaces
}

var (
	matcherOnce sync.Once
	matcher     *apiServerMatcher
	matcherErr  error
)

func getMatcher() (*apiServerMatcher, error) {
	matcherOnce.Do(func() {
		h, err := generic.NewWebhook(
			admission.NewHandler(admission.Create),
			nil,
			func(informers.SharedInformerFactory, sets.Set[schema.GroupResource]) generic.Source { return nil },
			func(*webhookutil.ClientManager) generic.Dispatcher { return nil },
		)
		if err != nil {
			matcherErr = err
			return
		}
		client := fake.NewClientset()
		f := informers.NewSharedInformerFactory(client, 0)
		h.SetExternalKubeClientSet(client)
		h.SetExternalKubeInformerFactory(f)
		matcher = &apiServerMatcher{
			hook:    h,
			nsStore: f.Core().V1().Namespaces().Informer().GetIndexer(),
			objs:    &admission.RuntimeObjectInterfaces{EquivalentResourceMapper: runtime.NewEquivalentResourceRegistry()},
		}
	})
	return matcher, matcherErr
}

// WithMetadataNameLabel returns a copy of ns carrying the
// kubernetes.io/metadata.name label, which the API server sets on every
// namespace (it cannot be removed or changed).
func WithMetadataNameLabel(ns *corev1.Namespace) *corev1.Namespace {
	ns = ns.DeepCopy()
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[corev1.LabelMetadataName] = ns.Name
	return ns
}

// WebhooksCalled answers: for a CREATE of pod (v1 pods, in namespace ns),
// which of the mutating webhooks in mwcs would the API server call? It runs
// the API server's own decision, k8s.io/apiserver's
// admission/plugin/webhook/generic (*Webhook).ShouldCallHook, which applies
// namespaceSelector (predicates/namespace, against the labels of ns as found
// through a namespace lister), objectSelector (predicates/object, against the
// pod's labels) and rules (predicates/rules), and matchConditions if any.
// The kubernetes.io/metadata.name label is added to ns as the API server
// does. Configurations and their webhooks are returned in the order the API
// server calls them (configurations sorted by name).
func WebhooksCalled(mwcs []*admissionregistrationv1.MutatingWebhookConfiguration, ns *corev1.Namespace, pod *corev1.Pod) ([]CalledWebhook, error) {
	m, err := getMatcher()
	if err != nil {
		return nil, err
	}
	ns = WithMetadataNameLabel(ns)
	pod = pod.DeepCopy()
	pod.Namespace = ns.Name
	attr := admission.NewAttributesRecord(pod, nil,
		corev1.SchemeGroupVersion.WithKind("Pod"), ns.Name, pod.Name,
		corev1.SchemeGroupVersion.WithResource("pods"), "",
		admission.Create, &metav1.CreateOptions{}, false, nil)

	sorted := append([]*admissionregistrationv1.MutatingWebhookConfiguration(nil), mwcs...)
	sortMWCs(sorted)

	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.nsStore.Replace([]any{ns}, ""); err != nil {
		return nil, err
	}
	var out []CalledWebhook
	for _, cfg := range sorted {
		for i := range cfg.Webhooks {
			if len(cfg.Webhooks[i].MatchConditions) > 0 {
				// ShouldCallHook would need a CEL-evaluating attribute
				// accessor; Istio's chart renders no matchConditions.
				return nil, fmt.Errorf("%s/%s: matchConditions are not supported by the oracle", cfg.Name, cfg.Webhooks[i].Name)
			}
			acc := webhook.NewMutatingWebhookAccessor(fmt.Sprintf("%s/%d", cfg.Name, i), cfg.Name, &cfg.Webhooks[i])
			inv, serr := m.hook.ShouldCallHook(context.Background(), acc, attr, m.objs, nil)
			if serr != nil {
				return nil, fmt.Errorf("%s/%s: %v", cfg.Name, cfg.Webhooks[i].Name, serr)
			}
			if inv != nil {
				out = append(out, CalledWebhook{Configuration: cfg.Name, Webhook: cfg.Webhooks[i].Name, Revision: WebhookRevision(cfg)})
			}
		}
	}
	return out, nil
}

func sortMWCs(s []*admissionregistrationv1.MutatingWebhookConfiguration) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Name < s[j-1].Name; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
