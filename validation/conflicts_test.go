package validation

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// conflictTestRoot is the mesh root namespace of every test view.
const conflictTestRoot = "istio-system"

// conflictSidecarOpt adjusts a test Sidecar.
type conflictSidecarOpt func(*sidecar.Sidecar)

// conflictTestSidecar builds a Sidecar. selector nil means namespace-wide; an
// empty non-nil map means a workloadSelector without labels.
func conflictTestSidecar(ns, name string, selector map[string]string, opts ...conflictSidecarOpt) *sidecar.Sidecar {
	s := &sidecar.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if selector != nil {
		s.Spec.WorkloadSelector = &networkingv1alpha3.WorkloadSelector{Labels: selector}
	}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// conflictLabels builds a label map from "k=v" pairs.
func conflictLabels(pairs ...string) map[string]string {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		out[k] = v
	}
	return out
}

// conflictFixture adds objects to a test view.
type conflictFixture func(*clusterview.Memory)

func conflictExisting(ns, name string, selector map[string]string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.PutSidecar(clusterview.RefOf(conflictTestSidecar(ns, name, selector)))
	}
}

func conflictPod(ns, name string, labels map[string]string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.AddPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}})
	}
}

func conflictDeployment(ns, name string, labels map[string]string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.AddDeployment(&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
			}},
		})
	}
}

func conflictDeploymentWith(ns, name string, labels, annotations map[string]string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.AddDeployment(&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
			}},
		})
	}
}

func conflictView(fixtures ...conflictFixture) *clusterview.Memory {
	m := clusterview.NewMemory(conflictTestRoot)
	for _, f := range fixtures {
		f(m)
	}
	return m
}

// conflictInjectedNamespaces are the namespaces of the conflict tests, all
// labelled for sidecar injection: their workloads run sidecar proxies.
var conflictInjectedNamespaces = []string{"prod", "prod-us1", "staging", conflictTestRoot}

// conflictMeshView is a view whose namespaces are labelled for injection;
// fixtures may relabel them.
func conflictMeshView(fixtures ...conflictFixture) *clusterview.Memory {
	var all []conflictFixture
	for _, ns := range conflictInjectedNamespaces {
		all = append(all, conflictNamespace(ns, map[string]string{mesh.LabelInjection: "enabled"}))
	}
	return conflictView(append(all, fixtures...)...)
}

func conflictNamespace(name string, labels map[string]string) conflictFixture {
	return func(m *clusterview.Memory) {
		m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	}
}

// conflictErr is the part of a field.Error a table test compares.
type conflictErr struct {
	Type  field.ErrorType
	Field string
}

// checkConflictErrors compares errors by type and field, as Kubernetes'
// validation tests do.
func checkConflictErrors(t *testing.T, want []conflictErr, got field.ErrorList) {
	t.Helper()
	wantErrs := make(field.ErrorList, 0, len(want))
	for _, w := range want {
		wantErrs = append(wantErrs, &field.Error{Type: w.Type, Field: w.Field})
	}
	field.ErrorMatcher{}.ByType().ByField().Test(t, wantErrs, got)
}

func conflictWarningPaths(ws Warnings) []string {
	var out []string
	for _, w := range ws {
		if w.Path == nil {
			out = append(out, "")
			continue
		}
		out = append(out, w.Path.String())
	}
	return out
}

const (
	conflictLabelsField   = "spec.workloadSelector.labels"
	conflictSelectorField = "spec.workloadSelector"
	conflictNameField     = "metadata.name"
)

var conflictForbiddenLabels = conflictErr{Type: field.ErrorTypeForbidden, Field: conflictLabelsField}

