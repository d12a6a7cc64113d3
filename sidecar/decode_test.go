package sidecar_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// referenceDir holds the five Sidecar examples of the Istio reference; the
// validation package owns them and every other package reads them from there.
const referenceDir = "../validation/testdata/reference"

// errAtT is what the tests compare: the error type and the field path. The
// detail text is checked in a few golden cases only.
type errAtT struct {
	Type  field.ErrorType
	Field string
}

func errAt(t field.ErrorType, path string) errAtT { return errAtT{Type: t, Field: path} }

func errsAt(errs field.ErrorList) []errAtT {
	var out []errAtT
	for _, e := range errs {
		out = append(out, errAtT{Type: e.Type, Field: e.Field})
	}
	return out
}

// referenceJSON returns the reference examples in JSON form, by file name.
func referenceJSON(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(referenceDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("want the 5 reference examples in %s, found %d", referenceDir, len(files))
	}
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = js
	}
	return out
}

// withSpec wraps a spec (JSON text) in a complete Sidecar object.
func withSpec(spec string) string {
	return `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"s","namespace":"ns"},"spec":` + spec + `}`
}

func TestDecodeErrors(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 200)
	cases := []struct {
		name string
		raw  string
		want []errAtT
	}{
		{name: "malformed JSON", raw: `{"spec":`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "empty input", raw: ``, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "trailing data", raw: withSpec(`{"egress":[{"hosts":["./*"]}]}`) + `{}`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "trailing closing brace", raw: withSpec(`{"egress":[{"hosts":["./*"]}]}`) + `}`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "trailing closing bracket", raw: withSpec(`{"egress":[{"hosts":["./*"]}]}`) + "\n]", want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "trailing garbage", raw: withSpec(`{"egress":[{"hosts":["./*"]}]}`) + `x`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "top level is an array", raw: `[]`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "top level is a string", raw: `"Sidecar"`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{name: "top level is null", raw: `null`, want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")}},
		{
			name: "unknown top-level field",
			raw:  `{"kind":"Sidecar","specs":{},"spec":{"egress":[{"hosts":["./*"]}]}}`,
			want: []errAtT{errAt(field.ErrorTypeForbidden, "specs")},
		},
		{
			name: "unknown spec field",
			raw:  withSpec(`{"egress":[{"hostz":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.egress[0].hostz")},
		},
		{
			name: "proto field name instead of JSON name",
			raw:  withSpec(`{"workload_selector":{"labels":{"app":"a"}}}`),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.workload_selector")},
		},
		{
			name: "every unknown field is reported, sorted",
			raw:  withSpec(`{"zeta":1,"egress":[{"hosts":["./*"],"b":1,"a":2}]}`),
			want: []errAtT{
				errAt(field.ErrorTypeForbidden, "spec.egress[0].a"),
				errAt(field.ErrorTypeForbidden, "spec.egress[0].b"),
				errAt(field.ErrorTypeForbidden, "spec.zeta"),
			},
		},
		{
			name: "string for port.number",
			raw:  withSpec(`{"egress":[{"port":{"number":"80"},"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name: "fraction for port.number",
			raw:  withSpec(`{"egress":[{"port":{"number":80.5},"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name: "object for hosts",
			raw:  withSpec(`{"egress":[{"hosts":{"a":"./*"}}]}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.egress[0].hosts")},
		},
		{
			name: "number for bind",
			raw:  withSpec(`{"egress":[{"bind":127,"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.egress[0].bind")},
		},
		{
			name: "bool for a string",
			raw:  withSpec(`{"egress":[{"hosts":[true]}]}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.egress[0].hosts[0]")},
		},
		{
			name: "string for a bool",
			raw:  withSpec(`{"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"},"inboundConnectionPool":{"http":{"useClientProtocol":"yes"}}}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.inboundConnectionPool.http.useClientProtocol")},
		},
		{
			name: "array for a message",
			raw:  withSpec(`{"egress":[{"port":[80],"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.egress[0].port")},
		},
		{
			name: "number for a duration",
			raw:  withSpec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":5}}}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.inboundConnectionPool.tcp.connectTimeout")},
		},
		{
			name: "malformed duration is refused by protojson against the spec",
			raw:  withSpec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":"soon"}}}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec")},
		},
		{
			name: "map value of the wrong type",
			raw:  withSpec(`{"workloadSelector":{"labels":{"app":1}}}`),
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec.workloadSelector.labels[app]")},
		},
		{
			name: "null list item",
			raw:  withSpec(`{"egress":[{"hosts":["./*"]},null]}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[1]")},
		},
		{
			name: "unknown enum value",
			raw:  withSpec(`{"egress":[{"captureMode":"FOO","hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "spec.egress[0].captureMode")},
		},
		{
			name: "enum as a number",
			raw:  withSpec(`{"egress":[{"captureMode":2,"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "spec.egress[0].captureMode")},
		},
		{
			name: "enum in lower case",
			raw:  withSpec(`{"ingress":[{"captureMode":"none"}]}`),
			want: []errAtT{errAt(field.ErrorTypeNotSupported, "spec.ingress[0].captureMode")},
		},
		{
			name: "uint32 out of range",
			raw:  withSpec(`{"egress":[{"port":{"number":4294967296},"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name: "uint32 far out of range",
			raw:  withSpec(`{"egress":[{"port":{"number":18446744073709551616},"hosts":["./*"]}]}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].port.number")},
		},
		{
			name: "negative uint32",
			raw:  withSpec(`{"ingress":[{"port":{"number":-1}}]}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].port.number")},
		},
		{
			name: "int32 out of range",
			raw:  withSpec(`{"inboundConnectionPool":{"tcp":{"maxConnections":2147483648}}}`),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.inboundConnectionPool.tcp.maxConnections")},
		},
		{
			name: "missing spec",
			raw:  `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"s"}}`,
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec")},
		},
		{
			name: "null spec",
			raw:  `{"kind":"Sidecar","spec":null}`,
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec")},
		},
		{
			name: "spec is a string",
			raw:  `{"kind":"Sidecar","spec":"egress"}`,
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "spec")},
		},
		{
			name: "kind is not a string",
			raw:  `{"kind":7,"spec":{"egress":[{"hosts":["./*"]}]}}`,
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "kind")},
		},
		{
			name: "metadata with an unknown field",
			raw:  `{"kind":"Sidecar","metadata":{"name":"s","labelz":{}},"spec":{"egress":[{"hosts":["./*"]}]}}`,
			want: []errAtT{errAt(field.ErrorTypeInvalid, "metadata")},
		},
		{
			name: "metadata is an array",
			raw:  `{"kind":"Sidecar","metadata":[],"spec":{"egress":[{"hosts":["./*"]}]}}`,
			want: []errAtT{errAt(field.ErrorTypeTypeInvalid, "metadata")},
		},
		{
			name: "metadata and spec errors together",
			raw:  `{"metadata":{"name":1},"spec":{"egress":[{"hosts":"x"}]}}`,
			want: []errAtT{
				errAt(field.ErrorTypeInvalid, "metadata"),
				errAt(field.ErrorTypeTypeInvalid, "spec.egress[0].hosts"),
			},
		},
		{
			name: "deep nesting inside an unknown field is reported once",
			raw:  withSpec(`{"egress":[{"hosts":["./*"],"x":` + deep + `}]}`),
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.egress[0].x")},
		},
		{
			name: "nesting beyond the JSON decoder's limit",
			raw:  withSpec(strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000)),
			want: []errAtT{errAt(field.ErrorTypeInvalid, "<object>")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := sidecar.Decode([]byte(tc.raw))
			if diff := cmp.Diff(tc.want, errsAt(errs)); diff != "" {
				t.Errorf("errors (-want +got):\n%s\nall: %v", diff, errs)
			}
			if got != nil {
				t.Errorf("an object was returned along with errors: %v", got)
			}
		})
	}
}

// TestDecodeMessages pins the text of a few errors: what a kubectl user reads.
func TestDecodeMessages(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want string
	}{
		{
			name: "unknown field lists the known ones",
			raw:  withSpec(`{"egress":[{"hostz":["./*"]}]}`),
			want: `spec.egress[0].hostz: Forbidden: unknown field; known fields here: bind, captureMode, hosts, port`,
		},
		{
			name: "wrong JSON type",
			raw:  withSpec(`{"egress":[{"port":{"number":"80"},"hosts":["./*"]}]}`),
			want: `spec.egress[0].port.number: Invalid value: "80": must be a JSON integer, not string`,
		},
		{
			name: "out of range",
			raw:  withSpec(`{"egress":[{"port":{"number":4294967296},"hosts":["./*"]}]}`),
			want: `spec.egress[0].port.number: Invalid value: 4294967296: must be between 0 and 4294967295`,
		},
		{
			name: "unknown enum value",
			raw:  withSpec(`{"egress":[{"captureMode":"FOO","hosts":["./*"]}]}`),
			want: `spec.egress[0].captureMode: Unsupported value: "FOO": supported values: "DEFAULT", "IPTABLES", "NONE"`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := sidecar.Decode([]byte(tc.raw))
			if len(errs) != 1 {
				t.Fatalf("want one error, got %v", errs)
			}
			if got := errs[0].Error(); got != tc.want {
				t.Errorf("message:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	cases := []struct {
		name string
		raw  string
		want func(*networking.Sidecar) any
		exp  any
	}{
		{
			name: "uint32 maximum is accepted",
			raw:  withSpec(`{"egress":[{"port":{"number":4294967295},"hosts":["./*"]}]}`),
			want: func(s *networking.Sidecar) any { return s.GetEgress()[0].GetPort().GetNumber() },
			exp:  uint32(4294967295),
		},
		{
			name: "zero port",
			raw:  withSpec(`{"egress":[{"port":{"number":0},"bind":"unix:///a.sock","hosts":["./*"]}]}`),
			want: func(s *networking.Sidecar) any { return s.GetEgress()[0].GetBind() },
			exp:  "unix:///a.sock",
		},
		{
			name: "enum",
			raw:  withSpec(`{"ingress":[{"captureMode":"NONE"}]}`),
			want: func(s *networking.Sidecar) any { return s.GetIngress()[0].GetCaptureMode() },
			exp:  networking.CaptureMode_NONE,
		},
		{
			name: "trailing whitespace",
			raw:  withSpec(`{"ingress":[{"captureMode":"IPTABLES"}]}`) + " \n\t\r\n",
			want: func(s *networking.Sidecar) any { return s.GetIngress()[0].GetCaptureMode() },
			exp:  networking.CaptureMode_IPTABLES,
		},
		{
			name: "null fields are absent",
			raw:  withSpec(`{"egress":[{"port":null,"bind":null,"hosts":["./*"]}],"ingress":null}`),
			want: func(s *networking.Sidecar) any {
				return []any{s.GetEgress()[0].GetPort() == nil, s.GetEgress()[0].GetBind(), len(s.GetIngress())}
			},
			exp: []any{true, "", 0},
		},
		{
			name: "labels",
			raw:  withSpec(`{"workloadSelector":{"labels":{"app":"a","v":"1"}}}`),
			want: func(s *networking.Sidecar) any { return s.GetWorkloadSelector().GetLabels() },
			exp:  map[string]string{"app": "a", "v": "1"},
		},
		{
			name: "duration",
			raw:  withSpec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1.5s"}}}`),
			want: func(s *networking.Sidecar) any {
				return s.GetInboundConnectionPool().GetTcp().GetConnectTimeout().AsDuration().String()
			},
			exp: "1.5s",
		},
		// What encoding/json forgives and protojson refuses: Decode
		// answers as encoding/json reads the document.
		{
			name: "a repeated key: the last one counts",
			raw:  withSpec(`{"workloadSelector":{"labels":{"app":"a"}},"workloadSelector":{"labels":{"app":"b","v":"1","v":"2"}}}`),
			want: func(s *networking.Sidecar) any { return s.GetWorkloadSelector().GetLabels() },
			exp:  map[string]string{"app": "b", "v": "2"},
		},
		{
			name: "a repeated spec: the last one counts",
			raw:  withSpec(`{"egress":[{"hosts":["a/*"]}]},"spec":{"egress":[{"hosts":["b/*"]}]}`),
			want: func(s *networking.Sidecar) any { return s.GetEgress()[0].GetHosts() },
			exp:  []string{"b/*"},
		},
		{
			name: "invalid UTF-8 is replaced",
			raw:  withSpec("{\"egress\":[{\"hosts\":[\"./a\xffb\"]}]}"),
			want: func(s *networking.Sidecar) any { return s.GetEgress()[0].GetHosts() },
			exp:  []string{"./a\uFFFDb"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := sidecar.Decode([]byte(tc.raw))
			if len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if diff := cmp.Diff(tc.exp, tc.want(&got.Spec)); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeReferenceExamples(t *testing.T) {
	type listener struct {
		Port  uint32
		Bind  string
		Hosts []string
	}
	type summary struct {
		APIVersion, Kind, Namespace, Name string
		Selector                          map[string]string
		Ingress                           []listener
		Egress                            []listener
	}
	want := map[string]summary{
		"global-default.yaml": {
			APIVersion: "networking.istio.io/v1alpha3", Kind: "Sidecar", Namespace: "istio-config", Name: "default",
			Egress: []listener{{Hosts: []string{"./*", "istio-system/*"}}},
		},
		"prod-us1-default.yaml": {
			APIVersion: "networking.istio.io/v1alpha3", Kind: "Sidecar", Namespace: "prod-us1", Name: "default",
			Egress: []listener{{Hosts: []string{"prod-us1/*", "prod-apis/*", "istio-system/*"}}},
		},
		"no-ip-tables.yaml": {
			APIVersion: "networking.istio.io/v1alpha3", Kind: "Sidecar", Namespace: "prod-us1", Name: "no-ip-tables",
			Selector: map[string]string{"app": "productpage"},
			Ingress:  []listener{{Port: 9080}},
			Egress:   []listener{{Port: 3306, Bind: "127.0.0.1", Hosts: []string{"*/mysql.foo.com"}}},
		},
		"partial-ip-tables.yaml": {
			APIVersion: "networking.istio.io/v1alpha3", Kind: "Sidecar", Namespace: "prod-us1", Name: "partial-ip-tables",
			Selector: map[string]string{"app": "productpage"},
			Ingress:  []listener{{Port: 80, Bind: "172.16.1.32"}},
			Egress:   []listener{{Hosts: []string{"*/*"}}},
		},
		"ratings.yaml": {
			APIVersion: "networking.istio.io/v1alpha3", Kind: "Sidecar", Namespace: "prod-us1", Name: "ratings",
			Selector: map[string]string{"app": "ratings"},
			Ingress:  []listener{{Port: 9080}, {Port: 9443}},
			Egress:   []listener{{Port: 9080, Hosts: []string{"prod-us1/*"}}, {Hosts: []string{"istio-system/*"}}},
		},
	}
	for name, js := range referenceJSON(t) {
		t.Run(name, func(t *testing.T) {
			s, errs := sidecar.Decode(js)
			if len(errs) > 0 {
				t.Fatalf("decode: %v", errs)
			}
			got := summary{
				APIVersion: s.APIVersion, Kind: s.Kind, Namespace: s.Namespace, Name: s.Name,
				Selector: sidecar.Selector(s),
			}
			for _, l := range s.Spec.GetIngress() {
				got.Ingress = append(got.Ingress, listener{Port: l.GetPort().GetNumber(), Bind: l.GetBind()})
			}
			for _, l := range s.Spec.GetEgress() {
				got.Egress = append(got.Egress, listener{Port: l.GetPort().GetNumber(), Bind: l.GetBind(), Hosts: l.GetHosts()})
			}
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsServed(t *testing.T) {
	cases := []struct {
		group, version, kind, resource string
		want                           bool
	}{
		{"networking.istio.io", "v1alpha3", "Sidecar", "sidecars", true},
		{"networking.istio.io", "v1beta1", "Sidecar", "sidecars", true},
		{"networking.istio.io", "v1", "Sidecar", "sidecars", true},
		{"networking.istio.io", "v2", "Sidecar", "sidecars", false},
		{"networking.istio.io", "", "Sidecar", "sidecars", false},
		{"networking.istio.io", "v1", "Gateway", "gateways", false},
		{"networking.istio.io", "v1", "sidecar", "Sidecars", false},
		{"security.istio.io", "v1", "Sidecar", "sidecars", false},
		{"", "v1", "Pod", "pods", false},
		{"", "", "", "", false},
	}
	for _, tc := range cases {
		gvk := schema.GroupVersionKind{Group: tc.group, Version: tc.version, Kind: tc.kind}
		if got := sidecar.IsServedGVK(gvk); got != tc.want {
			t.Errorf("IsServedGVK(%v) = %v, want %v", gvk, got, tc.want)
		}
		gvr := schema.GroupVersionResource{Group: tc.group, Version: tc.version, Resource: tc.resource}
		if got := sidecar.IsServedGVR(gvr); got != tc.want {
			t.Errorf("IsServedGVR(%v) = %v, want %v", gvr, got, tc.want)
		}
	}
}

func TestSelectorAndHasSelector(t *testing.T) {
	cases := []struct {
		name         string
		spec         string
		wantSelector map[string]string
		wantHas      bool
	}{
		{name: "namespace-wide", spec: `{"egress":[{"hosts":["./*"]}]}`, wantSelector: nil, wantHas: false},
		{name: "empty selector", spec: `{"workloadSelector":{},"egress":[{"hosts":["./*"]}]}`, wantSelector: map[string]string{}, wantHas: true},
		{name: "labels", spec: `{"workloadSelector":{"labels":{"app":"a"}}}`, wantSelector: map[string]string{"app": "a"}, wantHas: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, errs := sidecar.Decode([]byte(withSpec(tc.spec)))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			// nil and empty differ here on purpose: nil is namespace-wide.
			if diff := cmp.Diff(tc.wantSelector, sidecar.Selector(s)); diff != "" {
				t.Errorf("Selector (-want +got):\n%s", diff)
			}
			if got := sidecar.HasSelector(s); got != tc.wantHas {
				t.Errorf("HasSelector = %v, want %v", got, tc.wantHas)
			}
		})
	}
}

func TestSameSelector(t *testing.T) {
	const (
		wide      = `{"egress":[{"hosts":["./*"]}]}`
		empty     = `{"workloadSelector":{},"egress":[{"hosts":["./*"]}]}`
		noLabels  = `{"workloadSelector":{"labels":{}},"egress":[{"hosts":["./*"]}]}`
		app       = `{"workloadSelector":{"labels":{"app":"a"}},"egress":[{"hosts":["./*"]}]}`
		appEdited = `{"workloadSelector":{"labels":{"app":"a"}},"ingress":[{"port":{"number":80},"defaultEndpoint":"127.0.0.1:80"}]}`
		appV1     = `{"workloadSelector":{"labels":{"app":"a","v":"1"}},"egress":[{"hosts":["./*"]}]}`
		other     = `{"workloadSelector":{"labels":{"app":"b"}},"egress":[{"hosts":["./*"]}]}`
	)
	cases := []struct {
		name string
		a, b string
		want bool
	}{
		{name: "both namespace-wide", a: wide, b: wide, want: true},
		{name: "same labels, other listeners", a: app, b: appEdited, want: true},
		{name: "empty selector and selector without labels are the same", a: empty, b: noLabels, want: true},
		{name: "an empty selector is a selector", a: wide, b: empty, want: false},
		{name: "selector added", a: wide, b: app, want: false},
		{name: "selector dropped", a: app, b: wide, want: false},
		{name: "label added", a: app, b: appV1, want: false},
		{name: "label value changed", a: app, b: other, want: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, errs := sidecar.Decode([]byte(withSpec(tc.a)))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			b, errs := sidecar.Decode([]byte(withSpec(tc.b)))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := sidecar.SameSelector(a, b); got != tc.want {
				t.Errorf("SameSelector = %v, want %v", got, tc.want)
			}
			if got := sidecar.SameSelector(b, a); got != tc.want {
				t.Errorf("SameSelector (swapped) = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsUnixAddress(t *testing.T) {
	got := map[string]bool{}
	for _, a := range []string{"unix:///a.sock", "unix://@x", "127.0.0.1", "", "UNIX:///a", "unix:/a"} {
		got[a] = sidecar.IsUnixAddress(a)
	}
	want := map[string]bool{"unix:///a.sock": true, "unix://@x": true, "127.0.0.1": false, "": false, "UNIX:///a": false, "unix:/a": false}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("IsUnixAddress (-want +got):\n%s", diff)
	}
}
