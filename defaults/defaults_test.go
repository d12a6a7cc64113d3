package defaults_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/defaults"
	"github.com/sidecar-webhook/sidecar-webhook/mesh"
	"github.com/sidecar-webhook/sidecar-webhook/rules"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
)

const referenceDir = "../validation/testdata/reference"

// object parses JSON text the way the webhook does (numbers as float64).
func object(t testing.TB, js string) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(js), &obj); err != nil {
		t.Fatalf("test input %s: %v", js, err)
	}
	return obj
}

func deepCopy(t testing.TB, obj map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return object(t, string(b))
}

func TestApply(t *testing.T) {
	cases := []struct {
		name    string
		family  mesh.IPFamily
		in      string
		want    string
		changes []defaults.Change
		notes   []defaults.Note
	}{
		{
			name:   "IPv6: egress NONE with a port gets the IPv6 loopback bind",
			family: mesh.IPv6,
			in:     `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]}]}}`,
			want:   `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"bind":"::1","hosts":["./*"]}]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[0].bind", Value: "::1"},
			},
		},
		{
			name:   "dual stack: no bind is written, a note says both loopback addresses are bound",
			family: mesh.DualStack,
			in:     `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]}]}}`,
			want:   `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]}]}}`,
			notes: []defaults.Note{{Rule: rules.DualStackBind, Path: "spec.egress[0].bind",
				Message: "left empty: on this dual-stack cluster the proxy binds a captureMode NONE listener to both loopback addresses (127.0.0.1 and ::1); writing one bind would drop the other"}},
		},
		{
			name: "egress NONE with a port and no bind gets the loopback bind",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"bind":"127.0.0.1","hosts":["./*"]}]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[0].bind", Value: "127.0.0.1"},
			},
		},
		{
			name: "egress NONE with an empty bind counts as absent",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","bind":"","port":{"number":3306},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"bind":"127.0.0.1","hosts":["./*"]}]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[0].bind", Value: "127.0.0.1"},
			},
		},
		{
			name: "egress NONE with a null bind counts as absent",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","bind":null,"port":{"number":3306},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","port":{"number":3306},"bind":"127.0.0.1","hosts":["./*"]}]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[0].bind", Value: "127.0.0.1"},
			},
		},
		{
			name: "egress NONE without a port gets no bind",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","hosts":["./*"]}]}}`,
		},
		{
			name: "egress NONE with a null port gets no bind",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","port":null,"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","port":null,"hosts":["./*"]}]}}`,
		},
		{
			name: "egress NONE with a bind is untouched",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","bind":"10.0.0.1","port":{"number":80},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","bind":"10.0.0.1","port":{"number":80},"hosts":["./*"]}]}}`,
		},
		{
			name: "egress NONE with a unix bind is untouched",
			in:   `{"spec":{"egress":[{"captureMode":"NONE","bind":"unix:///a.sock","port":{"number":0},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"NONE","bind":"unix:///a.sock","port":{"number":0},"hosts":["./*"]}]}}`,
		},
		{
			name: "egress IPTABLES with a port gets no bind",
			in:   `{"spec":{"egress":[{"captureMode":"IPTABLES","port":{"number":80},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"captureMode":"IPTABLES","port":{"number":80},"hosts":["./*"]}]}}`,
		},
		{
			name: "a missing captureMode defaults to DEFAULT on egress and ingress, in field order",
			in:   `{"spec":{"ingress":[{"port":{"number":80}},{"port":{"number":81}}],"egress":[{"hosts":["./*"]},{"captureMode":"NONE","hosts":["./*"]}]}}`,
			want: `{"spec":{"ingress":[{"port":{"number":80},"captureMode":"DEFAULT"},{"port":{"number":81},"captureMode":"DEFAULT"}],"egress":[{"hosts":["./*"],"captureMode":"DEFAULT"},{"captureMode":"NONE","hosts":["./*"]}]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[0].captureMode", Value: "DEFAULT"},
				{Path: "spec.ingress[0].captureMode", Value: "DEFAULT"},
				{Path: "spec.ingress[1].captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "a null captureMode counts as absent",
			in:   `{"spec":{"ingress":[{"captureMode":null}]}}`,
			want: `{"spec":{"ingress":[{"captureMode":"DEFAULT"}]}}`,
			changes: []defaults.Change{
				{Path: "spec.ingress[0].captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "a captureMode the user wrote is never rewritten, even an invalid one",
			in:   `{"spec":{"ingress":[{"captureMode":"IPTABLES"},{"captureMode":"bogus"},{"captureMode":""},{"captureMode":3}],"egress":[{"captureMode":"DEFAULT","hosts":["./*"]}]}}`,
			want: `{"spec":{"ingress":[{"captureMode":"IPTABLES"},{"captureMode":"bogus"},{"captureMode":""},{"captureMode":3}],"egress":[{"captureMode":"DEFAULT","hosts":["./*"]}]}}`,
		},
		{
			name: "egress captureMode DEFAULT with a port gets no bind",
			in:   `{"spec":{"egress":[{"port":{"number":80},"hosts":["./*"]}]}}`,
			want: `{"spec":{"egress":[{"port":{"number":80},"captureMode":"DEFAULT","hosts":["./*"]}]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[0].captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "non-map entries are left alone",
			in:   `{"spec":{"ingress":[null,"x",3,[]],"egress":[null,{"hosts":["./*"]},true]}}`,
			want: `{"spec":{"ingress":[null,"x",3,[]],"egress":[null,{"hosts":["./*"],"captureMode":"DEFAULT"},true]}}`,
			changes: []defaults.Change{
				{Path: "spec.egress[1].captureMode", Value: "DEFAULT"},
			},
		},
		{
			name: "listener lists of the wrong type are left alone",
			in:   `{"spec":{"ingress":{"captureMode":null},"egress":"x"}}`,
			want: `{"spec":{"ingress":{"captureMode":null},"egress":"x"}}`,
		},
		{name: "missing spec", in: `{"kind":"Sidecar"}`, want: `{"kind":"Sidecar"}`},
		{name: "null spec", in: `{"spec":null}`, want: `{"spec":null}`},
		{name: "spec of the wrong type", in: `{"spec":[{"egress":[]}]}`, want: `{"spec":[{"egress":[]}]}`},
		{name: "empty spec", in: `{"spec":{}}`, want: `{"spec":{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := object(t, tc.in)
			changes, notes := defaults.Apply(obj, defaults.Options{IPFamily: tc.family})
			if diff := cmp.Diff(tc.changes, changes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.notes, notes, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(object(t, tc.want), obj); diff != "" {
				t.Errorf("object (-want +got):\n%s", diff)
			}
		})
	}
}

// corpus is what the properties are checked over: the reference examples and
// many random Sidecars.
type corpusEntry struct {
	name string
	obj  map[string]any
}

// corpusCache holds the corpus once built; the tests only read it.
var corpusCache struct {
	sync.Mutex
	entries []corpusEntry
}

func corpus(t *testing.T) []corpusEntry {
	t.Helper()
	corpusCache.Lock()
	defer corpusCache.Unlock()
	if corpusCache.entries == nil {
		corpusCache.entries = buildCorpus(t)
	}
	return corpusCache.entries
}

func buildCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	var out []corpusEntry
	files, err := filepath.Glob(filepath.Join(referenceDir, "*.yaml"))
	if err != nil || len(files) != 5 {
		t.Fatalf("want the 5 reference examples in %s, got %d (%v)", referenceDir, len(files), err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusEntry{name: filepath.Base(f), obj: object(t, string(js))})
	}
	rng := rand.New(rand.NewSource(20240607))
	for i := range 2000 {
		obj := deepCopy(t, randomSidecar(rng)) // as the webhook sees it: plain JSON
		out = append(out, corpusEntry{name: "random-" + strconv.Itoa(i), obj: obj})
	}
	return out
}

// randomSidecar builds a Sidecar in JSON form. Most choices are valid, with
// a sprinkling of mistakes, so that both valid and invalid Sidecars occur.
func randomSidecar(rng *rand.Rand) map[string]any {
	pick := func(options ...any) any { return options[rng.Intn(len(options))] }
	chance := func(p float64) bool { return rng.Float64() < p }

	// maybeSet sets key to one of: absent, null, or a value.
	captureMode := func(m map[string]any) {
		switch rng.Intn(7) {
		case 0, 1, 2:
			// absent
		case 3:
			m["captureMode"] = nil
		default:
			m["captureMode"] = pick("DEFAULT", "IPTABLES", "NONE", "NONE")
		}
	}
	usedPorts := map[int]bool{}
	freePort := func() int {
		for {
			p := 1 + rng.Intn(65535)
			if chance(0.3) {
				p = 8000 + rng.Intn(20) // small range: the odd duplicate
			}
			if !usedPorts[p] || chance(0.05) {
				usedPorts[p] = true
				return p
			}
		}
	}
	port := func(n int) map[string]any {
		p := map[string]any{"number": n}
		if chance(0.7) {
			p["protocol"] = pick("HTTP", "TCP", "GRPC", "MYSQL", "tls", "HTTPS")
		}
		if chance(0.6) {
			p["name"] = pick("http", "web-1", "mysql", "p"+strconv.Itoa(n))
		}
		if chance(0.02) {
			p["protocol"] = "SMTP"
		}
		return p
	}
	hosts := func() []any {
		n := 1 + rng.Intn(4)
		if chance(0.03) {
			n = 0
		}
		out := make([]any, 0, n)
		for range n {
			out = append(out, pick("./*", "istio-system/*", "*/mysql.foo.com", "prod/reviews.prod.svc.cluster.local",
				"~/*", "*/*.example.com", "ns"+strconv.Itoa(rng.Intn(5))+"/*"))
		}
		if chance(0.03) {
			out = append(out, pick("reviews", "Bad_NS/*", "./*.*.x"))
		}
		return out
	}

	spec := map[string]any{}
	if chance(0.5) {
		spec["workloadSelector"] = map[string]any{"labels": map[string]any{"app": pick("ratings", "reviews", "productpage")}}
		if chance(0.03) {
			spec["workloadSelector"] = map[string]any{}
		}
	}

	var ingress []any
	for range rng.Intn(3) {
		l := map[string]any{"port": port(freePort())}
		captureMode(l)
		switch rng.Intn(6) {
		case 0:
			l["bind"] = ""
		case 1:
			l["bind"] = pick("0.0.0.0", "172.16.1.32", "::")
		case 2:
			if chance(0.1) {
				l["bind"] = "unix:///var/run/in.sock"
			}
		}
		l["defaultEndpoint"] = pick("127.0.0.1:8080", "[::1]:9000", "0.0.0.0:80", "unix:///var/run/someuds.sock", "unix://@app")
		if chance(0.03) {
			delete(l, "defaultEndpoint")
		}
		ingress = append(ingress, l)
	}
	if len(ingress) > 0 {
		spec["ingress"] = ingress
	}

	var egress []any
	n := rng.Intn(4)
	for i := range n {
		l := map[string]any{"hosts": hosts()}
		captureMode(l)
		last := i == n-1
		switch {
		case last && chance(0.4):
			// the catch-all listener, without a port
			if chance(0.2) {
				l["port"] = nil
			}
			if chance(0.05) {
				l["bind"] = "127.0.0.1" // a bind needs a port
			}
		case chance(0.2):
			// a Unix domain socket listener: port 0
			l["port"] = port(0)
			l["bind"] = "unix:///var/run/out" + strconv.Itoa(i) + ".sock"
			if chance(0.05) {
				l["bind"] = "unix://@abstract"
			}
		default:
			l["port"] = port(freePort())
			switch rng.Intn(5) {
			case 0:
				l["bind"] = ""
			case 1:
				l["bind"] = pick("127.0.0.1", "10.1.2.3", "::1")
			case 2:
				l["bind"] = nil
			}
		}
		egress = append(egress, l)
	}
	if len(egress) > 0 {
		spec["egress"] = egress
	}
	if chance(0.15) {
		spec["outboundTrafficPolicy"] = map[string]any{"mode": pick("REGISTRY_ONLY", "ALLOW_ANY")}
	}
	if chance(0.05) {
		// non-map entries among the listeners: invalid, and left alone
		spec["egress"] = append(egress, nil)
	}

	return map[string]any{
		"apiVersion": pick("networking.istio.io/v1alpha3", "networking.istio.io/v1beta1", "networking.istio.io/v1"),
		"kind":       "Sidecar",
		"metadata":   map[string]any{"name": "s" + strconv.Itoa(rng.Intn(100)), "namespace": pick("prod", "default", "istio-system")},
		"spec":       spec,
	}
}

