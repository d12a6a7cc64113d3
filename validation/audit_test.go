package validation

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
)

// auditView is a Memory view with namespaces and the objects added by opts.
func auditView(namespaces []string, opts ...func(*clusterview.Memory)) *clusterview.Memory {
	m := clusterview.NewMemory("istio-system")
	for _, ns := range namespaces {
		m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}})
	}
	for _, opt := range opts {
		opt(m)
	}
	return m
}

// auditSidecar adds an existing Sidecar; selector nil means namespace-wide.
func auditSidecar(ns, name string, selector map[string]string) func(*clusterview.Memory) {
	return func(m *clusterview.Memory) {
		m.PutSidecar(clusterview.SidecarRef{
			Namespace: ns, Name: name, Selector: selector,
			Created: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		})
	}
}

func auditPod(ns, name string, labels map[string]string) func(*clusterview.Memory) {
	return func(m *clusterview.Memory) {
		m.AddPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}})
	}
}

func auditDeployment(ns, name string, template map[string]string) func(*clusterview.Memory) {
	return func(m *clusterview.Memory) {
		m.AddDeployment(&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: template},
			}},
		})
	}
}

// auditKeys lists the findings as namespace/name.
func auditKeys(findings []Finding) []string {
	out := make([]string, 0, len(findings))
	for _, f := range findings {
		out = append(out, f.Namespace+"/"+f.Name)
	}
	return out
}

// auditWantErrors checks that a finding carries errors, every one Forbidden
// at spec.workloadSelector(.labels), and that together they mention every
// string in mention and none in notMention.
func auditWantErrors(t *testing.T, f Finding, mention, notMention []string) {
	t.Helper()
	if len(f.Errors) == 0 {
		t.Fatalf("finding %s/%s has no errors", f.Namespace, f.Name)
	}
	var details []string
	for _, e := range f.Errors {
		if e.Type != field.ErrorTypeForbidden {
			t.Errorf("finding %s/%s: error type %s, want Forbidden: %v", f.Namespace, f.Name, e.Type, e)
		}
		if !strings.HasPrefix(e.Field, "spec.workloadSelector") {
			t.Errorf("finding %s/%s: error at %q, want spec.workloadSelector...", f.Namespace, f.Name, e.Field)
		}
		details = append(details, e.Detail)
	}
	all := strings.Join(details, "\n")
	for _, s := range mention {
		if !strings.Contains(all, s) {
			t.Errorf("finding %s/%s does not mention %q:\n%s", f.Namespace, f.Name, s, all)
		}
	}
	for _, s := range notMention {
		if strings.Contains(all, s) {
			t.Errorf("finding %s/%s mentions %q:\n%s", f.Namespace, f.Name, s, all)
		}
	}
}

func TestAuditEmptyView(t *testing.T) {
	if got := Audit(clusterview.NewMemory("istio-system")); len(got) != 0 {
		t.Errorf("Audit(empty) = %+v, want none", got)
	}
}

func TestAuditCleanCluster(t *testing.T) {
	view := auditView([]string{"istio-system", "prod", "staging"},
		// One mesh-wide default, one namespace-wide default per namespace,
		// and disjoint selectors that each select something.
		auditSidecar("istio-system", "default", nil),
		auditSidecar("prod", "default", nil),
		auditSidecar("prod", "ratings", map[string]string{"app": "ratings"}),
		auditSidecar("prod", "reviews", map[string]string{"app": "reviews"}),
		auditSidecar("staging", "default", nil),
		auditSidecar("staging", "ratings-v2", map[string]string{"app": "ratings", "version": "v2"}),
		auditSidecar("staging", "ratings-v1", map[string]string{"app": "ratings", "version": "v1"}),
		auditPod("prod", "ratings-1", map[string]string{"app": "ratings"}),
		auditPod("prod", "reviews-1", map[string]string{"app": "reviews"}),
		auditDeployment("staging", "ratings-v1", map[string]string{"app": "ratings", "version": "v1"}),
		auditDeployment("staging", "ratings-v2", map[string]string{"app": "ratings", "version": "v2"}),
	)
	if got := Audit(view); len(got) != 0 {
		t.Errorf("Audit(clean) = %+v, want none", got)
	}
}

func TestAuditTwoNamespaceWideSidecars(t *testing.T) {
	view := auditView([]string{"prod", "staging"},
		auditSidecar("prod", "default", nil),
		auditSidecar("prod", "extra", nil),
		// A selector Sidecar next to them is not part of the conflict.
		auditSidecar("prod", "ratings", map[string]string{"app": "ratings"}),
		auditPod("prod", "ratings-1", map[string]string{"app": "ratings"}),
		// A namespace-wide Sidecar in another namespace is fine.
		auditSidecar("staging", "default", nil),
	)
	got := Audit(view)
	if diff := cmp.Diff([]string{"prod/default", "prod/extra"}, auditKeys(got)); diff != "" {
		t.Fatalf("findings (-want +got):\n%s", diff)
	}
	auditWantErrors(t, got[0], []string{"prod/extra"}, []string{"prod/default", "prod/ratings", "staging/"})
	auditWantErrors(t, got[1], []string{"prod/default"}, []string{"prod/extra", "prod/ratings", "staging/"})
}

