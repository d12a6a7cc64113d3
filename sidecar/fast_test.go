package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The fast path (fast.go) must answer as decode does whenever it accepts,
// and never accept what decode refuses. sameDecode runs fastAgrees on every
// input of the differential tests of fill_test.go (hand-written cases, test
// data, fuzz corpus, random and test/benchdata Sidecars); the tests here add
// the inputs at the edges of what the fast path takes.

// fastAgrees reports, as a test error, a fast path that accepts what
// decode(raw, false) refuses or answers differently from it, and any
// difference between Decode and decode(raw, false). It returns whether the
// fast path accepted raw.
func fastAgrees(t *testing.T, name string, raw []byte) bool {
	t.Helper()
	fast, accepted := decodeFast(raw)
	want, wantErrs := decode(raw, false)
	if accepted {
		if len(wantErrs) > 0 {
			t.Errorf("%s: the fast path accepted what decode refuses with %v\ninput %q", name, wantErrs, raw)
		} else if !reflect.DeepEqual(fast, want) || !proto.Equal(&fast.Spec, &want.Spec) {
			t.Errorf("%s: the fast path and decode differ\nfast   %v\ndecode %v\ninput %q", name, fast, want, raw)
		}
	}
	got, gotErrs := Decode(raw)
	if !reflect.DeepEqual(gotErrs, wantErrs) {
		t.Errorf("%s: Decode's errors differ\n got %v\nwant %v\ninput %q", name, gotErrs, wantErrs, raw)
	}
	if !reflect.DeepEqual(got, want) || (got != nil && want != nil && !proto.Equal(&got.Spec, &want.Spec)) {
		t.Errorf("%s: Decode's objects differ\n got %v\nwant %v\ninput %q", name, got, want, raw)
	}
	return accepted
}

// FastAccepts is for the external tests (fill_generated_test.go).
func FastAccepts(raw []byte) bool {
	_, ok := decodeFast(raw)
	return ok
}

// lastApplied is the annotation kubectl apply writes: the object as JSON,
// inside a JSON string.
const lastApplied = `"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"networking.istio.io/v1\",\"kind\":\"Sidecar\",\"metadata\":{\"annotations\":{},\"name\":\"s\",\"namespace\":\"ns\"},\"spec\":{\"egress\":[{\"hosts\":[\"./*\"]}]}}\n"`

// withMetadata is a Sidecar object with the given metadata (JSON text).
func withMetadata(meta string) string {
	return `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":` + meta + `,"spec":{"egress":[{"hosts":["./*"]}]}}`
}

