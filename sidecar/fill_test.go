package sidecar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	_ "istio.io/api/extensions/v1alpha1"
	_ "istio.io/api/mesh/v1alpha1"
	_ "istio.io/api/meta/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	_ "istio.io/api/security/v1beta1"
	_ "istio.io/api/telemetry/v1alpha1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// The fill (fill.go) must not change what Decode answers. These tests
// compare Decode with decode(raw, false), which leaves the spec to protojson
// as Decode did before the fill, on every input at hand: the test data, the
// fuzz seeds, hand-written cases for every field kind of the Sidecar proto
// and a few thousand random objects (fill_generated_test.go adds those of
// test/benchdata).

// specObject wraps a spec (JSON text) in a complete Sidecar object.
func specObject(spec string) string {
	return `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"s","namespace":"ns"},"spec":` + spec + `}`
}

// DecodeSeeds are the seeds of FuzzDecodeDefaultValidate, kept here so that
// the fill's tests replay them too.
func DecodeSeeds() []string {
	return []string{
		specObject(`{"egress":[{"captureMode":"NONE","port":{"number":3306,"protocol":"MYSQL","name":"db"},"hosts":["*/mysql.foo.com"]}]}`),
		specObject(`{"egress":[{"captureMode":"NONE","bind":"","port":{"number":80},"hosts":["./*"]},{"hosts":["*/*"]}]}`),
		specObject(`{"egress":[{"port":{"number":0},"bind":"unix:///var/run/a.sock","hosts":["./*"]}]}`),
		specObject(`{"ingress":[{"port":{"number":80},"defaultEndpoint":"127.0.0.1:8080","captureMode":null}],"inboundConnectionPool":{"tcp":{"connectTimeout":"1s","maxConnections":10}}}`),
		specObject(`{"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY","egressProxy":{"host":"proxy.example.com","port":{"number":3128}}}}`),
		// invalid ones
		specObject(`{"egress":[{"hostz":["./*"]}]}`),
		specObject(`{"egress":[{"captureMode":"FOO","port":{"number":4294967296},"hosts":["nope"]}]}`),
		specObject(`{"egress":[null,{"hosts":{}}],"ingress":[{"port":{"number":-1}}]}`),
		specObject(`{"workloadSelector":{"labels":{}}}`),
		specObject(`{}`),
		`{"spec":`,
		`[]`,
		`null`,
		`{"kind":"Sidecar","metadata":{"name":1},"spec":{"egress":[{"hosts":["./*"]}]}} {}`,
	}
}

