package offline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// Options are the checker's inputs besides the documents.
type Options struct {
	// RootNamespace is the mesh root namespace.
	RootNamespace string
	// DefaultNamespace is where an object without metadata.namespace lives,
	// as `kubectl apply` without -n would put it.
	DefaultNamespace string
	Validation       validation.Options
	// Defaults are the defaulting options (the cluster's IP family).
	Defaults defaults.Options
	// ClusterDomain is the cluster's DNS domain ("" for cluster.local).
	ClusterDomain string
	// View, if set, is the starting cluster state (check --cluster); the
	// documents' objects are added on top. Nil starts from nothing.
	View *clusterview.Memory
	// Stored are the Sidecars View already holds, in full (check
	// --cluster): a document that repeats one's namespace/name is an UPDATE
	// of it, ratcheted against it as the webhook would.
	Stored []*sidecar.Sidecar
}

// Decision is the verdict on one Sidecar document; the JSON form is the
// checker's `-o json` output.
type Decision struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	File       string `json:"file"`
	Line       int    `json:"line"`
	Allowed    bool   `json:"allowed"`
	Message    string `json:"message"`
	// Errors are the reasons for a denial, one field error each
	// ("spec.egress[0].port: Required value: ..."): the field, the rule and
	// what is allowed. Empty when allowed.
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
	// Findings are Errors and Warnings again, in that order, structured for
	// tools: the rule, the field, where the field is written, and the same
	// text.
	Findings []Finding `json:"findings"`
}

// Finding is one error or warning of a decision.
type Finding struct {
	// Rule is the rule's ID ("SW0301"); empty only for a problem no rule
	// names.
	Rule rules.ID `json:"rule,omitempty"`
	// Severity is error for a reason of a denial, warning otherwise (a
	// would-be denial under enforcement=warn is a warning).
	Severity rules.Severity `json:"severity"`
	// Field is the field path ("spec.egress[0].port"); empty for the object
	// as a whole.
	Field string `json:"field,omitempty"`
	// Line and Column are where Field is written in File (1-based): its
	// key, or its closest written parent; 0 for objects read from the
	// cluster.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Message is the text as in Errors or Warnings, the rule's ID in it.
	Message string `json:"message"`
}

// warn records a warning.
func (d *Decision) warn(w validation.Warning) {
	text := w.String()
	d.Warnings = append(d.Warnings, text)
	f := Finding{Rule: w.Rule, Severity: rules.Warning, Message: text}
	if w.Path != nil {
		f.Field = w.Path.String()
	}
	d.Findings = append(d.Findings, f)
}

// locate fills in where each finding's field is written in d.
func (d *Decision) locate(doc Document) {
	for i := range d.Findings {
		d.Findings[i].Line, d.Findings[i].Column = doc.Position(d.Findings[i].Field)
	}
}

// Check builds the cluster state from every non-Sidecar document, then
// admits the Sidecars in input order. An admitted Sidecar joins the state, so
// a later one is checked against it; a repeated namespace/name (of an
// admitted document, or of opts.Stored) is an UPDATE of it, and errors that
// pre-date it are ratcheted (validation.Decide).
func Check(docs []Document, opts Options) ([]Decision, error) {
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "default"
	}
	view := opts.View
	if view == nil {
		view = clusterview.NewMemory(opts.RootNamespace)
		if opts.ClusterDomain != "" {
			view.SetClusterDomain(opts.ClusterDomain)
		}
	}
	if err := AddState(view, docs, opts.DefaultNamespace); err != nil {
		return nil, err
	}

	// stored holds what the API server would hold: the last admitted
	// version of each Sidecar, what an UPDATE is compared against.
	stored := map[string]*sidecar.Sidecar{}
	for _, s := range opts.Stored {
		stored[s.Namespace+"/"+s.Name] = s
	}
	var out []Decision
	for _, d := range docs {
		if !isSidecar(d) {
			continue
		}
		dec, admitted := decide(d, view, stored, opts)
		if admitted != nil {
			stored[admitted.Namespace+"/"+admitted.Name] = admitted
			view.PutSidecar(clusterview.RefOf(admitted))
		}
		out = append(out, dec)
	}
	return out, nil
}

// AssumedNamespaceLabels are the labels of a namespace the documents imply
// but do not declare (nor the cluster holds, with --cluster): its workloads
// are taken to get sidecar proxies, so that conflicts between Sidecars over
// them are caught. A Namespace manifest among the inputs makes it exact.
var AssumedNamespaceLabels = map[string]string{mesh.LabelInjection: "enabled"}