func TestAuditSelectorsOverlapThroughDeployment(t *testing.T) {
	view := auditView([]string{"prod"},
		auditSidecar("prod", "by-app", map[string]string{"app": "ratings"}),
		auditSidecar("prod", "by-version", map[string]string{"version": "v1"}),
		auditSidecar("prod", "unrelated", map[string]string{"app": "reviews"}),
		auditDeployment("prod", "ratings-v1", map[string]string{"app": "ratings", "version": "v1"}),
		auditDeployment("prod", "reviews", map[string]string{"app": "reviews"}),
	)
	got := Audit(view)
	if diff := cmp.Diff([]string{"prod/by-app", "prod/by-version"}, auditKeys(got)); diff != "" {
		t.Fatalf("findings (-want +got):\n%s", diff)
	}
	auditWantErrors(t, got[0], []string{"prod/by-version", "Deployment prod/ratings-v1"}, []string{"prod/unrelated", "prod/reviews"})
	auditWantErrors(t, got[1], []string{"prod/by-app", "Deployment prod/ratings-v1"}, []string{"prod/unrelated", "prod/reviews"})
}

func TestAuditSameSelectorInDifferentNamespaces(t *testing.T) {
	sel := map[string]string{"app": "ratings"}
	view := auditView([]string{"prod", "staging"},
		auditSidecar("prod", "ratings", sel),
		auditSidecar("staging", "ratings", sel),
		auditPod("prod", "ratings-1", sel),
		auditPod("staging", "ratings-1", sel),
		auditDeployment("prod", "ratings", sel),
		auditDeployment("staging", "ratings", sel),
	)
	if got := Audit(view); len(got) != 0 {
		t.Errorf("Audit = %+v, want none", got)
	}
}

func TestAuditFindingsOrderedByNamespaceThenName(t *testing.T) {
	// Added in scrambled order; namespaces and names chosen so that neither
	// insertion order nor a flat name sort gives the right answer.
	view := auditView([]string{"zeta", "alpha", "mid"},
		auditSidecar("zeta", "b", nil),
		auditSidecar("alpha", "z", nil),
		auditSidecar("zeta", "a", nil),
		auditSidecar("mid", "only", nil), // alone: no finding
		auditSidecar("alpha", "y", nil),
		auditSidecar("alpha", "sel-2", map[string]string{"tier": "web"}),
		auditSidecar("alpha", "sel-1", map[string]string{"app": "web"}),
		auditPod("alpha", "web-1", map[string]string{"app": "web", "tier": "web"}),
	)
	got := Audit(view)
	want := []string{"alpha/sel-1", "alpha/sel-2", "alpha/y", "alpha/z", "zeta/a", "zeta/b"}
	if diff := cmp.Diff(want, auditKeys(got)); diff != "" {
		t.Errorf("finding order (-want +got):\n%s", diff)
	}
	for _, f := range got {
		if len(f.Errors) == 0 {
			t.Errorf("finding %s/%s has no errors", f.Namespace, f.Name)
		}
	}
}

// TestAuditSidecarsFromObjects runs the audit over Sidecars recorded the way
// the server and the offline checker record them (RefOf of a real object),
// including one with a workloadSelector without labels, which istiod treats
// as selecting every workload: it overlaps every selector Sidecar.
func TestAuditSidecarsFromObjects(t *testing.T) {
	mk := func(name string, sel *networkingv1alpha3.WorkloadSelector) *networkingv1.Sidecar {
		return &networkingv1.Sidecar{
			ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name},
			Spec:       networkingv1alpha3.Sidecar{WorkloadSelector: sel},
		}
	}
	view := auditView([]string{"prod"},
		func(m *clusterview.Memory) {
			m.PutSidecar(clusterview.RefOf(mk("default", nil)))
			m.PutSidecar(clusterview.RefOf(mk("empty", &networkingv1alpha3.WorkloadSelector{})))
			m.PutSidecar(clusterview.RefOf(mk("one", &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "a"}})))
			m.PutSidecar(clusterview.RefOf(mk("two", &networkingv1alpha3.WorkloadSelector{Labels: map[string]string{"app": "a", "v": "1"}})))
		},
	)
	got := Audit(view)
	// one ⊂ two by construction (no workload needed), and the empty
	// selector ⊂ both: all three reported; the namespace-wide one is not
	// involved.
	if diff := cmp.Diff([]string{"prod/empty", "prod/one", "prod/two"}, auditKeys(got)); diff != "" {
		t.Fatalf("findings (-want +got):\n%s", diff)
	}
	auditWantErrors(t, got[0], []string{"prod/one", "prod/two"}, []string{"prod/default"})
	for i, other := range []string{"prod/two", "prod/one"} {
		auditWantErrors(t, got[i+1], []string{other, "prod/empty"}, []string{"prod/default"})
	}
	if t.Failed() {
		for _, f := range got {
			t.Logf("%s/%s: %v", f.Namespace, f.Name, f.Errors)
		}
	}
}