// fillCases reach every field kind of the Sidecar proto, and the inputs
// where the fill must step aside.
func fillCases() []string {
	specs := []string{
		// durations, int32, bool, enum and nested messages in both pools
		`{"inboundConnectionPool":{"tcp":{"maxConnections":10,"connectTimeout":"1.5s","tcpKeepalive":{"probes":3,"time":"7200s","interval":"75s"},"maxConnectionDuration":"1h0m0s","idleTimeout":"0s"},"http":{"http1MaxPendingRequests":1,"http2MaxRequests":2,"maxRequestsPerConnection":3,"maxRetries":4,"idleTimeout":"60s","h2UpgradePolicy":"UPGRADE","useClientProtocol":true,"maxConcurrentStreams":5,"http2KeepAlive":{"interval":"10s","timeout":"3s"}}}}`,
		`{"ingress":[{"port":{"number":80,"targetPort":8080},"connectionPool":{"tcp":{"connectTimeout":"0.000000001s","maxConnections":-2147483648},"http":{"idleTimeout":"-1s","h2UpgradePolicy":"DO_NOT_UPGRADE","useClientProtocol":false}}}]}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":"315576000000s"}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":"315576000001s"}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1m"}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":""}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1.0000000001s"}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":" 1s"}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1\u0073"}}}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":null,"tcpKeepalive":null},"http":null}}`,
		`{"inboundConnectionPool":{"tcp":{},"http":{}}}`,
		`{"inboundConnectionPool":{}}`,
		`{"inboundConnectionPool":null,"outboundTrafficPolicy":null,"workloadSelector":null,"ingress":null,"egress":null}`,
		// TLS: repeated strings, repeated messages, enums, a BoolValue
		`{"ingress":[{"port":{"number":443,"protocol":"HTTPS","name":"https"},"tls":{"httpsRedirect":true,"mode":"MUTUAL","serverCertificate":"/c","privateKey":"/k","caCertificates":"/ca","caCrl":"/crl","credentialName":"cred","credentialNames":["a","b"],"caCertCredentialName":"cacred","tlsCertificates":[{"serverCertificate":"/c1","privateKey":"/k1","caCertificates":"/ca1"},{}],"subjectAltNames":["san"],"verifyCertificateSpki":["spki"],"verifyCertificateHash":["hash"],"minProtocolVersion":"TLSV1_2","maxProtocolVersion":"TLSV1_3","cipherSuites":["ECDHE-RSA-AES128-GCM-SHA256"],"insecureSkipVerify":true,"ecdhCurves":["P-256"],"alpnProtocols":["h2"]}}]}`,
		`{"ingress":[{"tls":{"insecureSkipVerify":false}}]}`,
		`{"ingress":[{"tls":{"insecureSkipVerify":null,"tlsCertificates":[],"credentialNames":[]}}]}`,
		`{"ingress":[{"tls":{"insecureSkipVerify":"true"}}]}`,
		`{"ingress":[{"tls":{"tlsCertificates":[null]}}]}`,
		// ports: uint32 edges
		`{"egress":[{"port":{"number":4294967295,"targetPort":0},"hosts":["./*"]}]}`,
		`{"egress":[{"port":{"number":-0},"hosts":["./*"]}]}`,
		`{"egress":[{"port":{"number":0e0},"hosts":["./*"]}]}`,
		`{"egress":[{"port":{"number":1e2},"hosts":["./*"]}]}`,
		`{"egress":[{"port":{"number":80.0},"hosts":["./*"]}]}`,
		`{"egress":[{"port":{"number":99999999999999999999999999},"hosts":["./*"]}]}`,
		`{"egress":[{"port":{"number":"80"},"hosts":["./*"]}]}`,
		`{"inboundConnectionPool":{"tcp":{"maxConnections":-0}}}`,
		`{"inboundConnectionPool":{"tcp":{"maxConnections":2147483647}}}`,
		`{"inboundConnectionPool":{"tcp":{"maxConnections":-2147483649}}}`,
		// egress: repeated hosts, bind, capture mode
		`{"egress":[{"bind":"127.0.0.1","captureMode":"IPTABLES","hosts":["ns/*","*/*.example.com","./foo"]},{"captureMode":"DEFAULT","hosts":[]},{"hosts":null}]}`,
		`{"egress":[{"hosts":["./*",null]}]}`,
		`{"egress":[]}`,
		`{"egress":[{}]}`,
		`{"egress":{}}`,
		// outbound traffic policy: enum and nested Destination/PortSelector
		`{"outboundTrafficPolicy":{"mode":"ALLOW_ANY","egressProxy":{"host":"h","subset":"s","port":{"number":1}}}}`,
		`{"outboundTrafficPolicy":{"mode":null,"egressProxy":{"port":null}}}`,
		`{"outboundTrafficPolicy":{"mode":"allow_any"}}`,
		`{"outboundTrafficPolicy":{"mode":1}}`,
		// the map
		`{"workloadSelector":{"labels":{"app":"a","version":"v1","":""}}}`,
		`{"workloadSelector":{"labels":null}}`,
		`{"workloadSelector":{}}`,
		`{"workloadSelector":{"labels":{"app":null}}}`,
		`{"workloadSelector":{"labels":{"app":"a","app":"b"}}}`,
		`{"workloadSelector":{"labels":{"\u00e9":"\u00e9","\ud83d\ude00":"x"}}}`,
		`{"workloadSelector":{"labels":{"\ud800":"lone surrogate key"}}}`,
		// duplicate keys: protojson refuses them in the raw spec
		`{"egress":[{"hosts":["a"]}],"egress":[{"hosts":["b"]}]}`,
		`{"egress":[{"hosts":["a"],"hosts":["b"]}]}`,
		`{"inboundConnectionPool":{"tcp":{"connectTimeout":"1s","connectTimeout":"2s"}}}`,
		// strings: escapes, lone surrogates, HTML characters, separators
		`{"egress":[{"bind":"a\"b\\c\/d\n\t\u0000","hosts":["<&>","\u2028\u2029","\ud83d\ude00"]}]}`,
		`{"egress":[{"bind":"\ud800","hosts":["./*"]}]}`,
		`{"egress":[{"bind":"\udc00\ud800","hosts":["./*"]}]}`,
		`{"egress":[{"bind":"\ud800\u0041","hosts":["./*"]}]}`,
		// proto names and unknown fields are shape errors
		`{"workload_selector":{}}`,
		`{"egress":[{"capture_mode":"NONE"}]}`,
		`{"Egress":[]}`,
	}
	var out []string
	for _, s := range specs {
		out = append(out, specObject(s))
	}
	return append(out,
		// invalid UTF-8, raw, in a value, a map key and outside the spec
		specObject("{\"egress\":[{\"bind\":\"a\xffb\",\"hosts\":[\"./*\"]}]}"),
		specObject("{\"workloadSelector\":{\"labels\":{\"a\xc3\":\"v\xed\xa0\x80\"}}}"),
		"{\"kind\":\"Sidecar\",\"metadata\":{\"name\":\"\xff\"},\"spec\":{\"egress\":[{\"hosts\":[\"./*\"]}]}}",
		// the spec twice, and spelled with an escape
		`{"spec":{"egress":[{"hosts":["a"]}]},"spec":{"ingress":[{"port":{"number":1}}]}}`,
		`{"sp\u0065c":{"egress":[{"hosts":["a"]}]}}`,
		`{"spec":{"egress":[{"hosts":["a"]}]},"spec":null}`,
		`{"spec":[]}`,
		`{"spec":"x"}`,
		`{"spec":{"egress":[{"hosts":["a"]}]}}`,
	)
}

