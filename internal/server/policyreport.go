package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

// The Kubernetes Policy working group's PolicyReport API, which Kyverno,
// Policy Reporter and other dashboards read. Its CRD is optional: the audit
// writes reports only while it is installed.
var policyReportResource = schema.GroupVersionResource{Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}

const (
	// PolicyReportName is the name of the one PolicyReport the audit keeps
	// in each namespace that has findings.
	PolicyReportName = "sidecar-webhook"
	// policyName is each result's policy; its rule is the rule's ID.
	policyName = "sidecar-webhook"
	// managedByLabel marks the reports the audit owns: only those are
	// updated and deleted.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "sidecar-webhook"
)

// resourceDiscovery is the part of the discovery client that tells whether
// the PolicyReport CRD is installed.
type resourceDiscovery interface {
	ServerResourcesForGroupVersionWithContext(ctx context.Context, groupVersion string) (*metav1.APIResourceList, error)
}

// policyReporter keeps one PolicyReport per namespace with findings and
// none elsewhere. It writes only what changed: an unchanged namespace costs
// nothing but its share of one List per audit.
type policyReporter struct {
	discovery resourceDiscovery
	client    dynamic.Interface
	log       logr.Logger
	// installed is what the last audit found, to log only changes.
	installed *bool
}

func newPolicyReporter(restConfig *rest.Config, log logr.Logger) (*policyReporter, error) {
	disc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("PolicyReports: %w", err)
	}
	client, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("PolicyReports: %w", err)
	}
	return &policyReporter{discovery: disc, client: client, log: log}, nil
}

// sync brings the reports in line with findings. Without the CRD it does
// nothing (one discovery request per audit tells). Every namespace is
// handled even when another fails; the errors are returned together.
func (p *policyReporter) sync(ctx context.Context, findings []validation.Finding) error {
	installed, err := p.crdInstalled(ctx)
	if err != nil {
		return fmt.Errorf("looking for the PolicyReport CRD: %w", err)
	}
	if p.installed == nil || *p.installed != installed {
		if installed {
			p.log.Info("the PolicyReport CRD is installed: the audit's findings are written as PolicyReports", "resource", policyReportResource.GroupResource().String())
		} else {
			p.log.Info("the PolicyReport CRD is not installed: no PolicyReports", "resource", policyReportResource.GroupResource().String())
		}
		p.installed = &installed
	}
	if !installed {
		return nil
	}
	reports := p.client.Resource(policyReportResource)
	list, err := reports.List(ctx, metav1.ListOptions{LabelSelector: managedByLabel + "=" + managedBy})
	if err != nil {
		return fmt.Errorf("listing PolicyReports: %w", err)
	}
	existing := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		if r := &list.Items[i]; r.GetName() == PolicyReportName {
			existing[r.GetNamespace()] = r
		}
	}
	var errs []error
	desired := policyReports(findings)
	for _, ns := range slices.Sorted(maps.Keys(desired)) {
		want := desired[ns]
		have, ok := existing[ns]
		switch {
		case !ok:
			_, err = reports.Namespace(ns).Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, "NamespaceTerminating") {
				continue // going away with its Sidecars
			}
		case !equality.Semantic.DeepEqual(have.Object["results"], want.Object["results"]) ||
			!equality.Semantic.DeepEqual(have.Object["summary"], want.Object["summary"]):
			have.Object["results"], have.Object["summary"] = want.Object["results"], want.Object["summary"]
			// The list's resourceVersion makes a concurrent change a
			// conflict, retried at the next audit.
			_, err = reports.Namespace(ns).Update(ctx, have, metav1.UpdateOptions{})
		default:
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("writing PolicyReport %s/%s: %w", ns, PolicyReportName, err))
		}
	}
	for _, ns := range slices.Sorted(maps.Keys(existing)) {
		if _, ok := desired[ns]; ok {
			continue
		}
		if err := reports.Namespace(ns).Delete(ctx, PolicyReportName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting PolicyReport %s/%s: %w", ns, PolicyReportName, err))
		}
	}
	return errors.Join(errs...)
}

// crdInstalled asks discovery whether the API server serves PolicyReports.
func (p *policyReporter) crdInstalled(ctx context.Context) (bool, error) {
	list, err := p.discovery.ServerResourcesForGroupVersionWithContext(ctx, policyReportResource.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == policyReportResource.Resource }), nil
}

// policyReports builds the PolicyReport of each namespace that has
// findings: a result per conflict (fail) and per Sidecar without effect
// (warn), with the rule's ID as rule, naming the Sidecar and, for a
// conflict, the other Sidecars involved. Values are of the types the API
// server's JSON decodes to, so that a stored report compares equal.
func policyReports(findings []validation.Finding) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, f := range findings {
		report, ok := out[f.Namespace]
		if !ok {
			report = &unstructured.Unstructured{Object: map[string]any{
				"results": []any{},
				"summary": map[string]any{"pass": int64(0), "fail": int64(0), "warn": int64(0), "error": int64(0), "skip": int64(0)},
			}}
			report.SetAPIVersion(policyReportResource.GroupVersion().String())
			report.SetKind("PolicyReport")
			report.SetNamespace(f.Namespace)
			report.SetName(PolicyReportName)
			report.SetLabels(map[string]string{managedByLabel: managedBy})
			out[f.Namespace] = report
		}
		for i, e := range f.Errors {
			var others []string
			if i < len(f.Others) {
				others = f.Others[i]
			}
			addResult(report, f, rules.Of(e), "fail", e.Field, rules.Text(e), others)
		}
		for _, w := range f.Warnings {
			path := ""
			if w.Path != nil {
				path = w.Path.String()
			}
			addResult(report, f, w.Rule, "warn", path, w.String(), nil)
		}
	}
	return out
}

func addResult(report *unstructured.Unstructured, f validation.Finding, rule rules.ID, result, path, message string, others []string) {
	resources := []any{sidecarRef(f.Namespace + "/" + f.Name)}
	for _, o := range others {
		resources = append(resources, sidecarRef(o))
	}
	severity := "medium"
	if result == "fail" {
		severity = "high"
	}
	entry := map[string]any{
		"policy":    policyName,
		"rule":      string(rule),
		"category":  "Istio Sidecar",
		"source":    managedBy,
		"result":    result,
		"severity":  severity,
		"scored":    true,
		"message":   message,
		"resources": resources,
	}
	if path != "" {
		entry["properties"] = map[string]any{"field": path}
	}
	report.Object["results"] = append(report.Object["results"].([]any), entry)
	summary := report.Object["summary"].(map[string]any)
	summary[result] = summary[result].(int64) + 1
}

// sidecarRef refers to the Sidecar namespace/name.
func sidecarRef(key string) map[string]any {
	ns, name, _ := strings.Cut(key, "/")
	return map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "namespace": ns, "name": name}
}
