package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/resolve"
)

func podView() *clusterview.Memory {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	v := clusterview.NewMemory("istio-system")
	for _, ns := range []string{"prod", "dev", "staging"} {
		v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{mesh.LabelInjection: "enabled"}}})
	}
	v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "istio-system", Name: "default", Created: t0})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "prod", Name: "default", Created: t0})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "prod", Name: "ratings", Created: t0, Selector: map[string]string{"app": "ratings"}})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "prod", Name: "b-v1", Created: t0.Add(time.Hour), Selector: map[string]string{"version": "v1"}})
	v.PutSidecar(clusterview.SidecarRef{Namespace: "prod", Name: "a-reviews", Created: t0.Add(2 * time.Hour), Selector: map[string]string{"app": "reviews"}})
	return v
}

func podRequest(op admissionv1.Operation, namespace, body string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Operation: op,
		Namespace: namespace,
		Object:    runtime.RawExtension{Raw: []byte(body)},
	}}
}

// applied returns the object after the response's patch, as the API server
// would store it.
func applied(t *testing.T, raw []byte, resp admission.Response) map[string]any {
	t.Helper()
	out := raw
	if len(resp.Patches) > 0 {
		ops, err := json.Marshal(resp.Patches)
		if err != nil {
			t.Fatal(err)
		}
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatalf("decoding patch %s: %v", ops, err)
		}
		if out, err = patch.Apply(raw); err != nil {
			t.Fatalf("applying patch %s: %v", ops, err)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(out, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func annotationsOf(obj map[string]any) map[string]string {
	meta, _ := obj["metadata"].(map[string]any)
	raw, _ := meta["annotations"].(map[string]any)
	if raw == nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range raw {
		out[k], _ = v.(string)
	}
	return out
}

func readyView(v clusterview.View) func(context.Context) (clusterview.View, error) {
	return func(context.Context) (clusterview.View, error) { return v, nil }
}

func TestPodAnnotator(t *testing.T) {
	tests := []struct {
		name          string
		deny          bool
		notReady      bool
		op            admissionv1.Operation
		reqNamespace  string
		body          string
		wantAllowed   bool
		wantCode      int32
		wantNoPatch   bool
		wantAnno      map[string]string
		wantWarnings  []string
		wantMsgSubstr []string
	}{
		{
			name:        "selected by one Sidecar",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"}},"spec":{"containers":[{"name":"c","image":"i"}]}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name:        "namespace-wide, other annotations kept",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"prod","labels":{"app":"other"},"annotations":{"team":"a"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				"team":                         "a",
				resolve.AnnotationSidecar:      "prod/default",
				resolve.AnnotationSidecarScope: "namespace",
			},
		},
		{
			name:         "generateName pod without namespace takes the request's",
			reqNamespace: "dev",
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","labels":{"app":"ratings"}},"spec":{}}`,
			wantAllowed:  true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "istio-system/default",
				resolve.AnnotationSidecarScope: "mesh",
			},
		},
		{
			name:        "forged annotations are overwritten and removed",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"},"annotations":{"sidecar-webhook.io/sidecar":"prod/evil","sidecar-webhook.io/sidecar-scope":"mesh","sidecar-webhook.io/sidecar-conflict":"x,y"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name:        "already correct: no patch",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"},"annotations":{"sidecar-webhook.io/sidecar":"prod/ratings","sidecar-webhook.io/sidecar-scope":"workload"}},"spec":{}}`,
			wantAllowed: true,
			wantNoPatch: true,
		},
		{
			name:        "conflict: annotated and warned",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings","version":"v1"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:         "prod/ratings",
				resolve.AnnotationSidecarScope:    "workload",
				resolve.AnnotationSidecarConflict: "prod/b-v1,prod/ratings",
			},
			wantWarnings: []string{"sidecar-webhook: more than one Sidecar applies to this pod (prod/b-v1, prod/ratings); Istio's choice is undefined and in practice it applies prod/ratings, the oldest"},
		},
		{
			name:          "conflict denied when asked to",
			deny:          true,
			body:          `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings","version":"v1"}},"spec":{}}`,
			wantCode:      http.StatusForbidden,
			wantNoPatch:   true,
			wantMsgSubstr: []string{"sidecar-webhook:", "prod/b-v1", "prod/ratings"},
		},
		{
			name:        "deny mode admits pods without conflict",
			deny:        true,
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name:        "namespace without Sidecars: mesh default replaces a forged name",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"staging","annotations":{"sidecar-webhook.io/sidecar":"prod/evil"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "istio-system/default",
				resolve.AnnotationSidecarScope: "mesh",
			},
		},
		{
			name:         "view not ready: admitted with a warning, forged keys dropped",
			notReady:     true,
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","annotations":{"sidecar-webhook.io/sidecar-scope":"workload","keep":"me"}},"spec":{}}`,
			wantAllowed:  true,
			wantAnno:     map[string]string{"keep": "me"},
			wantWarnings: []string{WarningViewNotReady},
		},
		{
			name:         "view not ready and nothing to drop: no patch",
			notReady:     true,
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod"},"spec":{}}`,
			wantAllowed:  true,
			wantNoPatch:  true,
			wantWarnings: []string{WarningViewNotReady},
		},
		{
			name:        "fields unknown to this build survive the patch",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"}},"spec":{"futureField":{"n":12345678901234567890}}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name:         "namespace without injection: no proxy, forged keys removed",
			reqNamespace: "plain",
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"plain","labels":{"app":"ratings"},"annotations":{"sidecar-webhook.io/sidecar-scope":"mesh","keep":"me"}},"spec":{}}`,
			wantAllowed:  true,
			wantAnno:     map[string]string{"keep": "me"},
		},
		{
			name:         "pod label sidecar.istio.io/inject=true in an unlabelled namespace: injected",
			reqNamespace: "plain",
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"plain","labels":{"sidecar.istio.io/inject":"true"}},"spec":{}}`,
			wantAllowed:  true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "istio-system/default",
				resolve.AnnotationSidecarScope: "mesh",
			},
		},
		{
			name:        "hostNetwork pod: never injected",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"}},"spec":{"hostNetwork":true}}`,
			wantAllowed: true,
			wantNoPatch: true,
		},
		{
			name:        "annotation sidecar.istio.io/inject=false: not injected",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings"},"annotations":{"sidecar.istio.io/inject":"false"}},"spec":{}}`,
			wantAllowed: true,
			wantNoPatch: true,
		},
		{
			name:        "label wins over annotation",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","labels":{"app":"ratings","sidecar.istio.io/inject":"true"},"annotations":{"sidecar.istio.io/inject":"false"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				"sidecar.istio.io/inject":      "false",
				resolve.AnnotationSidecar:      "prod/ratings",
				resolve.AnnotationSidecarScope: "workload",
			},
		},
		{
			name:        "gateway template: scope gateway, no Sidecar",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"gw","namespace":"prod","labels":{"app":"ratings"},"annotations":{"inject.istio.io/templates":"gateway"}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				"inject.istio.io/templates":    "gateway",
				resolve.AnnotationSidecarScope: "gateway",
			},
		},
		{
			name:         "waypoint deployed by istiod: scope gateway",
			reqNamespace: "plain",
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"wp","namespace":"plain","labels":{"gateway.istio.io/managed":"istio.io-mesh-controller","sidecar.istio.io/inject":"false"}},"spec":{}}`,
			wantAllowed:  true,
			wantAnno:     map[string]string{resolve.AnnotationSidecarScope: "gateway"},
		},
		{
			name:         "injected pod (status annotation) in an unlabelled namespace: proof of a proxy",
			reqNamespace: "plain",
			body:         `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"plain","annotations":{"sidecar.istio.io/status":"{}"}},"spec":{}}`,
			wantAllowed:  true,
			wantAnno: map[string]string{
				"sidecar.istio.io/status":      "{}",
				resolve.AnnotationSidecar:      "istio-system/default",
				resolve.AnnotationSidecarScope: "mesh",
			},
		},
		{
			name:         "no metadata at all: nothing to annotate in a namespace without injection",
			reqNamespace: "plain",
			body:         `{"apiVersion":"v1","kind":"Pod","spec":{}}`,
			wantAllowed:  true,
			wantNoPatch:  true,
		},
		{
			name:        "no metadata, injected namespace: metadata added",
			body:        `{"apiVersion":"v1","kind":"Pod","spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/default",
				resolve.AnnotationSidecarScope: "namespace",
			},
		},
		{
			name:        "annotations null",
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","namespace":"prod","annotations":null},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/default",
				resolve.AnnotationSidecarScope: "namespace",
			},
		},
		{
			name:        "field names match exactly: a Metadata member is not metadata",
			body:        `{"apiVersion":"v1","kind":"Pod","Metadata":{"labels":{"app":["x"]}},"spec":{}}`,
			wantAllowed: true,
			wantAnno: map[string]string{
				resolve.AnnotationSidecar:      "prod/default",
				resolve.AnnotationSidecarScope: "namespace",
			},
		},
		{
			name:        "updates are not touched",
			op:          admissionv1.Update,
			body:        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","annotations":{"sidecar-webhook.io/sidecar":"forged"}},"spec":{}}`,
			wantAllowed: true,
			wantNoPatch: true,
		},
		{
			name:     "unreadable body",
			body:     `{"metadata":`,
			wantCode: http.StatusBadRequest,
		},
		{
			name:     "wrongly typed body",
			body:     `{"metadata":{"labels":["a"]}}`,
			wantCode: http.StatusBadRequest,
		},
		{
			name:     "empty body",
			body:     ``,
			wantCode: http.StatusBadRequest,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &PodAnnotator{Views: readyView(podView()), DenyConflicts: tc.deny}
			if tc.notReady {
				a.Views = func(context.Context) (clusterview.View, error) { return nil, errors.New("caches not synced") }
			}
			op := tc.op
			if op == "" {
				op = admissionv1.Create
			}
			ns := tc.reqNamespace
			if ns == "" {
				ns = "prod"
			}
			req := podRequest(op, ns, tc.body)
			resp := a.Handle(context.Background(), req)

			if tc.wantCode != 0 {
				if resp.Allowed || resp.Result == nil || resp.Result.Code != tc.wantCode {
					t.Fatalf("response = allowed %v, result %+v; want code %d", resp.Allowed, resp.Result, tc.wantCode)
				}
				if tc.wantCode == http.StatusForbidden && resp.Result.Reason != metav1.StatusReasonForbidden {
					t.Errorf("reason = %q, want Forbidden", resp.Result.Reason)
				}
				for _, s := range tc.wantMsgSubstr {
					if !strings.Contains(resp.Result.Message, s) {
						t.Errorf("message %q does not contain %q", resp.Result.Message, s)
					}
				}
				return
			}
			if resp.Allowed != tc.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			if diff := cmp.Diff(tc.wantWarnings, resp.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if tc.wantNoPatch {
				if len(resp.Patches) != 0 {
					t.Errorf("patches = %v, want none", resp.Patches)
				}
				return
			}
			obj := applied(t, req.Object.Raw, resp)
			if diff := cmp.Diff(tc.wantAnno, annotationsOf(obj)); diff != "" {
				t.Errorf("annotations after patch (-want +got):\n%s", diff)
			}
			// Only annotations change (metadata is added when absent).
			for _, p := range resp.Patches {
				if !strings.HasPrefix(p.Path, "/metadata/annotations") && (p.Path != "/metadata" || p.Operation != "add") {
					t.Errorf("patch touches %s", p.Path)
				}
			}
		})
	}
}