// decodeInputs are the inputs the differential tests replay, by name.
func decodeInputs(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, dir := range []string{"../validation/testdata", "testdata"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			switch {
			case strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml"):
				js, err := yaml.YAMLToJSON(raw)
				if err != nil {
					return fmt.Errorf("%s: %v", path, err)
				}
				if !bytes.Contains(js, []byte(`"Sidecar"`)) {
					return nil
				}
				out[path] = js
			case bytes.HasPrefix(raw, []byte("go test fuzz v1\n")):
				// A fuzz corpus entry: []byte("...") in Go syntax.
				line := strings.TrimSpace(strings.TrimPrefix(string(raw), "go test fuzz v1\n"))
				quoted := strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")")
				data, err := strconv.Unquote(quoted)
				if err != nil {
					return fmt.Errorf("%s: %v", path, err)
				}
				out[path] = []byte(data)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(out) < 6 {
		t.Fatalf("found only %d test data files", len(out))
	}
	for i, s := range DecodeSeeds() {
		out[fmt.Sprintf("seed/%d", i)] = []byte(s)
	}
	for i, s := range fillCases() {
		out[fmt.Sprintf("case/%d", i)] = []byte(s)
	}
	for i, c := range fastCases() {
		out[fmt.Sprintf("fast/%d", i)] = []byte(c.raw)
	}
	return out
}

// SameDecode is sameDecode for the external tests (test/benchdata, which
// they use, imports this package).
func SameDecode(t *testing.T, name string, raw []byte) (filled bool) {
	t.Helper()
	return sameDecode(t, name, raw)
}

// sameDecode reports, as a test error, any difference between Decode and
// the protojson-only decode, checks the fast path against the latter
// (fastAgrees) and the fill against protojson on the spec alone. It
// returns whether the fill was taken.
func sameDecode(t *testing.T, name string, raw []byte) (filled bool) {
	t.Helper()
	fastAgrees(t, name, raw)
	got, gotErrs := decode(raw, true)
	want, wantErrs := decode(raw, false)
	if !reflect.DeepEqual(gotErrs, wantErrs) {
		t.Errorf("%s: errors differ\n got %v\nwant %v\ninput %q", name, gotErrs, wantErrs, raw)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: objects differ\n got %v\nwant %v\ninput %q", name, got, want, raw)
	}
	if got != nil && want != nil && !proto.Equal(&got.Spec, &want.Spec) {
		t.Errorf("%s: specs differ (proto.Equal)\n got %v\nwant %v", name, &got.Spec, &want.Spec)
	}
	return fillAgainstProtojson(t, name, raw)
}

// fillAgainstProtojson takes the spec out of a Sidecar object for
// checkFill.
func fillAgainstProtojson(t *testing.T, name string, raw []byte) bool {
	t.Helper()
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return false
	}
	obj, ok := doc.(map[string]any)
	if !ok || obj["spec"] == nil {
		return false
	}
	rawSpec, _ := member(raw, "spec")
	md := (&networkingv1alpha3.Sidecar{}).ProtoReflect().Descriptor()
	return checkFill(t, name, md, obj["spec"], rawSpec)
}

