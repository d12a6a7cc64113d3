package server

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	discoveryfake "k8s.io/client-go/discovery/fake"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// conflictFindings: two namespace-wide Sidecars in prod, and one in staging
// that selects nothing.
func conflictFindings() []validation.Finding {
	wide := func(name, other string) validation.Finding {
		return validation.Finding{Namespace: "prod", Name: name,
			Errors: field.ErrorList{rules.SecondNamespaceWide.On(field.Forbidden(field.NewPath("spec", "workloadSelector"), "already has prod/"+other))},
			Others: [][]string{{"prod/" + other}}}
	}
	return []validation.Finding{
		wide("default", "second"),
		wide("second", "default"),
		{Namespace: "staging", Name: "ratings", Warnings: validation.Warnings{
			validation.Warnf(rules.SelectsNothing, field.NewPath("spec", "workloadSelector", "labels"), "selects no workload"),
		}},
	}
}

// TestPolicyReports: one report per namespace with findings; a conflict is
// a fail result naming both Sidecars, a Sidecar without effect a warn
// result; the summary counts them.
func TestPolicyReports(t *testing.T) {
	got := policyReports(conflictFindings())
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, []string{"prod", "staging"}) {
		t.Fatalf("reports in %v, want prod and staging", keys)
	}
	prod := got["prod"]
	if prod.GetAPIVersion() != "wgpolicyk8s.io/v1alpha2" || prod.GetKind() != "PolicyReport" || prod.GetName() != "sidecar-webhook" ||
		prod.GetNamespace() != "prod" || prod.GetLabels()["app.kubernetes.io/managed-by"] != "sidecar-webhook" {
		t.Errorf("prod report metadata: %v %v %s/%s %v", prod.GetAPIVersion(), prod.GetKind(), prod.GetNamespace(), prod.GetName(), prod.GetLabels())
	}
	ref := func(name string) any {
		return map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "namespace": strings.Split(name, "/")[0], "name": strings.Split(name, "/")[1]}
	}
	want := map[string]any{
		"results": []any{
			map[string]any{"policy": "sidecar-webhook", "rule": "SW1001", "category": "Istio Sidecar", "source": "sidecar-webhook",
				"result": "fail", "severity": "high", "scored": true,
				"message":    "spec.workloadSelector: Forbidden: [SW1001] already has prod/second",
				"resources":  []any{ref("prod/default"), ref("prod/second")},
				"properties": map[string]any{"field": "spec.workloadSelector"}},
			map[string]any{"policy": "sidecar-webhook", "rule": "SW1001", "category": "Istio Sidecar", "source": "sidecar-webhook",
				"result": "fail", "severity": "high", "scored": true,
				"message":    "spec.workloadSelector: Forbidden: [SW1001] already has prod/default",
				"resources":  []any{ref("prod/second"), ref("prod/default")},
				"properties": map[string]any{"field": "spec.workloadSelector"}},
		},
		"summary": map[string]any{"pass": int64(0), "fail": int64(2), "warn": int64(0), "error": int64(0), "skip": int64(0)},
	}
	if diff := cmp.Diff(want, map[string]any{"results": prod.Object["results"], "summary": prod.Object["summary"]}); diff != "" {
		t.Errorf("prod report (-want +got):\n%s", diff)
	}
	staging := got["staging"].Object
	results := staging["results"].([]any)
	if len(results) != 1 {
		t.Fatalf("staging: %d results, want 1", len(results))
	}
	r := results[0].(map[string]any)
	if r["rule"] != "SW1005" || r["result"] != "warn" || r["severity"] != "medium" ||
		r["message"] != "spec.workloadSelector.labels: [SW1005] selects no workload" ||
		!cmp.Equal(r["resources"], []any{ref("staging/ratings")}) {
		t.Errorf("staging result: %v", r)
	}
	if s := staging["summary"].(map[string]any); s["warn"] != int64(1) || s["fail"] != int64(0) {
		t.Errorf("staging summary: %v", s)
	}
	// Plain JSON values only (DeepCopy panics on others), as the API server
	// returns them, so that an unchanged report compares equal.
	for _, report := range got {
		_ = report.DeepCopy()
	}
}