// validate decodes obj like the webhook does and reports its errors; the
// decode errors count, so "valid" means the webhook would admit it.
func validate(t testing.TB, obj map[string]any) []string {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	s, errs := sidecar.Decode(b)
	if len(errs) == 0 {
		errs, _ = validation.ValidateSidecar(s)
	}
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// families are the IP families the properties hold for.
var families = []mesh.IPFamily{mesh.IPv4, mesh.IPv6, mesh.DualStack}

func TestApplyIsIdempotent(t *testing.T) {
	for _, c := range corpus(t) {
		for _, family := range families {
			opts := defaults.Options{IPFamily: family}
			once := deepCopy(t, c.obj)
			defaults.Apply(once, opts)
			twice := deepCopy(t, once)
			if changes, _ := defaults.Apply(twice, opts); len(changes) > 0 {
				t.Errorf("%s (%s): the second Apply changed %v", c.name, family, changes)
			}
			if diff := cmp.Diff(once, twice); diff != "" {
				t.Errorf("%s (%s): Apply twice differs from once (-once +twice):\n%s", c.name, family, diff)
			}
		}
	}
}

func TestApplyOnlyAdds(t *testing.T) {
	changed := 0
	for i, c := range corpus(t) {
		after := deepCopy(t, c.obj)
		changes, _ := defaults.Apply(after, defaults.Options{IPFamily: families[i%len(families)]})
		if len(changes) > 0 {
			changed++
		}
		for _, problem := range keptValues("", c.obj, after) {
			t.Errorf("%s: %s", c.name, problem)
		}
		// What changed is exactly what Apply reports.
		var reported []string
		for _, ch := range changes {
			reported = append(reported, ch.Path+"="+ch.Value)
		}
		if diff := cmp.Diff(addedValues("", c.obj, after), reported, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: reported changes (-actual +reported):\n%s", c.name, diff)
		}
	}
	if changed == 0 {
		t.Fatal("no corpus entry was defaulted; the property is vacuous")
	}
}

// unset is how defaulting reads "not written by the user": null, and (for
// bind) the empty string, which protobuf cannot tell from absent.
func unset(v any) bool { return v == nil || v == "" }

// keptValues reports every value set in before that after lacks or changed.
func keptValues(path string, before, after any) []string {
	switch b := before.(type) {
	case map[string]any:
		a, ok := after.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: was an object, now %T", path, after)}
		}
		var out []string
		for k, v := range b {
			p := path + "." + k
			got, present := a[k]
			if !present {
				out = append(out, p+": removed")
				continue
			}
			if unset(v) && !unset(got) {
				continue // added by defaulting; addedValues checks it
			}
			out = append(out, keptValues(p, v, got)...)
		}
		return out
	case []any:
		a, ok := after.([]any)
		if !ok || len(a) != len(b) {
			return []string{fmt.Sprintf("%s: list changed from %v to %v", path, before, after)}
		}
		var out []string
		for i := range b {
			out = append(out, keptValues(fmt.Sprintf("%s[%d]", path, i), b[i], a[i])...)
		}
		return out
	default:
		if !cmp.Equal(before, after) {
			return []string{fmt.Sprintf("%s: changed from %v to %v", path, before, after)}
		}
		return nil
	}
}