func TestValidateConflicts(t *testing.T) {
	ratings := conflictLabels("app=ratings")
	tests := []struct {
		name         string
		sidecar      *sidecar.Sidecar
		fixtures     []conflictFixture
		wantErrs     []conflictErr
		wantWarnings []string
	}{
		{
			name:    "selector alone in its namespace",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictDeployment("prod", "ratings", ratings),
				conflictExisting("prod", "default", nil),
			},
		},
		{
			name:     "namespace-wide default alone",
			sidecar:  conflictTestSidecar("prod", "default", nil),
			fixtures: []conflictFixture{conflictExisting("prod", "ratings", ratings)},
		},
		{
			name:     "second namespace-wide Sidecar",
			sidecar:  conflictTestSidecar("prod", "default", nil),
			fixtures: []conflictFixture{conflictExisting("prod", "legacy", nil)},
			wantErrs: []conflictErr{{Type: field.ErrorTypeForbidden, Field: conflictSelectorField}},
		},
		{
			name:    "namespace-wide with several existing reports one error",
			sidecar: conflictTestSidecar("prod", "default", nil),
			fixtures: []conflictFixture{
				conflictExisting("prod", "legacy-b", nil),
				conflictExisting("prod", "legacy-a", nil),
			},
			wantErrs: []conflictErr{{Type: field.ErrorTypeForbidden, Field: conflictSelectorField}},
		},
		{
			name:         "second namespace-wide Sidecar not named default",
			sidecar:      conflictTestSidecar("prod", "mesh", nil),
			fixtures:     []conflictFixture{conflictExisting("prod", "default", nil)},
			wantErrs:     []conflictErr{{Type: field.ErrorTypeForbidden, Field: conflictSelectorField}},
			wantWarnings: []string{conflictNameField},
		},
		{
			name:         "namespace-wide not named default",
			sidecar:      conflictTestSidecar("prod", "mesh", nil),
			wantWarnings: []string{conflictNameField},
		},
		{
			name:     "namespace-wide Sidecars in different namespaces",
			sidecar:  conflictTestSidecar("prod", "default", nil),
			fixtures: []conflictFixture{conflictExisting("staging", "default", nil)},
		},
		{
			name:     "namespace-wide update of itself",
			sidecar:  conflictTestSidecar("prod", "default", nil),
			fixtures: []conflictFixture{conflictExisting("prod", "default", nil)},
		},
		{
			name:         "namespace-wide next to an empty selector is no duplicate, but never applies (istiod ranks the empty selector first)",
			sidecar:      conflictTestSidecar("prod", "default", nil),
			fixtures:     []conflictFixture{conflictExisting("prod", "broken", map[string]string{})},
			wantWarnings: []string{conflictSelectorField},
		},
		{
			name:    "both select a pod",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "v1", conflictLabels("version=v1")),
				conflictPod("prod", "ratings-v1-abcde", conflictLabels("app=ratings", "version=v1")),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels},
		},
		{
			name:    "Deployment template counted before pods exist",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "backend", conflictLabels("tier=backend")),
				conflictDeployment("prod", "ratings", conflictLabels("app=ratings", "tier=backend")),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels},
		},
		{
			name:     "narrower selector with no workloads",
			sidecar:  conflictTestSidecar("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2")),
			fixtures: []conflictFixture{conflictExisting("prod", "ratings", ratings)},
			wantErrs: []conflictErr{conflictForbiddenLabels},
			// Nothing carries the labels yet.
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:         "broader selector with no workloads",
			sidecar:      conflictTestSidecar("prod", "ratings", ratings),
			fixtures:     []conflictFixture{conflictExisting("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2"))},
			wantErrs:     []conflictErr{conflictForbiddenLabels},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:    "identical selectors with workloads",
			sidecar: conflictTestSidecar("prod", "ratings-copy", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "ratings", ratings),
				conflictDeployment("prod", "ratings", ratings),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels},
		},
		{
			name:    "compatible but not subset and nothing carries both",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "backend", conflictLabels("tier=backend")),
				conflictDeployment("prod", "ratings", ratings),
				conflictDeployment("prod", "api", conflictLabels("app=api", "tier=backend")),
			},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:    "incompatible selectors",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "reviews", conflictLabels("app=reviews")),
				conflictDeployment("prod", "ratings", ratings),
				conflictDeployment("prod", "reviews", conflictLabels("app=reviews")),
			},
		},
		{
			name:    "same selector in another namespace",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("staging", "ratings", ratings),
				conflictDeployment("prod", "ratings", ratings),
				conflictDeployment("staging", "ratings", ratings),
			},
		},
		{
			name:    "selector update of itself",
			sidecar: conflictTestSidecar("prod", "ratings", conflictLabels("app=ratings", "version=v2")),
			fixtures: []conflictFixture{
				conflictExisting("prod", "ratings", ratings),
				conflictDeployment("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2")),
			},
		},
		{
			name:    "another Sidecar with an empty selector selects every workload, as istiod treats it",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "broken", map[string]string{}),
				conflictDeployment("prod", "ratings", ratings),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels},
		},
		{
			name:    "another Sidecar with an empty selector overlaps by construction, even without workloads",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "broken", map[string]string{}),
			},
			wantErrs:     []conflictErr{conflictForbiddenLabels},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:    "an existing Sidecar with an empty selector (the audit) conflicts with every selector Sidecar",
			sidecar: conflictTestSidecar("prod", "broken", map[string]string{}),
			fixtures: []conflictFixture{
				conflictExisting("prod", "ratings", ratings),
				conflictExisting("prod", "default", nil),
				conflictDeployment("prod", "ratings", ratings),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels},
		},
		{
			name:    "workloads without a sidecar proxy do not conflict",
			sidecar: conflictTestSidecar("staging", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictNamespace("staging", nil),
				conflictExisting("staging", "v1", conflictLabels("version=v1")),
				conflictPod("staging", "ratings-v1", conflictLabels("app=ratings", "version=v1")),
			},
			wantWarnings: []string{conflictLabelsField, conflictLabelsField},
		},
		{
			name:    "without injection, identical selectors still overlap by construction (the reference)",
			sidecar: conflictTestSidecar("staging", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictNamespace("staging", nil),
				conflictExisting("staging", "other", ratings),
				conflictPod("staging", "ratings-1", ratings),
			},
			wantErrs:     []conflictErr{conflictForbiddenLabels},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:    "selects only a gateway: no effect",
			sidecar: conflictTestSidecar("prod", "gw", conflictLabels("istio=ingressgateway")),
			fixtures: []conflictFixture{
				conflictDeploymentWith("prod", "ingress", conflictLabels("istio=ingressgateway"), map[string]string{mesh.AnnotationTemplates: "gateway"}),
			},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:    "ambient namespace: a selector Sidecar has no effect",
			sidecar: conflictTestSidecar("staging", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictNamespace("staging", map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient}),
				conflictDeployment("staging", "ratings", ratings),
			},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:    "ambient namespace: overlapping selectors over ambient workloads are not denied",
			sidecar: conflictTestSidecar("staging", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictNamespace("staging", map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient}),
				conflictExisting("staging", "all-ratings", ratings),
				conflictDeployment("staging", "ratings", ratings),
			},
			wantWarnings: []string{conflictLabelsField, conflictLabelsField},
		},
		{
			name:    "ambient namespace: a workload injected by its own label still conflicts",
			sidecar: conflictTestSidecar("staging", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictNamespace("staging", map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient}),
				conflictExisting("staging", "all-ratings", ratings),
				conflictDeployment("staging", "ratings", conflictLabels("app=ratings", "sidecar.istio.io/inject=true")),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels},
		},
		{
			name:    "ambient namespace: a second namespace-wide Sidecar is only warned about",
			sidecar: conflictTestSidecar("staging", "default", nil),
			fixtures: []conflictFixture{
				conflictNamespace("staging", map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient}),
				conflictExisting("staging", "legacy", nil),
				conflictDeployment("staging", "ratings", ratings),
			},
			wantWarnings: []string{conflictSelectorField, conflictSelectorField},
		},
		{
			name:    "ambient namespace with an injected workload: a second namespace-wide Sidecar is denied",
			sidecar: conflictTestSidecar("staging", "default", nil),
			fixtures: []conflictFixture{
				conflictNamespace("staging", map[string]string{mesh.LabelDataplaneMode: mesh.DataplaneModeAmbient}),
				conflictExisting("staging", "legacy", nil),
				conflictPod("staging", "injected", map[string]string{"sidecar.istio.io/inject": "true"}),
			},
			wantErrs: []conflictErr{{Type: field.ErrorTypeForbidden, Field: conflictSelectorField}},
		},
		{
			name:         "selector matches no workload",
			sidecar:      conflictTestSidecar("prod", "ratings", ratings),
			fixtures:     []conflictFixture{conflictDeployment("prod", "reviews", conflictLabels("app=reviews"))},
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:     "selector matches a workload only in another namespace",
			sidecar:  conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{conflictDeployment("staging", "ratings", ratings)},
			// The workload elsewhere is not selected.
			wantWarnings: []string{conflictLabelsField},
		},
		{
			name:         "root namespace with a selector",
			sidecar:      conflictTestSidecar(conflictTestRoot, "gateway", conflictLabels("app=gw")),
			fixtures:     []conflictFixture{conflictDeployment(conflictTestRoot, "gw", conflictLabels("app=gw"))},
			wantWarnings: []string{conflictSelectorField},
		},
		{
			name:    "root namespace default without selector",
			sidecar: conflictTestSidecar(conflictTestRoot, "default", nil),
		},
		{
			name:    "one error per conflicting Sidecar",
			sidecar: conflictTestSidecar("prod", "ratings", ratings),
			fixtures: []conflictFixture{
				conflictExisting("prod", "zz-v1", conflictLabels("version=v1")),
				conflictExisting("prod", "aa-all", ratings),
				conflictExisting("prod", "mm-other", conflictLabels("app=other")),
				conflictPod("prod", "ratings-v1-abcde", conflictLabels("app=ratings", "version=v1")),
			},
			wantErrs: []conflictErr{conflictForbiddenLabels, conflictForbiddenLabels},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warnings := ValidateConflicts(tt.sidecar, conflictMeshView(tt.fixtures...))
			checkConflictErrors(t, tt.wantErrs, errs)
			if diff := cmp.Diff(tt.wantWarnings, conflictWarningPaths(warnings)); diff != "" {
				t.Errorf("warning paths (-want +got):\n%s\n%v", diff, warnings.Strings())
			}
		})
	}
}