// reporterFixture is a policyReporter over fake discovery and dynamic
// clients holding objects.
func reporterFixture(t *testing.T, crd bool, objects ...runtime.Object) (*policyReporter, *dynamicfake.FakeDynamicClient) {
	t.Helper()
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{policyReportResource: "PolicyReportList"}, objects...)
	disc := &discoveryfake.FakeDiscovery{Fake: &clienttesting.Fake{}}
	if crd {
		disc.Resources = []*metav1.APIResourceList{{GroupVersion: "wgpolicyk8s.io/v1alpha2",
			APIResources: []metav1.APIResource{{Name: "policyreports", Namespaced: true, Kind: "PolicyReport"}, {Name: "clusterpolicyreports", Kind: "ClusterPolicyReport"}}}}
	}
	return &policyReporter{discovery: disc, client: client, log: logr.Discard()}, client
}

// writes lists the create, update and delete actions on PolicyReports as
// "verb namespace".
func writes(client *dynamicfake.FakeDynamicClient) []string {
	var out []string
	for _, a := range client.Actions() {
		switch a.GetVerb() {
		case "create", "update", "delete", "patch":
			out = append(out, a.GetVerb()+" "+a.GetNamespace())
		}
	}
	client.ClearActions()
	return out
}

func storedReport(t *testing.T, client *dynamicfake.FakeDynamicClient, ns string) *unstructured.Unstructured {
	t.Helper()
	r, err := client.Resource(policyReportResource).Namespace(ns).Get(context.Background(), PolicyReportName, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return r
}

// TestPolicyReporterSync: without the CRD nothing is written; with it, a
// report appears per namespace with findings, is left alone while nothing
// changes, is updated in place when findings change and deleted when its
// namespace is clean; reports the audit does not own are never touched.
func TestPolicyReporterSync(t *testing.T) {
	ctx := context.Background()
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
		"metadata": map[string]any{"name": "kyverno-report", "namespace": "prod"},
		"results":  []any{},
	}}

	p, client := reporterFixture(t, false, foreign)
	if err := p.sync(ctx, conflictFindings()); err != nil {
		t.Fatal(err)
	}
	if got := writes(client); len(got) != 0 || len(client.Actions()) != 0 {
		t.Errorf("without the CRD: writes %v; want none", got)
	}

	p, client = reporterFixture(t, true, foreign)
	findings := conflictFindings()
	if err := p.sync(ctx, findings); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"create prod", "create staging"}, writes(client)); diff != "" {
		t.Errorf("first audit (-want +got):\n%s", diff)
	}
	if r := storedReport(t, client, "prod"); r == nil || len(r.Object["results"].([]any)) != 2 {
		t.Errorf("prod report: %v", r)
	}

	if err := p.sync(ctx, findings); err != nil {
		t.Fatal(err)
	}
	if got := writes(client); len(got) != 0 {
		t.Errorf("unchanged findings: writes %v, want none", got)
	}

	// prod's conflict is fixed; staging gets a second finding.
	changed := []validation.Finding{findings[2], {Namespace: "staging", Name: "extra", Warnings: findings[2].Warnings}}
	if err := p.sync(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"update staging", "delete prod"}, writes(client)); diff != "" {
		t.Errorf("after the fix (-want +got):\n%s", diff)
	}
	if r := storedReport(t, client, "staging"); r == nil || len(r.Object["results"].([]any)) != 2 || r.Object["summary"].(map[string]any)["warn"] != int64(2) {
		t.Errorf("staging report after the update: %v", r)
	}
	if storedReport(t, client, "prod") != nil {
		t.Errorf("prod's report is still there")
	}
	if _, err := client.Resource(policyReportResource).Namespace("prod").Get(ctx, "kyverno-report", metav1.GetOptions{}); err != nil {
		t.Errorf("a report the audit does not own was touched: %v", err)
	}

	if err := p.sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"delete staging"}, writes(client)); diff != "" {
		t.Errorf("clean cluster (-want +got):\n%s", diff)
	}
}
