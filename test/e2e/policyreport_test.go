//go:build controlplane

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
)

var policyReports = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

// installPolicyReportCRD installs the PolicyReport CRD for the rest of the
// test and removes it afterwards; dev's audit finds it by discovery.
func installPolicyReportCRD(t *testing.T) {
	t.Helper()
	// From the module that ships it, not a copy (dev/crds).
	crd, err := crds.PolicyReportCRD(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := kubectl(t, "", "create", "-f", crd); err != nil && !strings.Contains(stderr, "AlreadyExists") {
		t.Fatalf("creating the PolicyReport CRD from %s: %v: %s", crd, err, stderr)
	}
	t.Cleanup(func() {
		if _, stderr, err := kubectl(t, "", "delete", "crd", "policyreports.wgpolicyk8s.io", "--wait=false", "--ignore-not-found"); err != nil {
			t.Errorf("deleting the PolicyReport CRD: %v: %s", err, stderr)
		}
	})
	mustKubectl(t, "", "wait", "--for=condition=Established", "--timeout=60s", "crd/policyreports.wgpolicyk8s.io")
}

// policyReportOf returns the audit's PolicyReport in ns, or nil.
func policyReportOf(t *testing.T, ns string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := env.dynamic.Resource(policyReports).Namespace(ns).Get(ctx, "sidecar-webhook", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading PolicyReport %s/sidecar-webhook: %v", ns, err)
	}
	return r
}

// reportResults summarizes a report's results as "rule result
// Sidecar,Sidecar...", sorted.
func reportResults(r *unstructured.Unstructured) []string {
	if r == nil {
		return nil
	}
	results, _, _ := unstructured.NestedSlice(r.Object, "results")
	var out []string
	for _, item := range results {
		res, _ := item.(map[string]any)
		var names []string
		resources, _ := res["resources"].([]any)
		for _, ref := range resources {
			m, _ := ref.(map[string]any)
			names = append(names, fmt.Sprint(m["kind"], " ", m["namespace"], "/", m["name"]))
		}
		out = append(out, fmt.Sprint(res["policy"], " ", res["rule"], " ", res["result"], " ", res["severity"], ": ", strings.Join(names, ", ")))
	}
	slices.Sort(out)
	return out
}

// TestAuditPolicyReports: with the PolicyReport CRD installed, the audit
// keeps one report in a namespace with conflicting Sidecars and a Sidecar
// that selects nothing, updates it in place when the conflict is fixed, and
// deletes it when the namespace is clean.
func TestAuditPolicyReports(t *testing.T) {
	t.Parallel()
	installPolicyReportCRD(t)
	// Warn mode (dev honours the namespace label) admits the conflict, as
	// a cluster holds Sidecars from before enforcement.
	ns := createLabelledNamespace(t, "policy-reports", map[string]string{
		"istio-injection":                "enabled",
		"sidecar-webhook.io/enforcement": "warn",
	})
	for _, manifest := range []string{wideSidecar("default"), wideSidecar("second"), selectorSidecar("nothing", "app", "gone")} {
		applyAdmitted(t, withNamespace(manifest, ns))
	}

	sidecar := func(name string) string { return "Sidecar " + ns + "/" + name }
	want := []string{
		"sidecar-webhook SW1001 fail high: " + sidecar("default") + ", " + sidecar("second"),
		"sidecar-webhook SW1001 fail high: " + sidecar("second") + ", " + sidecar("default"),
		"sidecar-webhook SW1005 warn medium: " + sidecar("nothing"),
	}
	// dev audits every 2s (TestMain).
	start := time.Now()
	var report *unstructured.Unstructured
	waitUntil(t, 60*time.Second, "the audit's PolicyReport", func() (bool, string) {
		report = policyReportOf(t, ns)
		return slices.Equal(reportResults(report), want), strings.Join(reportResults(report), "\n")
	})
	t.Logf("PolicyReport written %s after the CRD was installed", time.Since(start).Round(100*time.Millisecond))
	if report.GetLabels()["app.kubernetes.io/managed-by"] != "sidecar-webhook" {
		t.Errorf("labels %v, want app.kubernetes.io/managed-by=sidecar-webhook", report.GetLabels())
	}
	summary, _, _ := unstructured.NestedMap(report.Object, "summary")
	if summary["fail"] != int64(2) || summary["warn"] != int64(1) {
		t.Errorf("summary %v, want fail 2, warn 1", summary)
	}
	uid := report.GetUID()

	// Fixing the conflict updates the report in place.
	mustKubectl(t, "", "delete", "sidecar", "second", "-n", ns)
	waitUntil(t, 30*time.Second, "the conflict to leave the report", func() (bool, string) {
		report = policyReportOf(t, ns)
		return slices.Equal(reportResults(report), want[2:]), strings.Join(reportResults(report), "\n")
	})
	if report.GetUID() != uid {
		t.Errorf("the report was replaced (uid %s, was %s), want it updated in place", report.GetUID(), uid)
	}

	// A clean namespace has no report.
	mustKubectl(t, "", "delete", "sidecar", "nothing", "-n", ns)
	waitUntil(t, 30*time.Second, "the report to be deleted", func() (bool, string) {
		report = policyReportOf(t, ns)
		return report == nil, strings.Join(reportResults(report), "\n")
	})
}