// AddState adds every non-Sidecar document the cluster rules read to view,
// and the namespaces the documents imply: those they name (they will be
// applied there), defaultNamespace, and those every cluster has. Implied
// namespaces not declared get AssumedNamespaceLabels.
func AddState(view *clusterview.Memory, docs []Document, defaultNamespace string) error {
	for _, d := range docs {
		if isSidecar(d) {
			continue
		}
		if err := addToView(view, d, defaultNamespace); err != nil {
			return &ReadError{File: d.File, Line: d.Line, Err: err}
		}
	}
	for _, ns := range []string{defaultNamespace, "default", "kube-system", view.RootNamespace()} {
		view.EnsureNamespaceLabelled(ns, AssumedNamespaceLabels)
	}
	for _, d := range docs {
		view.EnsureNamespaceLabelled(namespaceOf(d, defaultNamespace), AssumedNamespaceLabels)
	}
	return nil
}

// HasNamespace reports whether the documents hold the Namespace name.
func HasNamespace(docs []Document, name string) bool {
	for _, d := range docs {
		if d.APIVersion == "v1" && d.Kind == "Namespace" && d.Name == name {
			return true
		}
	}
	return false
}

// MeshConfig reads Istio's mesh config from the documents: the ConfigMap
// mesh.MeshConfigMapName(revision) in istioNamespace. found is false when
// the documents hold none.
func MeshConfig(docs []Document, istioNamespace, revision string) (cfg mesh.Config, found bool, err error) {
	if istioNamespace == "" {
		istioNamespace = mesh.DefaultIstioNamespace
	}
	for _, d := range docs {
		if d.APIVersion != "v1" || d.Kind != "ConfigMap" || d.Name != mesh.MeshConfigMapName(revision) {
			continue
		}
		var cm corev1.ConfigMap
		if err := json.Unmarshal(d.JSON, &cm); err != nil {
			return mesh.Config{}, false, &ReadError{File: d.File, Line: d.Line, Err: fmt.Errorf("decoding ConfigMap %q: %v", d.Name, err)}
		}
		if cm.Namespace != istioNamespace {
			continue
		}
		cfg, err := mesh.ParseConfig(cm.Data[mesh.MeshConfigKey])
		if err != nil {
			return mesh.Config{}, false, &ReadError{File: d.File, Line: d.Line, Err: err}
		}
		return cfg, true, nil
	}
	return mesh.Config{}, false, nil
}

// decide makes the decision on one Sidecar document and returns the object
// as it would be stored when it is admitted (nil otherwise).
func decide(d Document, view clusterview.View, stored map[string]*sidecar.Sidecar, opts Options) (dec Decision, admitted *sidecar.Sidecar) {
	ns := namespaceOf(d, opts.DefaultNamespace)
	dec = Decision{Kind: d.Kind, APIVersion: d.APIVersion, Namespace: ns, Name: d.Name, File: d.File, Line: d.Line, Errors: []string{}, Warnings: []string{}, Findings: []Finding{}}
	defer func() { dec.locate(d) }()
	name := d.Name
	if name == "" {
		name = "<generated>"
	}
	// The API server serves only some versions; anything else would be
	// refused there ("no matches for kind"), so it is denied here too.
	if gv, _ := schema.ParseGroupVersion(d.APIVersion); !sidecar.IsServedGVK(gv.WithKind(d.Kind)) {
		dec.deny(name, field.ErrorList{rules.UnservedVersion.On(field.NotSupported(field.NewPath("apiVersion"), d.APIVersion,
			[]string{sidecar.Group + "/v1alpha3", sidecar.Group + "/v1beta1", sidecar.Group + "/v1"}))})
		return dec, nil
	}
	// The same steps the API server takes: mutate (default), then validate.
	obj, errs := sidecar.Decode(d.JSON)
	if len(errs) == 0 {
		var generic map[string]any
		if err := json.Unmarshal(d.JSON, &generic); err == nil {
			changes, notes := defaults.Apply(generic, opts.Defaults)
			for _, n := range notes {
				dec.warn(validation.Warning{Rule: n.Rule, Path: field.NewPath(n.Path), Message: n.Message})
			}
			if len(changes) > 0 {
				if defaulted, err := json.Marshal(generic); err == nil {
					obj, errs = sidecar.Decode(defaulted)
				}
			}
		}
	}
	if len(errs) > 0 {
		dec.deny(name, errs)
		return dec, nil
	}
	obj.Namespace = ns
	result := validation.Decide(obj, stored[ns+"/"+obj.Name], view, opts.Validation)
	for _, w := range result.Warnings {
		dec.warn(w)
	}
	if !result.Allowed() {
		dec.deny(name, result.Errors)
		return dec, nil
	}
	dec.Allowed = true
	return dec, obj
}

// deny records a denial: the message the webhook would send, and each
// field error on its own.
// Findings of errors come before those of warnings.
func (d *Decision) deny(name string, errs field.ErrorList) {
	d.Message = validation.DenialStatus(name, errs).Message
	d.Errors = make([]string, 0, len(errs))
	findings := make([]Finding, 0, len(errs)+len(d.Findings))
	for _, e := range errs {
		text := rules.Text(e)
		d.Errors = append(d.Errors, text)
		findings = append(findings, Finding{Rule: rules.Of(e), Severity: rules.Error, Field: e.Field, Message: text})
	}
	d.Findings = append(findings, d.Findings...)
}