// checkFill fills a message of type md from a spec that passes the shape
// check and, when the fill takes it, checks that protojson reads the same
// message from the spec written out again and, when it accepts them, from
// the spec's own bytes (rawSpec, if any). It returns whether the fill took
// the spec.
func checkFill(t *testing.T, name string, md protoreflect.MessageDescriptor, spec any, rawSpec []byte) bool {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		t.Fatal(err)
	}
	filled := mt.New().Interface()
	if len(checkMessage(md, spec, field.NewPath("spec"), 0)) > 0 || !fillMessage(filled.ProtoReflect(), spec, 0) {
		return false
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: true}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	again := mt.New().Interface()
	if err := opts.Unmarshal(js, again); err != nil {
		t.Errorf("%s: the fill took a spec protojson refuses: %v\nspec %s", name, err, js)
		return true
	}
	if !reflect.DeepEqual(filled, again) || !proto.Equal(filled, again) {
		t.Errorf("%s: the fill and protojson differ\nfill      %v\nprotojson %v\nspec %s", name, filled, again, js)
	}
	if rawSpec != nil {
		asSent := mt.New().Interface()
		if opts.Unmarshal(rawSpec, asSent) == nil && (!reflect.DeepEqual(filled, asSent) || !proto.Equal(filled, asSent)) {
			t.Errorf("%s: the fill and protojson on the spec as sent differ\nfill      %v\nprotojson %v\nspec %s", name, filled, asSent, rawSpec)
		}
	}
	return true
}

func TestFillMatchesProtojson(t *testing.T) {
	inputs := decodeInputs(t)
	filled := 0
	fast := map[string][2]int{} // by group: taken by the fast path, inputs
	for name, raw := range inputs {
		if sameDecode(t, name, raw) {
			filled++
		}
		group := strings.SplitN(name, "/", 2)[0]
		if strings.Contains(name, "reference") {
			group = "reference"
		}
		n := fast[group]
		if FastAccepts(raw) {
			n[0]++
		}
		n[1]++
		fast[group] = n
	}
	t.Logf("%d inputs, %d filled without protojson", len(inputs), filled)
	for group, n := range fast {
		t.Logf("%s: %d of %d taken by the fast path", group, n[0], n[1])
	}
	// The fill and the fast path must actually be taken: every reference
	// example is filled, and read by the fast path.
	for name, raw := range inputs {
		if strings.Contains(name, "reference") {
			if !fillAgainstProtojson(t, name, raw) {
				t.Errorf("%s: not filled", name)
			}
			if !FastAccepts(raw) {
				t.Errorf("%s: not taken by the fast path", name)
			}
		}
	}
}