// conflictWantDetail checks that the only error names every part.
func conflictWantDetail(t *testing.T, errs field.ErrorList, parts ...string) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(errs), errs)
	}
	for _, p := range parts {
		if !strings.Contains(errs[0].Detail, p) {
			t.Errorf("detail %q does not mention %q", errs[0].Detail, p)
		}
	}
}

func TestValidateConflictsDetails(t *testing.T) {
	ratings := conflictLabels("app=ratings")

	t.Run("namespace-wide names every existing Sidecar", func(t *testing.T) {
		view := conflictMeshView(conflictExisting("prod", "legacy-b", nil), conflictExisting("prod", "legacy-a", nil))
		errs, _ := ValidateConflicts(conflictTestSidecar("prod", "default", nil), view)
		conflictWantDetail(t, errs, `namespace "prod"`, "prod/legacy-a, prod/legacy-b", "undefined")
	})

	t.Run("overlap names the other Sidecar and the workloads", func(t *testing.T) {
		view := conflictMeshView(
			conflictExisting("prod", "v1", conflictLabels("version=v1")),
			conflictDeployment("prod", "ratings", conflictLabels("app=ratings", "version=v1")),
			conflictPod("prod", "ratings-7c9f-abcde", conflictLabels("app=ratings", "version=v1")),
			conflictPod("prod", "reviews", conflictLabels("app=reviews", "version=v1")),
		)
		errs, _ := ValidateConflicts(conflictTestSidecar("prod", "ratings", ratings), view)
		conflictWantDetail(t, errs, "prod/v1", "Deployment prod/ratings, Pod prod/ratings-7c9f-abcde")
		if strings.Contains(errs[0].Detail, "reviews") {
			t.Errorf("detail names a workload only one Sidecar selects: %q", errs[0].Detail)
		}
		if strings.Contains(errs[0].Detail, "more") {
			t.Errorf("detail counts extra workloads: %q", errs[0].Detail)
		}
	})

	t.Run("more than five workloads are counted", func(t *testing.T) {
		fixtures := []conflictFixture{conflictExisting("prod", "all-ratings", ratings)}
		for i := range 7 {
			fixtures = append(fixtures, conflictPod("prod", fmt.Sprintf("ratings-%d", i), ratings))
		}
		errs, _ := ValidateConflicts(conflictTestSidecar("prod", "ratings", ratings), conflictMeshView(fixtures...))
		conflictWantDetail(t, errs, "prod/all-ratings", "Pod prod/ratings-0", "Pod prod/ratings-4", "and 2 more", "identical")
		if strings.Contains(errs[0].Detail, "ratings-5") {
			t.Errorf("detail names more than five workloads: %q", errs[0].Detail)
		}
	})

	t.Run("workloads are named in order whatever order the view answers in", func(t *testing.T) {
		fixtures := []conflictFixture{conflictExisting("prod", "all-ratings", ratings)}
		for _, name := range []string{"ratings-c", "ratings-a", "ratings-b"} {
			fixtures = append(fixtures, conflictPod("prod", name, ratings))
		}
		fixtures = append(fixtures, conflictDeployment("prod", "ratings", ratings))
		view := reversedWorkloads{conflictMeshView(fixtures...)}
		errs, _ := ValidateConflicts(conflictTestSidecar("prod", "ratings", ratings), view)
		conflictWantDetail(t, errs, "Deployment prod/ratings, Pod prod/ratings-a, Pod prod/ratings-b, Pod prod/ratings-c")
	})

	t.Run("subset without workloads explains the narrower selector", func(t *testing.T) {
		view := conflictMeshView(conflictExisting("prod", "ratings", ratings))
		errs, _ := ValidateConflicts(conflictTestSidecar("prod", "ratings-v2", conflictLabels("app=ratings", "version=v2")), view)
		conflictWantDetail(t, errs, "prod/ratings", "narrower", "app=ratings,version=v2")
	})

	t.Run("compatible selectors warn with the combined labels", func(t *testing.T) {
		view := conflictMeshView(
			conflictExisting("prod", "backend", conflictLabels("tier=backend")),
			conflictDeployment("prod", "ratings", ratings),
		)
		_, warnings := ValidateConflicts(conflictTestSidecar("prod", "ratings", ratings), view)
		want := []string{`spec.workloadSelector.labels: [SW1004] selects the same workloads as prod/backend if a workload carries both label sets (app=ratings,tier=backend); none with a sidecar proxy exists now`}
		if diff := cmp.Diff(want, warnings.Strings()); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
	})
}