func isSidecar(d Document) bool {
	gv, err := schema.ParseGroupVersion(d.APIVersion)
	return err == nil && gv.Group == sidecar.Group && d.Kind == sidecar.Kind
}

func namespaceOf(d Document, fallback string) string {
	if d.Namespace != "" {
		return d.Namespace
	}
	if d.Kind == "Namespace" {
		return d.Name
	}
	return fallback
}

// addToView adds the kinds the cluster rules read; anything else in a
// repository (ConfigMaps, RBAC, ...) is ignored.
func addToView(view *clusterview.Memory, d Document, defaultNamespace string) error {
	gv, err := schema.ParseGroupVersion(d.APIVersion)
	if err != nil {
		return fmt.Errorf("invalid apiVersion %q: %v", d.APIVersion, err)
	}
	switch gv.Group + "/" + d.Kind {
	case "/Namespace":
		return add(d, "", view.AddNamespace)
	case "/Pod":
		return add(d, defaultNamespace, view.AddPodManifest)
	case "/Service":
		return add(d, defaultNamespace, view.AddService)
	case "apps/Deployment":
		return add(d, defaultNamespace, view.AddDeployment)
	case "apps/StatefulSet":
		return add(d, defaultNamespace, view.AddStatefulSet)
	case "apps/DaemonSet":
		return add(d, defaultNamespace, view.AddDaemonSet)
	case "apps/ReplicaSet":
		return add(d, defaultNamespace, view.AddReplicaSet)
	case "batch/Job":
		return add(d, defaultNamespace, view.AddJob)
	case "batch/CronJob":
		return add(d, defaultNamespace, view.AddCronJob)
	case "networking.istio.io/WorkloadEntry":
		return add(d, defaultNamespace, view.AddWorkloadEntry)
	case "networking.istio.io/ServiceEntry":
		return add(d, defaultNamespace, view.AddServiceEntry)
	case "security.istio.io/PeerAuthentication":
		return add(d, defaultNamespace, view.AddPeerAuthentication)
	case "admissionregistration.k8s.io/MutatingWebhookConfiguration":
		return add(d, "", view.AddMutatingWebhookConfiguration)
	}
	return nil
}

// add decodes d into a fresh T, places it in defaultNamespace when it names
// none (cluster-scoped kinds pass ""), and hands it to the view.
func add[T any, PT interface {
	*T
	metav1.Object
}](d Document, defaultNamespace string, into func(PT)) error {
	obj := PT(new(T))
	if err := json.Unmarshal(d.JSON, obj); err != nil {
		return fmt.Errorf("decoding %s %q: %v", d.Kind, d.Name, err)
	}
	if defaultNamespace != "" && obj.GetNamespace() == "" {
		obj.SetNamespace(defaultNamespace)
	}
	into(obj)
	return nil
}

// FieldErrorsText renders errors one per line, for logs and tests.
func FieldErrorsText(errs field.ErrorList) string {
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		lines = append(lines, rules.Text(e))
	}
	return strings.Join(lines, "\n")
}

// Existing reports the conflicts already present in view (check --cluster
// with files), one entry per Sidecar involved, in the same shape as a
// decision.
func Existing(view clusterview.View) []Decision {
	var out []Decision
	for _, f := range validation.Audit(view) {
		d := clusterDecision(f.Namespace, f.Name)
		d.deny(f.Name, f.Errors)
		d.Message = "existing conflict: " + d.Message
		out = append(out, d)
	}
	return out
}

// ClusterFile is the file name of a decision on a Sidecar read from the
// cluster rather than from a document.
const ClusterFile = "cluster"

// PreflightPrefix starts the message of a stored Sidecar that would be
// denied if it were created today.
const PreflightPrefix = "would be denied if created today: "

// Preflight judges every stored Sidecar as if it were created today
// (validation.Preflight: deny mode, against the cluster minus itself, every
// reason at once): what would break for new objects once enforcement is on.
// Stored ones keep working: their updates are ratcheted. One decision per
// Sidecar, ordered by namespace, then name.
func Preflight(stored []*sidecar.Sidecar, view clusterview.View) []Decision {
	sorted := slices.Clone(stored)
	slices.SortFunc(sorted, func(a, b *sidecar.Sidecar) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	out := make([]Decision, 0, len(sorted))
	for _, s := range sorted {
		d := clusterDecision(s.Namespace, s.Name)
		result := validation.Preflight(s, view)
		for _, w := range result.Warnings {
			d.warn(w)
		}
		if result.Allowed() {
			d.Allowed = true
		} else {
			d.deny(s.Name, result.Errors)
			d.Message = PreflightPrefix + d.Message
		}
		out = append(out, d)
	}
	return out
}

func clusterDecision(namespace, name string) Decision {
	return Decision{
		Kind: sidecar.Kind, APIVersion: sidecar.Group + "/v1", Namespace: namespace, Name: name,
		File: ClusterFile, Errors: []string{}, Warnings: []string{}, Findings: []Finding{},
	}
}