func TestPodAnnotatorNoSidecar(t *testing.T) {
	v := clusterview.NewMemory("istio-system")
	v.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{mesh.LabelInjection: "enabled"}}})
	a := &PodAnnotator{Views: readyView(v)}
	req := podRequest(admissionv1.Create, "prod", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"r","namespace":"prod","annotations":{"sidecar-webhook.io/sidecar":"prod/evil","sidecar-webhook.io/sidecar-conflict":"a,b"}},"spec":{}}`)
	resp := a.Handle(context.Background(), req)
	if !resp.Allowed {
		t.Fatalf("not allowed: %+v", resp.Result)
	}
	want := map[string]string{resolve.AnnotationSidecarScope: "none"}
	if diff := cmp.Diff(want, annotationsOf(applied(t, req.Object.Raw, resp))); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
}

func TestPodAnnotatorIgnoresOtherResources(t *testing.T) {
	a := &PodAnnotator{Views: readyView(podView())}
	for _, req := range []admission.Request{
		{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "configmaps"}, Object: runtime.RawExtension{Raw: []byte(`{}`)}}},
		{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Create, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, SubResource: "binding", Object: runtime.RawExtension{Raw: []byte(`{}`)}}},
		{AdmissionRequest: admissionv1.AdmissionRequest{Operation: admissionv1.Delete, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}}},
	} {
		resp := a.Handle(context.Background(), req)
		if !resp.Allowed || len(resp.Patches) != 0 {
			t.Errorf("%s %s/%s: allowed %v patches %v, want allowed without patch", req.Operation, req.Resource.Resource, req.SubResource, resp.Allowed, resp.Patches)
		}
	}
}