// conflictReferenceExample builds the reference's productpage Sidecars as
// they appear there, so the test reads against the documentation.
func conflictReferenceExample(name string) *sidecar.Sidecar {
	s := conflictTestSidecar("prod-us1", name, conflictLabels("app=productpage"))
	switch name {
	case "no-ip-tables":
		s.Spec.Ingress = []*networkingv1alpha3.IstioIngressListener{{
			Port:            &networkingv1alpha3.SidecarPort{Number: 9080, Protocol: "HTTP", Name: "somename"},
			DefaultEndpoint: "127.0.0.1:8080",
			CaptureMode:     networkingv1alpha3.CaptureMode_NONE,
		}}
		s.Spec.Egress = []*networkingv1alpha3.IstioEgressListener{{
			Port:        &networkingv1alpha3.SidecarPort{Number: 3306, Protocol: "MYSQL", Name: "egressmysql"},
			CaptureMode: networkingv1alpha3.CaptureMode_NONE,
			Bind:        "127.0.0.1",
			Hosts:       []string{"*/mysql.foo.com"},
		}}
	case "partial-ip-tables":
		s.Spec.Ingress = []*networkingv1alpha3.IstioIngressListener{{
			Bind:            "172.16.1.32",
			Port:            &networkingv1alpha3.SidecarPort{Number: 80, Protocol: "HTTP", Name: "somename"},
			DefaultEndpoint: "127.0.0.1:8080",
			CaptureMode:     networkingv1alpha3.CaptureMode_NONE,
		}}
		s.Spec.Egress = []*networkingv1alpha3.IstioEgressListener{{
			CaptureMode: networkingv1alpha3.CaptureMode_IPTABLES,
			Hosts:       []string{"*/*"},
		}}
	}
	return s
}

func TestValidateConflictsReferenceProductpageExamples(t *testing.T) {
	view := conflictMeshView(conflictDeployment("prod-us1", "productpage", conflictLabels("app=productpage")))
	first := conflictReferenceExample("no-ip-tables")
	errs, warnings := ValidateConflicts(first, view)
	if len(errs) != 0 || len(warnings) != 0 {
		t.Fatalf("no-ip-tables alone: errors %v, warnings %v", errs, warnings.Strings())
	}
	view.PutSidecar(clusterview.RefOf(first))

	errs, _ = ValidateConflicts(conflictReferenceExample("partial-ip-tables"), view)
	checkConflictErrors(t, []conflictErr{conflictForbiddenLabels}, errs)
	conflictWantDetail(t, errs, "prod-us1/no-ip-tables", "Deployment prod-us1/productpage", "identical")
}

// reversedWorkloads answers Workloads in reverse order: the informer view
// promises no order, and messages must not depend on one.
type reversedWorkloads struct{ clusterview.View }

func (r reversedWorkloads) Workloads(namespace string) []clusterview.Workload {
	ws := r.View.Workloads(namespace)
	slices.Reverse(ws)
	return ws
}
