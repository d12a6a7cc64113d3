package oracle

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/config/mesh/meshwatcher"
	"istio.io/istio/pkg/kube/inject"
	"istio.io/istio/pkg/kube/multicluster"
)

// templateMarker is the annotation prefix the oracle's own stand-in
// injection templates set, one per template name, so the result shows which
// templates Istio's injector selected.
const templateMarker = "istiodiff.oracle/template-"

// Decision is what Istio's injector webhook answered for one pod.
type Decision struct {
	// Injected: the injector returned a patch (injectRequired said yes
	// and the templates ran).
	Injected bool
	// Error is set when the injector answered with a failed response;
	// with the chart's failurePolicy Fail the API server then rejects the
	// pod. injectRequired had said yes before such an error.
	Error string
	// Templates are the injection templates the injector applied, in
	// order (from inject.istio.io/templates or the config's defaults,
	// aliases resolved).
	Templates []string
	// Gateway: the "gateway" template was among those applied, i.e. the
	// pod asked for gateway injection with inject.istio.io/templates.
	// With several templates the proxy's type is the last one's (later
	// templates override the istio-proxy container's args): check
	// ProxyArgs of a pod injected with NewInjectorWithChartTemplates.
	Gateway bool
	// Revision is the injector's revision ("default" for "").
	Revision string
	// Pod is the pod with the injector's patch applied (nil when not
	// injected).
	Pod *corev1.Pod
}

// Injector is Istio's real sidecar injector webhook (pkg/kube/inject
// NewWebhook and its /inject HTTP handler) for one install, configured from
// the chart's rendered injector ConfigMap: its policy,
// neverInjectSelector/alwaysInjectSelector, defaultTemplates, aliases and
// values are Istio's; only the template bodies are replaced by the oracle's
// own stand-ins that merely mark the pod with the template's name (so no
// proxy is rendered and the call stays cheap).
type Injector struct {
	revision string
	mux      *http.ServeMux
}

type staticWatcher struct {
	cfg    *inject.Config
	values string
}

func (w *staticWatcher) SetHandler(func(*inject.Config, string) error) {}
func (w *staticWatcher) Run(<-chan struct{})                           {}
func (w *staticWatcher) Get() (*inject.Config, string, error)          { return w.cfg, w.values, nil }

// standInTemplate is the oracle's own injection template body for a template
// name: it only adds a marker annotation.
func standInTemplate(name string) string {
	return fmt.Sprintf("metadata:\n  annotations:\n    %s%s: applied\n", templateMarker, name)
}

// NewInjector builds Istio's injector webhook for a rendered install.
func NewInjector(r *Rendered) (*Injector, error) {
	return newInjector(r, false)
}

// NewInjectorWithChartTemplates builds Istio's injector webhook for a
// rendered install with the chart's own injection templates (not the
// stand-ins): Decide then returns the pod as Istio's templates render it
// (Decision.Pod), at the cost of rendering them (a few milliseconds).
// Decision.Templates stays empty: the chart's templates carry no marker.
func NewInjectorWithChartTemplates(r *Rendered) (*Injector, error) {
	return newInjector(r, true)
}

func newInjector(r *Rendered, chartTemplates bool) (*Injector, error) {
	cfg, err := inject.UnmarshalConfig([]byte(r.InjectorConfig))
	if err != nil {
		return nil, fmt.Errorf("injector config: %v", err)
	}
	if !chartTemplates {
		raw := inject.RawTemplates{}
		for name := range cfg.RawTemplates {
			raw[name] = standInTemplate(name)
		}
		cfg.RawTemplates = raw
		cfg.Templates, err = inject.ParseTemplates(raw)
		if err != nil {
			return nil, err
		}
	}
	env := &model.Environment{Watcher: meshwatcher.NewTestWatcher(mesh.DefaultMeshConfig())}
	mux := http.NewServeMux()
	if _, err := inject.NewWebhook(inject.WebhookParameters{
		Watcher:      &staticWatcher{cfg: &cfg, values: r.InjectorValues},
		Env:          env,
		Mux:          mux,
		Revision:     r.Install.Revision,
		MultiCluster: multicluster.NewFakeController(),
	}); err != nil {
		return nil, err
	}
	return &Injector{revision: revisionKey(r.Install.Revision), mux: mux}, nil
}

var injectorCache sync.Map // Install key -> *injectorEntry

type injectorEntry struct {
	once sync.Once
	inj  *Injector
	err  error
}

// InjectorFor returns the (cached) injector of an install.
func InjectorFor(in Install) (*Injector, error) {
	key := fmt.Sprintf("%#v", in)
	e, _ := injectorCache.LoadOrStore(key, &injectorEntry{})
	ent := e.(*injectorEntry)
	ent.once.Do(func() {
		r, err := Render(in)
		if err != nil {
			ent.err = err
			return
		}
		ent.inj, ent.err = NewInjector(r)
	})
	return ent.inj, ent.err
}

