package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

const referenceDir = "../validation/testdata/reference"

// referenceExample returns one reference example in JSON form.
func referenceExample(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(referenceDir, name))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// sidecarJSON is a complete Sidecar in namespace prod with the given spec.
func sidecarJSON(name, spec string) []byte {
	return []byte(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"` + name + `","namespace":"prod"},"spec":` + spec + `}`)
}

// sidecarReq is an admission request for a Sidecar as the API server sends it.
func sidecarReq(op admissionv1.Operation, version string, raw []byte) admission.Request {
	var name string
	var meta struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	if json.Unmarshal(raw, &meta) == nil {
		name = meta.Metadata.Name
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "uid-1",
		Kind:      metav1.GroupVersionKind{Group: "networking.istio.io", Version: version, Kind: "Sidecar"},
		Resource:  metav1.GroupVersionResource{Group: "networking.istio.io", Version: version, Resource: "sidecars"},
		Operation: op,
		Namespace: "prod",
		Name:      name,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

// outcome is what the handler tests compare of a response.
type outcome struct {
	Allowed bool
	Code    int32
	Reason  metav1.StatusReason
}

func outcomeOf(resp admission.Response) outcome {
	o := outcome{Allowed: resp.Allowed}
	if resp.Result != nil {
		o.Code = resp.Result.Code
		o.Reason = resp.Result.Reason
	}
	return o
}

var (
	allowed    = outcome{Allowed: true, Code: http.StatusOK}
	invalid    = outcome{Code: http.StatusUnprocessableEntity, Reason: metav1.StatusReasonInvalid}
	badRequest = outcome{Code: http.StatusBadRequest}
)

// causePaths are the field paths a denial names: from Details.Causes when
// present, else from the message, which names one error after "is invalid: "
// or several, one per "- " line.
func causePaths(resp admission.Response) []string {
	if resp.Result == nil {
		return nil
	}
	var out []string
	if d := resp.Result.Details; d != nil && len(d.Causes) > 0 {
		for _, c := range d.Causes {
			out = append(out, c.Field)
		}
		return out
	}
	msg := resp.Result.Message
	if _, one, ok := strings.Cut(msg, " is invalid: "); ok && !strings.HasPrefix(one, "[") {
		path, _, _ := strings.Cut(one, ": ")
		return []string{path}
	}
	for _, line := range strings.Split(msg, "\n")[1:] {
		path, _, _ := strings.Cut(strings.TrimPrefix(line, "- "), ": ")
		out = append(out, path)
	}
	return out
}

func TestSidecarValidator(t *testing.T) {
	cases := []struct {
		name         string
		req          admission.Request
		want         outcome
		wantPaths    []string
		wantMessage  string // prefix
		wantWarnings []string
	}{
		{
			name: "valid reference example",
			req:  sidecarReq(admissionv1.Create, "v1alpha3", referenceExample(t, "ratings.yaml")),
			want: allowed,
		},
		{
			name: "valid reference example, update",
			req:  sidecarReq(admissionv1.Update, "v1alpha3", referenceExample(t, "no-ip-tables.yaml")),
			want: allowed,
		},
		{name: "served version v1alpha3", req: sidecarReq(admissionv1.Create, "v1alpha3", referenceExample(t, "global-default.yaml")), want: allowed},
		{name: "served version v1beta1", req: sidecarReq(admissionv1.Create, "v1beta1", referenceExample(t, "global-default.yaml")), want: allowed},
		{name: "served version v1", req: sidecarReq(admissionv1.Create, "v1", referenceExample(t, "global-default.yaml")), want: allowed},
		{name: "unserved version v2", req: sidecarReq(admissionv1.Create, "v2", referenceExample(t, "global-default.yaml")), want: badRequest},
		{
			name:        "invalid Sidecar",
			req:         sidecarReq(admissionv1.Create, "v1", sidecarJSON("bad", `{"egress":[{"port":{"number":70000},"hosts":["./*","nope"]}]}`)),
			want:        invalid,
			wantPaths:   []string{"spec.egress[0].port.number", "spec.egress[0].hosts[1]"},
			wantMessage: `Sidecar.networking.istio.io "bad" is invalid`,
		},
		{
			name:        "malformed object",
			req:         sidecarReq(admissionv1.Create, "v1", sidecarJSON("bad", `{"egress":[{"hostz":["./*"]}]}`)),
			want:        invalid,
			wantPaths:   []string{"spec.egress[0].hostz"},
			wantMessage: `Sidecar.networking.istio.io "bad" is invalid: spec.egress[0].hostz: Forbidden: [SW0002] unknown field`,
		},
		{
			name:        "object that is not JSON",
			req:         sidecarReq(admissionv1.Create, "v1", []byte(`{"spec":`)),
			want:        invalid,
			wantMessage: `Sidecar.networking.istio.io "<generated>" is invalid: `,
		},
		{
			name: "warnings on an allowed Sidecar",
			req:  sidecarReq(admissionv1.Create, "v1", sidecarJSON("default", `{"egress":[{"hosts":["./*","./*"]}]}`)),
			want: allowed,
			wantWarnings: []string{
				`spec.egress[0].hosts[1]: [SW0406] duplicated egress host "./*"`,
			},
		},
		{
			name: "delete is allowed without an object",
			req: func() admission.Request {
				r := sidecarReq(admissionv1.Delete, "v1", nil)
				r.Name = "default"
				return r
			}(),
			want: allowed,
		},
		{
			name: "delete of an unserved resource is refused",
			req: func() admission.Request {
				r := sidecarReq(admissionv1.Delete, "v1", nil)
				r.Resource.Resource = "pods"
				return r
			}(),
			want: badRequest,
		},
		{
			name: "wrong resource",
			req: func() admission.Request {
				r := sidecarReq(admissionv1.Create, "v1", []byte(`{"kind":"Pod"}`))
				r.Resource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
				return r
			}(),
			want: badRequest,
		},
		{
			name: "missing object",
			req:  sidecarReq(admissionv1.Create, "v1", nil),
			want: badRequest,
		},
		{
			name: "unknown operation",
			req:  sidecarReq(admissionv1.Operation("PATCH"), "v1", referenceExample(t, "global-default.yaml")),
			want: badRequest,
		},
		{
			name: "empty request",
			req:  admission.Request{},
			want: badRequest,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := (&webhook.SidecarValidator{}).Handle(context.Background(), tc.req)
			if diff := cmp.Diff(tc.want, outcomeOf(resp)); diff != "" {
				t.Errorf("outcome (-want +got):\n%s\nresult: %+v", diff, resp.Result)
			}
			if tc.wantPaths != nil {
				if diff := cmp.Diff(tc.wantPaths, causePaths(resp)); diff != "" {
					t.Errorf("field paths (-want +got):\n%s\nmessage: %s", diff, resp.Result.Message)
				}
			}
			if tc.wantMessage != "" && !strings.HasPrefix(resp.Result.Message, tc.wantMessage) {
				t.Errorf("message %q does not start with %q", resp.Result.Message, tc.wantMessage)
			}
			if diff := cmp.Diff(tc.wantWarnings, resp.Warnings, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if len(resp.Patches) > 0 {
				t.Errorf("the validator must not patch: %v", resp.Patches)
			}
		})
	}
}

// TestSidecarValidatorDenialGolden pins one whole denial, as kubectl shows it
// after the API server's prefix.
func TestSidecarValidatorDenialGolden(t *testing.T) {
	resp := (&webhook.SidecarValidator{}).Handle(context.Background(),
		sidecarReq(admissionv1.Create, "v1", sidecarJSON("bad", `{"egress":[{"port":{"number":70000},"hosts":["./*"]}]}`)))
	want := `Sidecar.networking.istio.io "bad" is invalid: spec.egress[0].port.number: Invalid value: 70000: [SW0201] must be a port number between 1 and 65535`
	if resp.Result == nil || resp.Result.Message != want {
		t.Errorf("result %+v\nwant message %s", resp.Result, want)
	}
	if resp.Result != nil && resp.Result.Status != metav1.StatusFailure {
		t.Errorf("status %q, want Failure", resp.Result.Status)
	}
}

func TestSidecarValidatorEnforcementWarn(t *testing.T) {
	v := &webhook.SidecarValidator{Options: validation.Options{Enforcement: validation.EnforcementWarn}}
	resp := v.Handle(context.Background(), sidecarReq(admissionv1.Create, "v1", sidecarJSON("bad", `{"egress":[{"port":{"number":70000},"hosts":["./*"]}]}`)))
	if !resp.Allowed {
		t.Fatalf("warn mode must admit a rule violation, got %+v", resp.Result)
	}
	want := []string{"[SW0201] would be denied (enforcement=warn): spec.egress[0].port.number: Invalid value: 70000: must be a port number between 1 and 65535"}
	if diff := cmp.Diff(want, resp.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestSidecarValidatorLimitsWarnings(t *testing.T) {
	hosts := []string{`"./*"`}
	for range 40 {
		hosts = append(hosts, `"./*"`)
	}
	resp := (&webhook.SidecarValidator{}).Handle(context.Background(),
		sidecarReq(admissionv1.Create, "v1", sidecarJSON("default", `{"egress":[{"hosts":[`+strings.Join(hosts, ",")+`]}]}`)))
	if !resp.Allowed {
		t.Fatalf("not allowed: %+v", resp.Result)
	}
	if len(resp.Warnings) != webhook.MaxReportedWarnings+1 {
		t.Fatalf("got %d warnings, want %d", len(resp.Warnings), webhook.MaxReportedWarnings+1)
	}
	if last := resp.Warnings[len(resp.Warnings)-1]; last != "and 15 more warnings not shown" {
		t.Errorf("last warning %q", last)
	}
}

// patchOp is one JSON patch operation as the API server reads it.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

func patchesOf(t *testing.T, resp admission.Response) []patchOp {
	t.Helper()
	b, err := json.Marshal(resp.Patches)
	if err != nil {
		t.Fatal(err)
	}
	var ops []patchOp
	if err := json.Unmarshal(b, &ops); err != nil {
		t.Fatal(err)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Path < ops[j].Path })
	return ops
}

func TestSidecarDefaulter(t *testing.T) {
	cases := []struct {
		name        string
		req         admission.Request
		want        outcome
		wantPatches []patchOp
	}{
		{
			name: "egress NONE gets bind; missing capture modes get DEFAULT",
			req: sidecarReq(admissionv1.Create, "v1", sidecarJSON("s", `{"workloadSelector":{"labels":{"app":"a"}},`+
				`"ingress":[{"port":{"number":80},"defaultEndpoint":"127.0.0.1:8080"}],`+
				`"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]},{"hosts":["./*"]}]}`)),
			want: outcome{Allowed: true, Code: http.StatusOK},
			wantPatches: []patchOp{
				{Op: "add", Path: "/spec/egress/0/bind", Value: "127.0.0.1"},
				{Op: "add", Path: "/spec/egress/1/captureMode", Value: "DEFAULT"},
				{Op: "add", Path: "/spec/ingress/0/captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "empty bind is replaced",
			req:  sidecarReq(admissionv1.Update, "v1beta1", sidecarJSON("s", `{"egress":[{"captureMode":"NONE","bind":"","port":{"number":3306},"hosts":["./*"]}]}`)),
			want: outcome{Allowed: true, Code: http.StatusOK},
			wantPatches: []patchOp{
				{Op: "replace", Path: "/spec/egress/0/bind", Value: "127.0.0.1"},
			},
		},
		{
			name: "reference example with everything set",
			req:  sidecarReq(admissionv1.Create, "v1alpha3", referenceExample(t, "no-ip-tables.yaml")),
			want: outcome{Allowed: true, Code: http.StatusOK},
		},
		{
			name: "reference example with capture modes to default",
			req:  sidecarReq(admissionv1.Create, "v1alpha3", referenceExample(t, "ratings.yaml")),
			want: outcome{Allowed: true, Code: http.StatusOK},
			wantPatches: []patchOp{
				{Op: "add", Path: "/spec/egress/0/captureMode", Value: "DEFAULT"},
				{Op: "add", Path: "/spec/egress/1/captureMode", Value: "DEFAULT"},
				{Op: "add", Path: "/spec/ingress/0/captureMode", Value: "DEFAULT"},
				{Op: "add", Path: "/spec/ingress/1/captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "nothing to default",
			req:  sidecarReq(admissionv1.Create, "v1", sidecarJSON("s", `{"egress":[{"captureMode":"IPTABLES","hosts":["./*"]}]}`)),
			want: outcome{Allowed: true, Code: http.StatusOK},
		},
		{
			name: "an invalid but well-formed Sidecar is defaulted; the validator judges it",
			req:  sidecarReq(admissionv1.Create, "v1", sidecarJSON("s", `{"egress":[{"hosts":["nope"]}]}`)),
			want: outcome{Allowed: true, Code: http.StatusOK},
			wantPatches: []patchOp{
				{Op: "add", Path: "/spec/egress/0/captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "malformed object is denied",
			req:  sidecarReq(admissionv1.Create, "v1", sidecarJSON("s", `{"egress":[{"captureMode":"FOO","hosts":["./*"]}]}`)),
			want: invalid,
		},
		{name: "delete", req: sidecarReq(admissionv1.Delete, "v1", nil), want: allowed},
		{name: "wrong resource", req: func() admission.Request {
			r := sidecarReq(admissionv1.Create, "v1", []byte(`{}`))
			r.Resource.Group = "apps"
			return r
		}(), want: badRequest},
		{name: "missing object", req: sidecarReq(admissionv1.Create, "v1", nil), want: badRequest},
		{name: "unserved version", req: sidecarReq(admissionv1.Create, "v2", referenceExample(t, "ratings.yaml")), want: badRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := (&webhook.SidecarDefaulter{}).Handle(context.Background(), tc.req)
			got := outcomeOf(resp)
			if resp.Allowed && resp.Result == nil {
				got.Code = http.StatusOK // PatchResponseFromRaw leaves Result nil
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s\nresult: %+v", diff, resp.Result)
			}
			if diff := cmp.Diff(tc.wantPatches, patchesOf(t, resp), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
			if len(resp.Patches) > 0 && (resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch) {
				t.Errorf("patch type %v, want JSONPatch", resp.PatchType)
			}
		})
	}
}

// TestDefaulterThenValidator chains the two handlers as the API server does:
// every reference example, defaulted, must still be admitted.
func TestDefaulterThenValidator(t *testing.T) {
	for _, name := range []string{"global-default.yaml", "no-ip-tables.yaml", "partial-ip-tables.yaml", "prod-us1-default.yaml", "ratings.yaml"} {
		t.Run(name, func(t *testing.T) {
			raw := referenceExample(t, name)
			resp := (&webhook.SidecarDefaulter{}).Handle(context.Background(), sidecarReq(admissionv1.Create, "v1", raw))
			if !resp.Allowed {
				t.Fatalf("defaulter: %+v", resp.Result)
			}
			patched := applyPatches(t, raw, resp)
			v := (&webhook.SidecarValidator{}).Handle(context.Background(), sidecarReq(admissionv1.Create, "v1", patched))
			if !v.Allowed {
				t.Errorf("validator after defaulting: %+v", v.Result)
			}
		})
	}
}

// applyPatches applies the add/replace operations on object fields that the
// defaulter emits (the only kinds it produces).
func applyPatches(t *testing.T, raw []byte, resp admission.Response) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	for _, op := range patchesOf(t, resp) {
		if op.Op != "add" && op.Op != "replace" {
			t.Fatalf("unexpected patch operation %+v", op)
		}
		parts := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")
		var cur any = obj
		for _, p := range parts[:len(parts)-1] {
			switch c := cur.(type) {
			case map[string]any:
				cur = c[p]
			case []any:
				var i int
				if _, err := fmt.Sscan(p, &i); err != nil {
					t.Fatal(err)
				}
				cur = c[i]
			}
		}
		m, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("patch %+v does not target an object field", op)
		}
		m[parts[len(parts)-1]] = op.Value
	}
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