func TestFillGenerated(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewSource(1))
	md := (&networkingv1alpha3.Sidecar{}).ProtoReflect().Descriptor()
	filled, fast := 0, 0
	for i := range n {
		var b bytes.Buffer
		g := generator{r: r, b: &b}
		g.message(md, 0)
		raw := []byte(specObject(b.String()))
		if sameDecode(t, fmt.Sprintf("random/%d", i), raw) {
			filled++
		}
		if FastAccepts(raw) {
			fast++
		}
	}
	t.Logf("%d random Sidecars, %d filled without protojson, %d taken by the fast path", n, filled, fast)
	if filled < n/4 {
		t.Errorf("only %d of %d random Sidecars were filled: the generator makes too few valid ones", filled, n)
	}
}

// TestFillOtherMessages runs the fill on the other Istio messages: the
// Sidecar has no oneof, float, 64-bit integer, bytes or non-string map key,
// and the fill must agree with protojson on those too.
func TestFillOtherMessages(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 100
	}
	r := rand.New(rand.NewSource(2))
	for _, name := range otherMessages() {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		md := mt.Descriptor()
		filled, declined := 0, 0
		for i := range n {
			var b bytes.Buffer
			generator{r: r, b: &b}.message(md, 0)
			var spec any
			dec := json.NewDecoder(bytes.NewReader(b.Bytes()))
			dec.UseNumber()
			if err := dec.Decode(&spec); err != nil {
				t.Fatalf("the generator wrote malformed JSON: %v\n%s", err, b.Bytes())
			}
			if checkFill(t, fmt.Sprintf("%s/%d", name, i), md, spec, b.Bytes()) {
				filled++
			} else if len(checkMessage(md, spec, field.NewPath("spec"), 0)) == 0 {
				declined++
			}
		}
		t.Logf("%s: %d of %d filled, %d passed the shape check and were left to protojson", name, filled, n, declined)
		if filled == 0 {
			t.Errorf("%s: none filled", name)
		}
	}
}

// otherMessages are the messages beside the Sidecar that the fill's and
// the fast path's tests run on.
func otherMessages() []protoreflect.FullName {
	return []protoreflect.FullName{
		"istio.networking.v1alpha3.DestinationRule",
		"istio.networking.v1alpha3.VirtualService",
		"istio.networking.v1alpha3.EnvoyFilter",
		"istio.networking.v1alpha3.ServiceEntry",
		"istio.networking.v1alpha3.Gateway",
		"istio.networking.v1alpha3.WorkloadGroup",
		"istio.security.v1beta1.PeerAuthentication",
		"istio.security.v1beta1.AuthorizationPolicy",
		"istio.telemetry.v1alpha1.Telemetry",
		"istio.extensions.v1alpha1.WasmPlugin",
		"istio.mesh.v1alpha1.MeshNetworks",
		"istio.meta.v1alpha1.IstioStatus",
		"google.api.Publishing",
	}
}

// FuzzFill checks on arbitrary bytes that Decode answers as it did when
// protojson read every spec, and that the fill agrees with protojson.
func FuzzFill(f *testing.F) {
	for _, raw := range decodeInputs(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameDecode(t, "fuzz", data)
	})
}

// generator writes random Sidecar specs as JSON text, mostly valid, with
// now and then a null, a duplicate key, an edge-case number or string, or a
// shape error.
type generator struct {
	r *rand.Rand
	b *bytes.Buffer
}

func (g generator) chance(p float64) bool { return g.r.Float64() < p }