// fastCases are inputs at the edges of the fast path, with whether it
// must take them.
func fastCases() []struct {
	raw  string
	take bool
} {
	type fastCase = struct {
		raw  string
		take bool
	}
	spec := func(s string, take bool) fastCase { return fastCase{specObject(s), take} }
	meta := func(m string, take bool) fastCase { return fastCase{withMetadata(m), take} }
	return []fastCase{
		// taken
		spec(`{"egress":[{"hosts":["./*"]}]}`, true),
		spec(`{}`, true),
		spec(`{"egress":[],"ingress":[],"workloadSelector":{"labels":{}}}`, true),
		spec(`{"inboundConnectionPool":null,"outboundTrafficPolicy":null,"workloadSelector":null,"ingress":null,"egress":null}`, true),
		spec(`{"ingress":[{"port":{"number":80},"captureMode":null,"tls":{"insecureSkipVerify":null}}]}`, true),
		spec(`{"egress":[{"bind":"a\"b\\c\/d\b\f\n\r\t\u0000\u00e9\u2028\ud83d\ude00<&>","hosts":["\u002e/*","é😀"]}]}`, true),
		spec(`{"egress":[{"captureMode":"N\u004fNE","hosts":["./*"]}]}`, true),
		spec(`{"workloadSelector":{"labels":{"\u00e9":"v","":"","app":"a"}}}`, true),
		spec(`{"inboundConnectionPool":{"tcp":{"maxConnections":-0,"connectTimeout":"1\u0073","tcpKeepalive":{"probes":0,"time":"1.5s"}}}}`, true),
		spec(`{"inboundConnectionPool":{"tcp":{"maxConnections":-2147483648},"http":{"maxConcurrentStreams":2147483647}}}`, true),
		spec(`{"egress":[{"port":{"number":4294967295,"targetPort":0},"hosts":["./*"]}]}`, true),
		spec(`{"ingress":[{"tls":{"insecureSkipVerify":true,"mode":"MUTUAL","credentialNames":["a","b"]}}]}`, true),
		{" \t\r\n{ \"apiVersion\" : \"networking.istio.io/v1beta1\" ,\n \"kind\":\"Sidecar\", \"spec\" : { \"egress\" : [ { \"hosts\" : [ \"./*\" ] } ] } } \n\t", true},
		{`{"spec":{"egress":[{"hosts":["a"]}]}}`, true},
		{`{"spec":{},"kind":"Other","apiVersion":"v\u0031"}`, true},
		{`{"spec":{},"status":{"conditions":[{"type":"Ready","status":"True"}],"n":-1.5e3,"b":[true,false,null,"x",{}],"e":"\ud83d\ude00"}}`, true},
		{`{"spec":{},"status":null}`, false},
		meta(`{"name":"s","namespace":"ns","annotations":{`+lastApplied+`}}`, true),
		meta(`{"name":"s","namespace":"ns","labels":{"app":"a","b":"c"},"annotations":{"x":"y","z":"\u00e9\n"},"finalizers":["f"],"uid":"0d5c2f4e-0000-4000-8000-000000000000","resourceVersion":"12","generation":3,"creationTimestamp":"2026-01-01T00:00:00Z","generateName":"s-","selfLink":"/x"}`, true),
		meta(`{"name":"s","creationTimestamp":null,"labels":null,"deletionTimestamp":"2026-01-01T00:00:00+01:00","deletionGracePeriodSeconds":30}`, true),
		meta(`{"name":"s","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":"u","controller":true,"blockOwnerDeletion":false}]}`, true),
		meta(`{}`, true),
		// declined: duplicate keys at any depth
		{`{"spec":{},"spec":{}}`, false},
		{`{"kind":"Sidecar","kind":"Sidecar","spec":{}}`, false},
		spec(`{"egress":[{"hosts":["a"]}],"egress":[{"hosts":["b"]}]}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1s","connectTimeout":"2s"}}}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"tcpKeepalive":null,"tcpKeepalive":{"probes":1}}}}`, false),
		spec(`{"workloadSelector":{"labels":{"app":"a","app":"b"}}}`, false),
		spec(`{"workloadSelector":{"labels":{"app":"a","\u0061pp":"b"}}}`, false),
		meta(`{"name":"s","name":"t"}`, false),
		meta(`{"labels":{"a":"1","a":"2"}}`, false),
		meta(`{"annotations":{"a":"1","b":"2","a":"3"}}`, false),
		meta(`{"ownerReferences":[{"name":"a","name":"b"}]}`, false),
		{`{"spec":{},"status":{"a":{"b":1,"b":2}}}`, false},
		// declined: escapes in keys
		{`{"sp\u0065c":{"egress":[{"hosts":["a"]}]}}`, false},
		spec(`{"\u0065gress":[{"hosts":["a"]}]}`, false),
		meta(`{"n\u0061me":"s"}`, false),
		meta(`{"labels":{"\u0061":"b"}}`, false),
		// declined: lone surrogates, invalid UTF-8, control characters
		spec(`{"egress":[{"bind":"\ud800","hosts":["./*"]}]}`, false),
		spec(`{"egress":[{"bind":"\udc00\ud800","hosts":["./*"]}]}`, false),
		spec(`{"egress":[{"bind":"\ud800\u0041","hosts":["./*"]}]}`, false),
		spec(`{"egress":[{"bind":"\ud800\\u dc00","hosts":["./*"]}]}`, false),
		spec(`{"workloadSelector":{"labels":{"\ud800":"x"}}}`, false),
		meta(`{"name":"\udfff"}`, false),
		spec("{\"egress\":[{\"bind\":\"a\xffb\",\"hosts\":[\"./*\"]}]}", false),
		spec("{\"egress\":[{\"bind\":\"\xed\xa0\x80\",\"hosts\":[\"./*\"]}]}", false),
		meta("{\"name\":\"\xc3\"}", false),
		{"{\"spec\":{},\"status\":\"\xff\"}", false},
		spec("{\"egress\":[{\"bind\":\"a\tb\",\"hosts\":[\"./*\"]}]}", false),
		spec("{\"egress\":[{\"bind\":\"a\x00b\",\"hosts\":[\"./*\"]}]}", false),
		meta("{\"name\":\"a\nb\"}", false),
		spec(`{"egress":[{"bind":"\x41","hosts":["./*"]}]}`, false),
		spec(`{"egress":[{"bind":"\u00g1","hosts":["./*"]}]}`, false),
		// declined: what may follow the object, and broken syntax
		{specObject(`{}`) + `{}`, false},
		{specObject(`{}`) + `}`, false},
		{specObject(`{}`) + ` x`, false},
		{specObject(`{"egress":[{"hosts":["a",]}]}`), false},
		{specObject(`{"egress":[{"hosts":["a"],}]}`), false},
		{`{"spec":{}`, false},
		{`{"spec":{}},`, false},
		{`{"spec" {}}`, false},
		{`{spec:{}}`, false},
		{`{"spec":{"egress":[{"hosts":["a"]}]}`, false},
		{`{"spec":{},"status":[1,]}`, false},
		{`{"spec":{},"status":nul}`, false},
		{`{"spec":{},"status":truex}`, false},
		{`{"spec":{},"status":01}`, false},
		{`{"spec":{},"status":1.}`, false},
		{`{"spec":{},"status":-}`, false},
		{`{"spec":{},"status":1e}`, false},
		{"\ufeff" + `{"spec":{}}`, false},
		{`[]`, false},
		{``, false},
		{`null`, false},
		// declined: nulls
		{`{"apiVersion":null,"spec":{}}`, false},
		{`{"kind":null,"spec":{}}`, false},
		{`{"metadata":null,"spec":{}}`, false},
		{`{"spec":null}`, false},
		spec(`{"egress":[null]}`, false),
		spec(`{"egress":[{"hosts":["./*",null]}]}`, false),
		spec(`{"workloadSelector":{"labels":{"app":null}}}`, false),
		// declined: metadata beyond the exact fields
		// The API server sets managedFields on every write; fieldsV1 is
		// kept as raw JSON, which decode re-writes (key order, spacing).
		meta(`{"name":"s","managedFields":[{"manager":"kubectl","operation":"Apply","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{ },"f:metadata":{}}}]}`, true),
		meta(`{"name":"s","managedFields":[{"manager":"kubectl","operation":"Apply","apiVersion":"networking.istio.io/v1","time":"2026-12-01T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:egress":{}},"f:metadata":{"f:annotations":{".":{},"f:note":{}}}}}],"annotations":{"note":"<b>&</b>"}}`, true),
		meta(`{"name":"s","managedFields":[{"manager":"kubectl","Operation":"Apply"}]}`, true),
		meta(`{"name":"s","managedFields":[{"manager":"m","fieldsV1":{"f:metadata":{"f:annotations":{"f:a<b&c>":{}}},"f:spec":{ "f:egress" : {} }}},{"manager":"n","fieldsV1":null},{"manager":"o","fieldsV1":1.50}]}`, true),
		meta(`{"name":"s","managedFields":[{"manager":"m","manager":"n"}]}`, true),
		meta(`{"name":"s","managedFields":null}`, true),
		meta(`{"name":"s","managedFields":[{"manager":"m","fieldsV1":{"f:a":{},"f:a":{}}}]}`, false),
		meta(`{"name":"s","managedFields":[{"manager":"kubectl","bogus":1}]}`, false),
		meta(`{"name":"s","managedFields":{}}`, false),
		meta(`{"Name":"s"}`, false),
		meta(`{"name":"s","unknown":1}`, false),
		meta(`{"ownerReferences":[{"Name":"o"}]}`, false),
		meta(`{"name":1}`, false),
		meta(`{"labels":{"a":1}}`, false),
		meta(`{"creationTimestamp":"yesterday"}`, false),
		meta(`[]`, false),
		// declined: the top level
		{`{"apiVersion":"v1","kind":"Sidecar"}`, false},
		{`{"spec":{},"extra":1}`, false},
		{`{"spec":{},"kind":1}`, false},
		{`{"spec":[]}`, false},
		{`{"spec":"x"}`, false},
		// declined: spec values decode or the fill refuses or leaves to protojson
		spec(`{"egress":[{"captureMode":1}]}`, false),
		spec(`{"egress":[{"captureMode":"none"}]}`, false),
		spec(`{"egress":[{"capture_mode":"NONE"}]}`, false),
		spec(`{"workload_selector":{}}`, false),
		spec(`{"Egress":[]}`, false),
		spec(`{"egress":[{"port":{"number":01}}]}`, false),
		spec(`{"egress":[{"port":{"number":-0}}]}`, false),
		spec(`{"egress":[{"port":{"number":-1}}]}`, false),
		spec(`{"egress":[{"port":{"number":1.0}}]}`, false),
		spec(`{"egress":[{"port":{"number":1e2}}]}`, false),
		spec(`{"egress":[{"port":{"number":"80"}}]}`, false),
		spec(`{"egress":[{"port":{"number":4294967296}}]}`, false),
		spec(`{"egress":[{"port":{"number":99999999999999999999999}}]}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"maxConnections":2147483648}}}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"maxConnections":-2147483649}}}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":1}}}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1m"}}}`, false),
		spec(`{"inboundConnectionPool":{"tcp":{"connectTimeout":"315576000001s"}}}`, false),
		spec(`{"ingress":[{"tls":{"insecureSkipVerify":"true"}}]}`, false),
		spec(`{"ingress":[{"tls":{"httpsRedirect":1}}]}`, false),
		spec(`{"egress":{}}`, false),
		spec(`{"egress":[{"hosts":"a"}]}`, false),
		spec(`{"workloadSelector":{"labels":[]}}`, false),
		spec(`{"workloadSelector":{"labels":{"a":1}}}`, false),
		spec(`{"outboundTrafficPolicy":{"egressProxy":{"port":[]}}}`, false),
		// declined: nesting beyond fastMaxDepth (decode takes it)
		{`{"spec":{},"status":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`, false},
	}
}