// TestAuditReport: AuditReport adds the Sidecars that have no effect
// (selecting nothing, nothing with a sidecar proxy, or in an ambient
// namespace) as findings with warnings, and names the other Sidecars of each
// conflict; Audit stays with the conflicts.
func TestAuditReport(t *testing.T) {
	view := auditView([]string{"prod"},
		auditSidecar("prod", "default", nil),
		auditSidecar("prod", "second", nil),
		auditSidecar("prod", "third", nil),
		auditSidecar("prod", "by-app", map[string]string{"app": "ratings"}),
		auditSidecar("prod", "by-version", map[string]string{"version": "v1"}),
		auditPod("prod", "ratings-1", map[string]string{"app": "ratings", "version": "v1"}),
		auditSidecar("prod", "nothing", map[string]string{"app": "gone"}),
		auditSidecar("prod", "no-proxy", map[string]string{"app": "batch"}),
		auditPod("prod", "batch-1", map[string]string{"app": "batch", "sidecar.istio.io/inject": "false"}),
		auditSidecar("prod", "fine", map[string]string{"app": "web"}),
		auditPod("prod", "web-1", map[string]string{"app": "web"}),
		func(m *clusterview.Memory) {
			m.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mesh", Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}})
		},
		auditSidecar("mesh", "default", nil),
	)
	type summary struct {
		Key      string
		Errors   []string // rule: others
		Warnings []string // rules
	}
	summarize := func(findings []Finding) []summary {
		var out []summary
		for _, f := range findings {
			s := summary{Key: f.Namespace + "/" + f.Name}
			for i, e := range f.Errors {
				s.Errors = append(s.Errors, e.Origin+": "+strings.Join(f.Others[i], " "))
			}
			for _, w := range f.Warnings {
				s.Warnings = append(s.Warnings, string(w.Rule))
			}
			out = append(out, s)
		}
		return out
	}
	want := []summary{
		{Key: "mesh/default", Warnings: []string{"SW1007"}},
		{Key: "prod/by-app", Errors: []string{"SW1002: prod/by-version"}},
		{Key: "prod/by-version", Errors: []string{"SW1002: prod/by-app"}},
		{Key: "prod/default", Errors: []string{"SW1001: prod/second prod/third"}},
		{Key: "prod/no-proxy", Warnings: []string{"SW1006"}},
		{Key: "prod/nothing", Warnings: []string{"SW1005"}},
		{Key: "prod/second", Errors: []string{"SW1001: prod/default prod/third"}},
		{Key: "prod/third", Errors: []string{"SW1001: prod/default prod/second"}},
	}
	if diff := cmp.Diff(want, summarize(AuditReport(view))); diff != "" {
		t.Errorf("AuditReport (-want +got):\n%s", diff)
	}
	var conflicts []summary
	for _, s := range want {
		if s.Errors != nil {
			conflicts = append(conflicts, summary{Key: s.Key, Errors: s.Errors})
		}
	}
	if diff := cmp.Diff(conflicts, summarize(Audit(view))); diff != "" {
		t.Errorf("Audit: only the conflicts (-want +got):\n%s", diff)
	}
}

// TestPreflight: an existing Sidecar judged as if created today lists its
// per-object errors and its conflicts together, and does not conflict with
// itself.
func TestPreflight(t *testing.T) {
	wide := func(name string) *networkingv1.Sidecar {
		s := &networkingv1.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: name}}
		s.Spec.Egress = []*networkingv1alpha3.IstioEgressListener{{Hosts: []string{"./*"}}}
		return s
	}
	cases := []struct {
		name   string
		others []string
		change func(*networkingv1.Sidecar)
		want   []errAtT
	}{
		{name: "alone and valid: allowed (not a conflict with itself)"},
		{name: "a per-object error", change: func(s *networkingv1.Sidecar) { s.Spec.Egress[0].Bind = "127.0.0.1" },
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec.egress[0].port")}},
		{name: "a conflict", others: []string{"default"},
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.workloadSelector")}},
		{name: "a per-object error and a conflict: both listed", others: []string{"default"},
			change: func(s *networkingv1.Sidecar) { s.Spec.Egress[0].Bind = "127.0.0.1" },
			want: []errAtT{
				errAt(field.ErrorTypeRequired, "spec.egress[0].port"),
				errAt(field.ErrorTypeForbidden, "spec.workloadSelector"),
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			view := auditView([]string{"prod"})
			for _, o := range tc.others {
				view.PutSidecar(clusterview.RefOf(wide(o)))
			}
			s := wide("legacy")
			if tc.change != nil {
				tc.change(s)
			}
			view.PutSidecar(clusterview.RefOf(s))
			got := Preflight(s, view)
			checkObjectErrors(t, got.Errors, tc.want)
		})
	}
}