func (g generator) pick(options ...string) { g.b.WriteString(options[g.r.Intn(len(options))]) }

func (g generator) message(md protoreflect.MessageDescriptor, depth int) {
	switch md.FullName() {
	case "google.protobuf.Duration":
		g.pick(`"1s"`, `"0s"`, `"1.5s"`, `"-1s"`, `"0.000000001s"`, `"315576000000s"`, `"315576000001s"`, `"1m"`, `""`, `"1"`, `"1.s"`, `".5s"`, `"01s"`, `"+1s"`, `"1.0000000001s"`, `"1\u0073"`, `"5s"`, `"60s"`, `3`)
		return
	case "google.protobuf.Timestamp":
		g.pick(`"2020-01-01T00:00:00Z"`, `"2020-01-01T00:00:00.5+01:00"`, `"2020-13-01T00:00:00Z"`, `"yesterday"`, `1`)
		return
	case "google.protobuf.BoolValue":
		g.pick(`true`, `false`, `true`, `"true"`)
		return
	case "google.protobuf.StringValue", "google.protobuf.BytesValue":
		g.pick(`""`, `"aGk="`, `"a-_b"`, `"!"`, `1`)
		return
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int32Value", "google.protobuf.UInt32Value", "google.protobuf.Int64Value", "google.protobuf.UInt64Value":
		g.pick(`0`, `1`, `-1`, `1.5`, `1e2`, `4294967296`, `3.5e38`, `"1"`, `"NaN"`, `true`)
		return
	case "google.protobuf.Struct":
		g.pick(`{}`, `{"a":1,"b":[null,"x",{"c":true}]}`, `{"a":null}`, `[]`)
		return
	case "google.protobuf.Value":
		g.pick(`1`, `"x"`, `[1,{}]`, `{"a":null}`, `true`)
		return
	case "google.protobuf.ListValue":
		g.pick(`[]`, `[1,"a",null]`, `{}`)
		return
	case "google.protobuf.Any":
		g.pick(`{}`, `{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1s"}`, `{"@type":"nope"}`)
		return
	}
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		g.b.WriteString(`{}`)
		return
	}
	if depth > 8 {
		g.b.WriteString(`{}`)
		return
	}
	fields := md.Fields()
	g.b.WriteByte('{')
	first := true
	for _, i := range g.r.Perm(fields.Len()) {
		fd := fields.Get(i)
		if !g.chance(0.7 / float64(depth+1)) {
			continue
		}
		times := 1
		if g.chance(0.02) {
			times = 2 // a duplicate key
		}
		for range times {
			if !first {
				g.b.WriteByte(',')
			}
			first = false
			name := fd.JSONName()
			if g.chance(0.005) {
				name = string(fd.Name())
			}
			g.b.WriteString(strconv.Quote(name))
			g.b.WriteByte(':')
			g.field(fd, depth)
		}
	}
	if g.chance(0.005) {
		if !first {
			g.b.WriteByte(',')
		}
		g.b.WriteString(`"unknownField":1`)
	}
	g.b.WriteByte('}')
}

func (g generator) field(fd protoreflect.FieldDescriptor, depth int) {
	if g.chance(0.03) {
		g.b.WriteString("null")
		return
	}
	switch {
	case fd.IsMap():
		g.b.WriteByte('{')
		for i := range g.r.Intn(4) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.mapKey(fd.MapKey().Kind())
			g.b.WriteByte(':')
			if g.chance(0.02) {
				g.b.WriteString("null")
			} else {
				g.singular(fd.MapValue(), depth+1)
			}
		}
		g.b.WriteByte('}')
	case fd.IsList():
		g.b.WriteByte('[')
		for i := range g.r.Intn(4) {
			if i > 0 {
				g.b.WriteByte(',')
			}
			if g.chance(0.01) {
				g.b.WriteString("null")
			} else {
				g.singular(fd, depth+1)
			}
		}
		g.b.WriteByte(']')
	default:
		g.singular(fd, depth)
	}
}