func TestFastCases(t *testing.T) {
	taken := 0
	for i, c := range fastCases() {
		name := fmt.Sprintf("fast/%d", i)
		got := fastAgrees(t, name, []byte(c.raw))
		if got != c.take {
			t.Errorf("%s: the fast path took it: %v, want %v\ninput %q", name, got, c.take, c.raw)
		}
		if got {
			taken++
		}
	}
	t.Logf("%d edge cases, %d taken by the fast path", len(fastCases()), taken)
}

// TestFastOtherMessages runs the fast path's spec reader on the other
// Istio messages (fill_test.go's generator): the Sidecar has no oneof,
// float, 64-bit integer, bytes or non-string map key. Whatever it takes,
// decode's shape check and the fill must take too, with the same message.
func TestFastOtherMessages(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 100
	}
	r := rand.New(rand.NewSource(3))
	for _, name := range otherMessages() {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		md := mt.Descriptor()
		taken := 0
		for i := range n {
			var b bytes.Buffer
			generator{r: r, b: &b}.message(md, 0)
			s := fastScanner{data: b.Bytes()}
			fast := mt.New()
			ok := s.message(fast, 0)
			s.skipSpace()
			if !ok || s.pos != len(s.data) {
				continue
			}
			taken++
			var spec any
			dec := json.NewDecoder(bytes.NewReader(b.Bytes()))
			dec.UseNumber()
			if err := dec.Decode(&spec); err != nil {
				t.Fatalf("the generator wrote malformed JSON: %v\n%s", err, b.Bytes())
			}
			filled := mt.New()
			if errs := checkMessage(md, spec, field.NewPath("spec"), 0); len(errs) > 0 {
				t.Errorf("%s/%d: the fast path took a spec decode refuses: %v\n%s", name, i, errs, b.Bytes())
				continue
			}
			if !fillMessage(filled, spec, 0) {
				t.Errorf("%s/%d: the fast path took a spec the fill leaves to protojson\n%s", name, i, b.Bytes())
				continue
			}
			if !reflect.DeepEqual(fast.Interface(), filled.Interface()) || !proto.Equal(fast.Interface(), filled.Interface()) {
				t.Errorf("%s/%d: the fast path and the fill differ\nfast %v\nfill %v\n%s", name, i, fast.Interface(), filled.Interface(), b.Bytes())
			}
		}
		t.Logf("%s: %d of %d taken by the fast path", name, taken, n)
	}
}

// FuzzFast checks fastAgrees on arbitrary bytes.
func FuzzFast(f *testing.F) {
	for _, raw := range decodeInputs(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fastAgrees(t, "fuzz", data)
	})
}