// Decide sends the pod's CREATE, as an admission.k8s.io/v1 AdmissionReview,
// to Istio's injector HTTP handler at path (the webhook's service path; ""
// means "/inject") and reports its answer. The handler runs Istio's
// injectRequired (pkg/kube/inject/inject.go: hostNetwork, the ignored
// namespaces, the sidecar.istio.io/inject label over the annotation,
// never/always selectors, the policy) and, if that says yes, the templates.
func (i *Injector) Decide(namespace string, pod *corev1.Pod, path string) (Decision, error) {
	if path == "" {
		path = "/inject"
	}
	pod = pod.DeepCopy()
	if pod.Namespace == "" {
		pod.Namespace = namespace
	}
	podJSON, err := json.Marshal(pod)
	if err != nil {
		return Decision{}, err
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID("istiodiff"),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Name:      pod.Name,
			Namespace: namespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: podJSON},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return Decision{}, err
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	i.mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return Decision{}, fmt.Errorf("injector answered HTTP %d: %s", rec.Code, rec.Body.String())
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		return Decision{}, fmt.Errorf("injector answer: %v", err)
	}
	d := Decision{Revision: i.revision}
	resp := out.Response
	if resp == nil {
		return Decision{}, fmt.Errorf("injector answered without a response")
	}
	if !resp.Allowed {
		d.Error = "injection failed"
		if resp.Result != nil {
			d.Error = resp.Result.Message
		}
		return d, nil
	}
	if len(resp.Patch) == 0 {
		return d, nil
	}
	d.Injected = true
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		return Decision{}, fmt.Errorf("injector patch: %v", err)
	}
	patched, err := patch.Apply(podJSON)
	if err != nil {
		return Decision{}, fmt.Errorf("apply injector patch: %v", err)
	}
	var result corev1.Pod
	if err := json.Unmarshal(patched, &result); err != nil {
		return Decision{}, err
	}
	d.Pod = &result
	for k := range result.Annotations {
		if name, ok := strings.CutPrefix(k, templateMarker); ok {
			d.Templates = append(d.Templates, name)
			if name == "gateway" {
				d.Gateway = true
			}
		}
	}
	sort.Strings(d.Templates)
	return d, nil
}

// Outcome is the combined answer for one pod CREATE.
type Outcome struct {
	// Called are the webhooks the API server would call (WebhooksCalled).
	Called []CalledWebhook
	// Decision is the answer of the injector behind the first called
	// webhook; zero if none is called.
	Decision Decision
	// Injected: some webhook is called and its injector injects.
	Injected bool
}

// Mesh is a set of Istio installs (revisions) in one cluster: their webhook
// configurations and an injector per revision.
type Mesh struct {
	Webhooks  []*admissionregistrationv1.MutatingWebhookConfiguration
	injectors map[string]*Injector // by istio.io/rev label value
}

// NewMesh renders each install (Render) and builds its injector
// (InjectorFor).
func NewMesh(installs ...Install) (*Mesh, error) {
	m := &Mesh{injectors: map[string]*Injector{}}
	for _, in := range installs {
		r, err := Render(in)
		if err != nil {
			return nil, err
		}
		inj, err := InjectorFor(in)
		if err != nil {
			return nil, err
		}
		m.Webhooks = append(m.Webhooks, r.Webhooks...)
		m.injectors[revisionKey(in.Revision)] = inj
	}
	sortMWCs(m.Webhooks)
	return m, nil
}

// Evaluate answers what happens to the pod's CREATE in namespace ns: which
// webhooks the API server calls (WebhooksCalled) and what the injector of
// the first of them answers (Injector.Decide). Only the first call is
// simulated: istio's injectRequired does not depend on the revision, and
// later injectors see an already injected pod.
func (m *Mesh) Evaluate(ns *corev1.Namespace, pod *corev1.Pod) (Outcome, error) {
	called, err := WebhooksCalled(m.Webhooks, ns, pod)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Called: called}
	if len(called) == 0 {
		return out, nil
	}
	inj := m.injectors[called[0].Revision]
	if inj == nil {
		return Outcome{}, fmt.Errorf("no injector for revision %q", called[0].Revision)
	}
	d, err := inj.Decide(ns.Name, pod, webhookPath(m.Webhooks, called[0]))
	if err != nil {
		return Outcome{}, err
	}
	out.Decision = d
	out.Injected = d.Injected
	return out, nil
}

func webhookPath(mwcs []*admissionregistrationv1.MutatingWebhookConfiguration, c CalledWebhook) string {
	for _, cfg := range mwcs {
		if cfg.Name != c.Configuration {
			continue
		}
		for _, w := range cfg.Webhooks {
			if w.Name == c.Webhook && w.ClientConfig.Service != nil && w.ClientConfig.Service.Path != nil {
				return *w.ClientConfig.Service.Path
			}
		}
	}
	return ""
}

// Injected answers whether the pod's CREATE ends with a sidecar: some webhook
// in mwcs is called for it (WebhooksCalled, the API server's matching) AND
// Istio's injector, configured as the chart configures it by default
// (InjectorFor(Install{})), injects it (injectRequired).
func Injected(mwcs []*admissionregistrationv1.MutatingWebhookConfiguration, ns *corev1.Namespace, pod *corev1.Pod) (bool, error) {
	called, err := WebhooksCalled(mwcs, ns, pod)
	if err != nil || len(called) == 0 {
		return false, err
	}
	inj, err := InjectorFor(Install{})
	if err != nil {
		return false, err
	}
	d, err := inj.Decide(ns.Name, pod, webhookPath(mwcs, called[0]))
	return d.Injected, err
}

// ProxyArgs returns the args of the pod's istio-proxy container (in
// containers or, for native sidecars, init containers), nil if it has none.
// `proxy router` is a gateway, `proxy sidecar` a sidecar.
func ProxyArgs(pod *corev1.Pod) []string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == "istio-proxy" {
				return c.Args
			}
		}
	}
	return nil
}