func (g generator) mapKey(kind protoreflect.Kind) {
	switch kind {
	case protoreflect.StringKind:
		g.str()
	case protoreflect.BoolKind:
		g.pick(`"true"`, `"false"`, `"True"`)
	default:
		if g.chance(0.8) {
			g.b.WriteString(strconv.Quote(strconv.Itoa(g.r.Intn(70000))))
			return
		}
		g.pick(`"-1"`, `"-0"`, `"01"`, `" 1"`, `"+1"`, `"1e2"`, `"4294967296"`, `"x"`)
	}
}

func (g generator) singular(fd protoreflect.FieldDescriptor, depth int) {
	if g.chance(0.005) {
		g.pick(`[]`, `{}`, `"x"`, `1`, `true`)
		return
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		g.message(fd.Message(), depth+1)
	case protoreflect.EnumKind:
		values := fd.Enum().Values()
		if g.chance(0.01) {
			g.pick(`"NOPE"`, `0`, `"none"`)
			return
		}
		g.b.WriteString(strconv.Quote(string(values.Get(g.r.Intn(values.Len())).Name())))
	case protoreflect.BoolKind:
		g.pick(`true`, `false`)
	case protoreflect.StringKind:
		g.str()
	case protoreflect.BytesKind:
		g.pick(`""`, `"aGVsbG8="`, `"aGVsbG8"`, `"a-_b"`, `"!!"`)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		if g.chance(0.9) {
			g.b.WriteString(strconv.Itoa(g.r.Intn(65536)))
			return
		}
		g.pick(`0`, `-0`, `4294967295`, `4294967296`, `-1`, `1e2`, `1.0`, `0e0`, `"80"`, `18446744073709551616`, `99999999999999999999999`)
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if g.chance(0.9) {
			g.b.WriteString(strconv.Itoa(g.r.Intn(2000) - 100))
			return
		}
		g.pick(`0`, `-0`, `2147483647`, `2147483648`, `-2147483648`, `-2147483649`, `1e2`, `1.5`, `"7"`)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if g.chance(0.8) {
			g.b.WriteString(strconv.Itoa(g.r.Intn(2000) - 100))
			return
		}
		g.pick(`"12"`, `"-12"`, `"-0"`, `-0`, `" 1"`, `"+1"`, `"1e2"`, `"01"`, `""`, `9223372036854775807`, `"9223372036854775808"`,
			`-9223372036854775808`, `18446744073709551615`, `"18446744073709551616"`, `1.0`)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		if g.chance(0.8) {
			g.b.WriteString(strconv.FormatFloat(g.r.NormFloat64()*1000, 'g', -1, 64))
			return
		}
		g.pick(`0`, `-0`, `-0.0`, `1e39`, `-1e39`, `1e309`, `1e-50`, `3.4028235e38`, `3.4028236e38`, `1.7976931348623157e308`, `4.9e-324`, `"NaN"`, `"1.5"`, `12345678901234567890`)
	default:
		panic(fmt.Sprintf("generator: no values for %v", fd.Kind()))
	}
}

func (g generator) str() {
	if g.chance(0.85) {
		g.pick(`""`, `"./*"`, `"*/*"`, `"app"`, `"prod-us1/*"`, `"unix:///var/run/a.sock"`, `"127.0.0.1:8080"`, `"HTTP"`, `"v1"`, `"a.b.svc.cluster.local"`)
		return
	}
	g.pick(`"a\"b"`, `"\u00e9"`, "\"a\xffb\"", "\"\xed\xa0\x80\"", `"\ud800"`, `"\ud800\u0041"`, `"\ud83d\ude00"`, `"<&>"`, `"\u2028"`, `"\u0000"`, `"\/"`,
		strconv.Quote(strings.Repeat("x", 100)))
}
