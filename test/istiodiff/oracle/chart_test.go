package oracle

import (
	"testing"
)

func webhookNames(t *testing.T, in Install) map[string][]string {
	t.Helper()
	r, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, mwc := range r.Webhooks {
		for _, w := range mwc.Webhooks {
			out[mwc.Name] = append(out[mwc.Name], w.Name)
		}
	}
	return out
}

func TestRenderWebhookConfigurations(t *testing.T) {
	cases := []struct {
		name string
		in   Install
		want map[string]int // configuration -> number of webhooks
	}{
		{"default revision", Install{}, map[string]int{"istio-sidecar-injector": 4}},
		{"default revision, namespaces enabled by default", Install{EnableNamespacesByDefault: true},
			map[string]int{"istio-sidecar-injector": 5}},
		{"named revision", Install{Revision: "canary"}, map[string]int{"istio-sidecar-injector-canary": 2}},
		{"named revision with tags", Install{Revision: "canary", RevisionTags: []string{"prod", "default"}},
			map[string]int{
				"istio-sidecar-injector-canary": 2,
				"istio-revision-tag-prod":       2,
				"istio-revision-tag-default":    4,
			}},
		{"tag default with namespaces enabled by default", Install{Revision: "canary", RevisionTags: []string{"default"}, EnableNamespacesByDefault: true},
			map[string]int{
				"istio-sidecar-injector-canary": 2,
				"istio-revision-tag-default":    5,
			}},
		{"other release namespace", Install{Namespace: "istio-control"},
			map[string]int{"istio-sidecar-injector-istio-control": 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := webhookNames(t, tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("configurations %v, want %v", got, tc.want)
			}
			for name, n := range tc.want {
				if len(got[name]) != n {
					t.Errorf("%s has webhooks %v, want %d", name, got[name], n)
				}
			}
		})
	}
}

func TestRenderedWebhookDetails(t *testing.T) {
	r, err := Render(Install{Revision: "canary", RevisionTags: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, mwc := range r.Webhooks {
		if got := WebhookRevision(mwc); got != "canary" {
			t.Errorf("%s: istio.io/rev %q, want canary", mwc.Name, got)
		}
		for _, w := range mwc.Webhooks {
			svc := w.ClientConfig.Service
			if svc == nil || svc.Name != "istiod-canary" || svc.Namespace != "istio-system" {
				t.Errorf("%s/%s: service %+v, want istio-system/istiod-canary", mwc.Name, w.Name, svc)
			}
			if len(w.Rules) != 1 || w.Rules[0].Resources[0] != "pods" {
				t.Errorf("%s/%s: rules %+v", mwc.Name, w.Name, w.Rules)
			}
		}
	}
	if r.InjectorConfig == "" || r.InjectorValues == "" {
		t.Fatal("no injector ConfigMap data")
	}
	// Cached renders hand out copies.
	r.Webhooks[0].Name = "changed"
	r2, err := Render(Install{Revision: "canary", RevisionTags: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Webhooks[0].Name == "changed" {
		t.Fatal("Render returned a shared object")
	}
}
