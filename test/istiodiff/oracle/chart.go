package oracle

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"istio.io/istio/operator/pkg/helm"
	"istio.io/istio/operator/pkg/values"
)

// DiscoveryChart is the directory, below the charts folder embedded in
// istio.io/istio/manifests, of the chart that installs istiod and its
// injector webhooks.
const DiscoveryChart = "istio-control/istio-discovery"

// Install describes one `helm install` of Istio's istio-discovery chart: the
// revision it installs and the few values the oracle cares about.
type Install struct {
	// Revision is the chart's `revision` value; "" is the default revision.
	Revision string
	// RevisionTags is the chart's `revisionTags` value.
	RevisionTags []string
	// EnableNamespacesByDefault is `sidecarInjectorWebhook.enableNamespacesByDefault`.
	EnableNamespacesByDefault bool
	// Namespace is the release namespace; "" means istio-system.
	Namespace string
	// Values are further Helm values, merged under the ones above (the
	// fields above win). They use the chart's own layout, e.g.
	// {"global": {"proxy": {"autoInject": "disabled"}}}.
	Values map[string]any
}

func (in Install) namespace() string {
	if in.Namespace == "" {
		return "istio-system"
	}
	return in.Namespace
}

// helmValues returns the Helm values of the install in the chart's layout.
func (in Install) helmValues() (values.Map, error) {
	v := values.Map{}
	if in.Values != nil {
		// Round trip through JSON so that the caller's map is never shared
		// with Helm (which mutates values while rendering).
		c, err := values.MapFromObject(in.Values)
		if err != nil {
			return nil, err
		}
		v = c
	}
	if err := v.SetPath("revision", in.Revision); err != nil {
		return nil, err
	}
	tags := make([]any, 0, len(in.RevisionTags))
	for _, t := range in.RevisionTags {
		tags = append(tags, t)
	}
	if err := v.SetPath("revisionTags", tags); err != nil {
		return nil, err
	}
	if err := v.SetPath("sidecarInjectorWebhook.enableNamespacesByDefault", in.EnableNamespacesByDefault); err != nil {
		return nil, err
	}
	return v, nil
}

// Rendered is what one Install of the istio-discovery chart produced that
// the oracle uses.
type Rendered struct {
	Install Install
	// Webhooks are the MutatingWebhookConfigurations the chart rendered
	// (templates mutatingwebhook.yaml and revision-tags-mwc.yaml), sorted
	// by name.
	Webhooks []*admissionregistrationv1.MutatingWebhookConfiguration
	// InjectorConfig and InjectorValues are the `config` and `values` keys
	// of the injector ConfigMap (istiod-injector-configmap.yaml), exactly
	// as istiod reads them.
	InjectorConfig string
	InjectorValues string
}

var renderCache sync.Map // string -> *renderEntry

type renderEntry struct {
	once sync.Once
	r    *Rendered
	err  error
}

// Render renders the istio-discovery chart for in with Istio's own Helm
// rendering code, istio.io/istio/operator/pkg/helm.Render (the function
// istioctl install uses; it loads the chart from the embedded
// istio.io/istio/manifests FS and runs Helm v4's engine), and returns the
// MutatingWebhookConfigurations and the injector ConfigMap data. Results are
// cached per Install; callers get deep copies of the webhook objects.
func Render(in Install) (*Rendered, error) {
	key := fmt.Sprintf("%#v", in)
	e, _ := renderCache.LoadOrStore(key, &renderEntry{})
	ent := e.(*renderEntry)
	ent.once.Do(func() { ent.r, ent.err = render(in) })
	if ent.err != nil {
		return nil, ent.err
	}
	out := *ent.r
	out.Webhooks = make([]*admissionregistrationv1.MutatingWebhookConfiguration, len(ent.r.Webhooks))
	for i, w := range ent.r.Webhooks {
		out.Webhooks[i] = w.DeepCopy()
	}
	return &out, nil
}

func render(in Install) (*Rendered, error) {
	vals, err := in.helmValues()
	if err != nil {
		return nil, err
	}
	iop := values.Map{"spec": map[string]any{"values": map[string]any(vals)}}
	manifests, _, err := helm.Render("istio", in.namespace(), DiscoveryChart, iop, nil)
	if err != nil {
		return nil, fmt.Errorf("render %s: %v", DiscoveryChart, err)
	}
	out := &Rendered{Install: in}
	injectorCM := "istio-sidecar-injector"
	if in.Revision != "" {
		injectorCM += "-" + in.Revision
	}
	for _, m := range manifests {
		switch m.GetKind() {
		case "MutatingWebhookConfiguration":
			mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m.Object, mwc); err != nil {
				return nil, fmt.Errorf("convert %s: %v", m.GetName(), err)
			}
			out.Webhooks = append(out.Webhooks, mwc)
		case "ConfigMap":
			if m.GetName() != injectorCM {
				continue
			}
			cm := &corev1.ConfigMap{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m.Object, cm); err != nil {
				return nil, fmt.Errorf("convert %s: %v", m.GetName(), err)
			}
			out.InjectorConfig = cm.Data["config"]
			out.InjectorValues = cm.Data["values"]
		}
	}
	if out.InjectorConfig == "" {
		return nil, fmt.Errorf("chart rendered no ConfigMap %s", injectorCM)
	}
	sort.Slice(out.Webhooks, func(i, j int) bool { return out.Webhooks[i].Name < out.Webhooks[j].Name })
	return out, nil
}

// InjectorWebhooks renders every install (see Render) and returns all their
// MutatingWebhookConfigurations together, sorted by name as the API server
// orders them.
func InjectorWebhooks(installs ...Install) ([]*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	var all []*admissionregistrationv1.MutatingWebhookConfiguration
	for _, in := range installs {
		r, err := Render(in)
		if err != nil {
			return nil, err
		}
		all = append(all, r.Webhooks...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, nil
}

// WebhookRevision returns the Istio revision a rendered webhook configuration
// belongs to: its `istio.io/rev` label, "default" for the default revision.
func WebhookRevision(mwc *admissionregistrationv1.MutatingWebhookConfiguration) string {
	return mwc.Labels["istio.io/rev"]
}

// revisionKey maps an Install's revision to the value the chart puts in the
// istio.io/rev label.
func revisionKey(rev string) string {
	if rev == "" {
		return "default"
	}
	return strings.TrimSpace(rev)
}