// addedValues lists path=value for every string that after sets where before
// had nothing, in field order (egress before ingress, as Apply reports).
func addedValues(path string, before, after any) []string {
	var out []string
	switch a := after.(type) {
	case map[string]any:
		b, _ := before.(map[string]any)
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, k)
		}
		// Apply reports egress listeners first, and in a listener the
		// captureMode before the bind.
		order := map[string]int{"egress": 0, "ingress": 1, "captureMode": 0, "bind": 1}
		sortKeys(keys, order)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			old, present := b[k]
			if s, isString := a[k].(string); isString && (!present || unset(old)) && s != "" {
				out = append(out, p+"="+s)
				continue
			}
			out = append(out, addedValues(p, old, a[k])...)
		}
	case []any:
		b, _ := before.([]any)
		for i := range a {
			var old any
			if i < len(b) {
				old = b[i]
			}
			out = append(out, addedValues(fmt.Sprintf("%s[%d]", path, i), old, a[i])...)
		}
	}
	return out
}

func sortKeys(keys []string, order map[string]int) {
	rank := func(k string) (int, string) {
		if r, ok := order[k]; ok {
			return r, ""
		}
		return 2, k
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0; j-- {
			ri, ki := rank(keys[j])
			rj, kj := rank(keys[j-1])
			if ri < rj || (ri == rj && ki < kj) {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
	}
}

func TestApplyKeepsValidSidecarsValid(t *testing.T) {
	entries := corpus(t)
	valid, defaultedValid := 0, 0
	for i, c := range entries {
		if errs := validate(t, c.obj); len(errs) > 0 {
			continue
		}
		valid++
		after := deepCopy(t, c.obj)
		if changes, _ := defaults.Apply(after, defaults.Options{IPFamily: families[i%len(families)]}); len(changes) > 0 {
			defaultedValid++
		}
		if errs := validate(t, after); len(errs) > 0 {
			t.Errorf("%s: valid before defaulting, invalid after:\n%v\nbefore: %v\nafter:  %v", c.name, errs, c.obj, after)
		}
	}
	// The property means something only if many inputs are valid and
	// defaulting changes a good share of them.
	if share := float64(valid) / float64(len(entries)); share < 0.3 {
		t.Errorf("only %d of %d corpus Sidecars are valid (%.0f%%); the generator must produce at least 30%%", valid, len(entries), 100*share)
	}
	if defaultedValid < valid/3 {
		t.Errorf("defaulting changed only %d of %d valid Sidecars", defaultedValid, valid)
	}
	t.Logf("%d of %d valid, %d of them defaulted", valid, len(entries), defaultedValid)
}
