package validation

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// ratchetSidecar decodes a Sidecar prod/legacy with the given spec JSON.
func ratchetSidecar(t *testing.T, name, spec string) *sidecar.Sidecar {
	t.Helper()
	s, errs := sidecar.Decode([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"` + name + `","namespace":"prod"},"spec":` + spec + `}`))
	if len(errs) > 0 {
		t.Fatalf("decoding %s: %v", spec, errs)
	}
	return s
}

// predatesAt lists the paths of the warnings that report a ratcheted error.
func predatesAt(ws Warnings) []string {
	var out []string
	for _, w := range ws {
		if strings.HasPrefix(w.Message, "pre-dates this change (") {
			out = append(out, w.Path.String())
		}
	}
	return out
}

// TestDecideRatchetsObjectErrors: one row per rule family, each an UPDATE
// (old, new) and the verdict: the errors that still deny, and the paths of
// the errors admitted as pre-dating the change. CREATE (old nil) of the same
// object is denied for every error, which the "create" column checks.
func TestDecideRatchetsObjectErrors(t *testing.T) {
	const (
		okEgress = `{"hosts":["./*"]}`
		// The three Istio accepts and the reference does not, seen in
		// about one in eight real-world Sidecars.
		bindNoPort     = `{"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`
		colonEndpoint  = `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"},"defaultEndpoint":":18082"}]}`
		noEndpoint     = `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"}}]}`
		twoBadListener = `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"}}],"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`
	)
	cases := []struct {
		name     string
		old, new string
		// want are the errors that still deny the UPDATE.
		want []errAtT
		// ratcheted are the paths admitted with a pre-dates warning.
		ratcheted []string
	}{
		{
			name: "egress bind without port, unchanged: admitted",
			old:  bindNoPort, new: bindNoPort,
			ratcheted: []string{"spec.egress[0].port"},
		},
		{
			name: "egress bind without port, another listener added after it: the old error is admitted, the new one at the same field (port-less not last) denies",
			old:  bindNoPort, new: `{"egress":[{"bind":"127.0.0.1","hosts":["./*"]},{"port":{"number":8080,"protocol":"HTTP","name":"h"},"hosts":["./*"]}]}`,
			want:      []errAtT{errAt(field.ErrorTypeForbidden, "spec.egress[0].port")},
			ratcheted: []string{"spec.egress[0].port"},
		},
		{
			name: "egress bind without port, moved to another index: judged anew",
			old:  bindNoPort, new: `{"egress":[{"port":{"number":8080,"protocol":"HTTP","name":"h"},"hosts":["./*"]},{"bind":"127.0.0.1","hosts":["./*"]}]}`,
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec.egress[1].port")},
		},
		{
			name: "egress bind without port, fixed: nothing to ratchet",
			old:  bindNoPort, new: `{"egress":[{"bind":"127.0.0.1","port":{"number":8080,"protocol":"HTTP","name":"h"},"hosts":["./*"]}]}`,
		},
		{
			name: "egress bind without port, hosts edited: admitted",
			old:  bindNoPort, new: `{"egress":[{"bind":"127.0.0.1","hosts":["./*","istio-system/*"]}]}`,
			ratcheted: []string{"spec.egress[0].port"},
		},
		{
			name: "defaultEndpoint :18082 unchanged, port protocol edited: admitted",
			old:  colonEndpoint, new: `{"ingress":[{"port":{"number":9080,"protocol":"HTTP2","name":"http"},"defaultEndpoint":":18082"}]}`,
			ratcheted: []string{"spec.ingress[0].defaultEndpoint"},
		},
		{
			name: "defaultEndpoint :18082 changed to :18083: the field changed, denied",
			old:  colonEndpoint, new: `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"},"defaultEndpoint":":18083"}]}`,
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.ingress[0].defaultEndpoint")},
		},
		{
			name: "defaultEndpoint :18082 removed: a new reason (Required), denied",
			old:  colonEndpoint, new: noEndpoint,
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec.ingress[0].defaultEndpoint")},
		},
		{
			name: "ingress without defaultEndpoint, port changed: admitted",
			old:  noEndpoint, new: `{"ingress":[{"port":{"number":9081,"protocol":"HTTP","name":"http"}}]}`,
			ratcheted: []string{"spec.ingress[0].defaultEndpoint"},
		},
		{
			name: "ingress without defaultEndpoint, a second listener without one added: the new one denies",
			old:  noEndpoint, new: `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"}},{"port":{"number":9081,"protocol":"HTTP","name":"b"}}]}`,
			want:      []errAtT{errAt(field.ErrorTypeRequired, "spec.ingress[1].defaultEndpoint")},
			ratcheted: []string{"spec.ingress[0].defaultEndpoint"},
		},
		{
			name: "two old errors kept, a new one added: only the new one denies",
			old:  twoBadListener, new: `{"ingress":[{"port":{"number":9080,"protocol":"HTTP","name":"http"}}],"egress":[{"bind":"127.0.0.1","hosts":["./*","nope"]}]}`,
			want:      []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].hosts[1]")},
			ratcheted: []string{"spec.ingress[0].defaultEndpoint", "spec.egress[0].port"},
		},
		{
			name: "invalid egress host kept: admitted",
			old:  `{"egress":[{"hosts":["./*","reviews"]}]}`, new: `{"egress":[{"hosts":["./*","reviews"]}],"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}`,
			ratcheted: []string{"spec.egress[0].hosts[1]"},
		},
		{
			name: "invalid egress host replaced by another invalid one: denied",
			old:  `{"egress":[{"hosts":["./*","reviews"]}]}`, new: `{"egress":[{"hosts":["./*","ratings"]}]}`,
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].hosts[1]")},
		},
		{
			name: "forbidden subjectAltNames edited: the error reads the same, but the field changed, denied",
			old:  `{"ingress":[{"port":{"number":9443,"protocol":"HTTPS","name":"https"},"defaultEndpoint":"127.0.0.1:8443","tls":{"mode":"SIMPLE","serverCertificate":"/c","privateKey":"/k","subjectAltNames":["a"]}}]}`,
			new:  `{"ingress":[{"port":{"number":9443,"protocol":"HTTPS","name":"https"},"defaultEndpoint":"127.0.0.1:8443","tls":{"mode":"SIMPLE","serverCertificate":"/c","privateKey":"/k","subjectAltNames":["b"]}}]}`,
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.ingress[0].tls.subjectAltNames")},
		},
		{
			name:      "forbidden subjectAltNames kept, certificate path edited: admitted",
			old:       `{"ingress":[{"port":{"number":9443,"protocol":"HTTPS","name":"https"},"defaultEndpoint":"127.0.0.1:8443","tls":{"mode":"SIMPLE","serverCertificate":"/c","privateKey":"/k","subjectAltNames":["a"]}}]}`,
			new:       `{"ingress":[{"port":{"number":9443,"protocol":"HTTPS","name":"https"},"defaultEndpoint":"127.0.0.1:8443","tls":{"mode":"SIMPLE","serverCertificate":"/c2","privateKey":"/k","subjectAltNames":["a"]}}]}`,
			ratcheted: []string{"spec.ingress[0].tls.subjectAltNames"},
		},
		{
			name: "TLS on an HTTP port, protocol changed to TCP: the same rule for another reason (the detail names TCP), denied",
			old:  `{"ingress":[{"port":{"number":9443,"protocol":"HTTP","name":"p"},"defaultEndpoint":"127.0.0.1:8443","tls":{"mode":"SIMPLE","serverCertificate":"/c","privateKey":"/k"}}]}`,
			new:  `{"ingress":[{"port":{"number":9443,"protocol":"TCP","name":"p"},"defaultEndpoint":"127.0.0.1:8443","tls":{"mode":"SIMPLE","serverCertificate":"/c","privateKey":"/k"}}]}`,
			want: []errAtT{errAt(field.ErrorTypeForbidden, "spec.ingress[0].tls")},
		},
		{
			name:      "duplicate ingress port kept: admitted",
			old:       `{"ingress":[{"port":{"number":80,"name":"a"},"defaultEndpoint":"127.0.0.1:80"},{"port":{"number":80,"name":"b"},"defaultEndpoint":"127.0.0.1:81"}]}`,
			new:       `{"ingress":[{"port":{"number":80,"name":"a"},"defaultEndpoint":"127.0.0.1:80"},{"port":{"number":80,"name":"b"},"defaultEndpoint":"127.0.0.1:82"}]}`,
			ratcheted: []string{"spec.ingress[1].port.number"},
		},
		{
			name:      "egress listener without port not last, kept: admitted",
			old:       `{"egress":[` + okEgress + `,{"port":{"number":80,"name":"h"},"hosts":["./*"]}]}`,
			new:       `{"egress":[` + okEgress + `,{"port":{"number":80,"name":"h"},"hosts":["./*","istio-system/*"]}]}`,
			ratcheted: []string{"spec.egress[0].port"},
		},
		{
			name: "workloadSelector without labels, kept: admitted",
			old:  `{"workloadSelector":{},"egress":[` + okEgress + `]}`, new: `{"workloadSelector":{},"egress":[{"hosts":["./*","istio-system/*"]}]}`,
			ratcheted: []string{"spec.workloadSelector.labels"},
		},
		{
			name: "empty connection pool kept: admitted",
			old:  `{"inboundConnectionPool":{},"egress":[` + okEgress + `]}`, new: `{"inboundConnectionPool":{},"egress":[{"hosts":["./*","istio-system/*"]}]}`,
			ratcheted: []string{"spec.inboundConnectionPool"},
		},
		{
			name:      "egressProxy with REGISTRY_ONLY kept: admitted",
			old:       `{"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY","egressProxy":{"host":"proxy.example.com","port":{"number":3128}}}}`,
			new:       `{"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY","egressProxy":{"host":"proxy.example.com","port":{"number":3128}}},"egress":[` + okEgress + `]}`,
			ratcheted: []string{"spec.outboundTrafficPolicy.egressProxy"},
		},
		{
			name: "an old problem fixed, a new one elsewhere: denied for the new one",
			old:  bindNoPort, new: `{"egress":[{"hosts":["nope"]}]}`,
			want: []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].hosts[0]")},
		},
		{
			name: "valid before, invalid now: denied",
			old:  `{"egress":[` + okEgress + `]}`, new: bindNoPort,
			want: []errAtT{errAt(field.ErrorTypeRequired, "spec.egress[0].port")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, s := ratchetSidecar(t, "legacy", tc.old), ratchetSidecar(t, "legacy", tc.new)
			got := Decide(s, old, nil, Options{Enforcement: EnforcementDeny})
			checkObjectErrors(t, got.Errors, tc.want)
			if diff := cmp.Diff(tc.ratcheted, predatesAt(got.Warnings), cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("ratcheted paths (-want +got):\n%s\nwarnings: %q", diff, got.Warnings.Strings())
			}
			// The same object created: every error denies, nothing ratchets.
			created := Decide(s, nil, nil, Options{Enforcement: EnforcementDeny})
			if len(created.Errors) != len(tc.want)+len(tc.ratcheted) {
				t.Errorf("CREATE of the new object: %d errors, want %d (%v)", len(created.Errors), len(tc.want)+len(tc.ratcheted), created.Errors)
			}
			if paths := predatesAt(created.Warnings); len(paths) > 0 {
				t.Errorf("CREATE ratcheted %v", paths)
			}
		})
	}
}

// TestRatchetWarningText pins what kubectl prints for a ratcheted error.
func TestRatchetWarningText(t *testing.T) {
	legacy := `{"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`
	got := Decide(ratchetSidecar(t, "legacy", legacy), ratchetSidecar(t, "legacy", legacy), nil, Options{Enforcement: EnforcementDeny})
	want := []string{"spec.egress[0].port: [SW0301] pre-dates this change (the stored Sidecar already has it, so it is admitted; a change to this field must fix it); " +
		"fix: Required value: a port is required when bind is set (use port number 0 with a unix:// bind)"}
	if diff := cmp.Diff(want, got.Warnings.Strings()); diff != "" || !got.Allowed() {
		t.Errorf("allowed=%v, warnings (-want +got):\n%s", got.Allowed(), diff)
	}
}

// TestDecideRatchetsConflicts: (old selector, new selector, existing
// Sidecars) and the verdict. An UPDATE that keeps its selector is admitted
// with a warning naming the other Sidecar; one that changes it is judged as
// a CREATE.
func TestDecideRatchetsConflicts(t *testing.T) {
	const (
		wide      = `{"egress":[{"hosts":["./*"]}]}`
		wideEdit  = `{"egress":[{"hosts":["./*","istio-system/*"]}]}`
		ratings   = `{"workloadSelector":{"labels":{"app":"ratings"}},"egress":[{"hosts":["./*"]}]}`
		ratingsV2 = `{"workloadSelector":{"labels":{"app":"ratings","version":"v2"}},"egress":[{"hosts":["./*"]}]}`
		ratingsEd = `{"workloadSelector":{"labels":{"app":"ratings"}},"egress":[{"hosts":["./*","istio-system/*"]}]}`
		reviews   = `{"workloadSelector":{"labels":{"app":"reviews"}},"egress":[{"hosts":["./*"]}]}`
		emptySel  = `{"workloadSelector":{},"egress":[{"hosts":["./*"]}]}`
		emptyEd   = `{"workloadSelector":{},"egress":[{"hosts":["./*","istio-system/*"]}]}`
		// legacyBad breaks a per-object rule that pre-dates the update.
		legacyBad   = `{"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`
		legacyBadEd = `{"egress":[{"bind":"127.0.0.1","hosts":["./*","istio-system/*"]}]}`
	)
	cases := []struct {
		name string
		// others are existing Sidecars in prod: name → spec.
		others   map[string]string
		old, new string
		// wantDenied: the UPDATE is denied for a conflict; otherwise it is
		// admitted and, when wantNamed is set, a pre-dates warning names
		// that Sidecar.
		wantDenied bool
		wantNamed  string
		// wantObjectRatchet: a per-object error was ratcheted too.
		wantObjectRatchet bool
	}{
		{name: "second namespace-wide Sidecar relabelled: admitted", others: map[string]string{"default": wide},
			old: wide, new: wide, wantNamed: "prod/default"},
		{name: "second namespace-wide Sidecar edited, still namespace-wide: admitted", others: map[string]string{"default": wide},
			old: wide, new: wideEdit, wantNamed: "prod/default"},
		{name: "identical selectors, listeners edited: admitted", others: map[string]string{"ratings-a": ratings},
			old: ratings, new: ratingsEd, wantNamed: "prod/ratings-a"},
		{name: "existing empty selector kept: admitted", others: map[string]string{"ratings-a": ratings},
			old: emptySel, new: emptyEd, wantNamed: "prod/ratings-a", wantObjectRatchet: true},
		{name: "selector narrowed into a conflict: denied", others: map[string]string{"ratings-a": ratings},
			old: reviews, new: ratingsV2, wantDenied: true},
		{name: "selector changed while in conflict: judged as today, denied", others: map[string]string{"ratings-a": ratings},
			old: ratings, new: ratingsV2, wantDenied: true},
		{name: "selector added that conflicts: denied", others: map[string]string{"ratings-a": ratings},
			old: wide, new: ratings, wantDenied: true},
		{name: "selector dropped next to a namespace-wide Sidecar: denied", others: map[string]string{"default": wide},
			old: ratings, new: wide, wantDenied: true},
		{name: "selector changed out of the conflict: admitted, nothing to ratchet", others: map[string]string{"ratings-a": ratings},
			old: ratings, new: reviews},
		{name: "only ratcheted per-object errors: conflicts still run, and ratchet", others: map[string]string{"default": wide},
			old: legacyBad, new: legacyBadEd, wantNamed: "prod/default", wantObjectRatchet: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			view := clusterview.NewMemory("istio-system")
			view.EnsureNamespaceLabelled("prod", map[string]string{"istio-injection": "enabled"})
			for name, spec := range tc.others {
				view.PutSidecar(clusterview.RefOf(ratchetSidecar(t, name, spec)))
			}
			old := ratchetSidecar(t, "legacy", tc.old)
			view.PutSidecar(clusterview.RefOf(old))
			s := ratchetSidecar(t, "legacy", tc.new)
			got := Decide(s, old, view, Options{Enforcement: EnforcementDeny})
			if got.Allowed() == tc.wantDenied {
				t.Fatalf("allowed=%v, want %v; errors %v; warnings %q", got.Allowed(), !tc.wantDenied, got.Errors, got.Warnings.Strings())
			}
			var named, objectRatchet bool
			for _, w := range got.Warnings {
				if !strings.HasPrefix(w.Message, "pre-dates this change (") {
					continue
				}
				if strings.HasPrefix(w.Path.String(), "spec.workloadSelector") && strings.Contains(w.Message, "keeps the workloadSelector") {
					named = named || (tc.wantNamed != "" && strings.Contains(w.Message, tc.wantNamed))
					continue
				}
				objectRatchet = true
			}
			if tc.wantNamed != "" && !named {
				t.Errorf("no pre-dates warning names %s: %q", tc.wantNamed, got.Warnings.Strings())
			}
			if tc.wantNamed == "" && !tc.wantDenied && len(predatesAt(got.Warnings)) > 0 && !tc.wantObjectRatchet {
				t.Errorf("unexpected pre-dates warnings: %q", got.Warnings.Strings())
			}
			if objectRatchet != tc.wantObjectRatchet {
				t.Errorf("per-object ratchet = %v, want %v: %q", objectRatchet, tc.wantObjectRatchet, got.Warnings.Strings())
			}
			// Created instead, the same object is denied whenever it
			// conflicts or breaks a rule.
			if tc.wantNamed != "" {
				if created := Decide(s, nil, view, Options{Enforcement: EnforcementDeny}); created.Allowed() {
					t.Errorf("CREATE of the same object was admitted")
				}
			}
		})
	}
}

// TestDecideRatchetingIgnoresEnforcement: in warn mode a pre-dating error is
// still reported as pre-dating, not as "would be denied", and a new one
// still as "would be denied".
func TestDecideRatchetingIgnoresEnforcement(t *testing.T) {
	old := ratchetSidecar(t, "legacy", `{"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`)
	s := ratchetSidecar(t, "legacy", `{"egress":[{"bind":"127.0.0.1","hosts":["./*","nope"]}]}`)
	for _, mode := range []Enforcement{EnforcementDeny, EnforcementWarn} {
		got := Decide(s, old, nil, Options{Enforcement: mode})
		if diff := cmp.Diff([]string{"spec.egress[0].port"}, predatesAt(got.Warnings)); diff != "" {
			t.Errorf("%s: ratcheted paths (-want +got):\n%s", mode, diff)
		}
		switch mode {
		case EnforcementDeny:
			checkObjectErrors(t, got.Errors, []errAtT{errAt(field.ErrorTypeInvalid, "spec.egress[0].hosts[1]")})
		case EnforcementWarn:
			if !got.Allowed() || !strings.Contains(strings.Join(got.Warnings.Strings(), "\n"), "would be denied (enforcement=warn): spec.egress[0].hosts[1]") {
				t.Errorf("warn: allowed=%v warnings %q", got.Allowed(), got.Warnings.Strings())
			}
		}
	}
}

func TestValueAt(t *testing.T) {
	root := map[string]any{"spec": map[string]any{
		"egress":           []any{map[string]any{"port": map[string]any{"number": 80.0}}},
		"workloadSelector": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": "x"}},
	}}
	cases := []struct {
		path   string
		want   any
		wantOK bool
	}{
		{path: "spec.egress[0].port.number", want: 80.0, wantOK: true},
		{path: "spec.workloadSelector.labels[app.kubernetes.io/name]", want: "x", wantOK: true},
		{path: "spec.egress[1].port", wantOK: false},
		{path: "spec.egress.port", wantOK: false},
		{path: "spec.ingress[0]", wantOK: false},
		{path: "spec.egress[0].port.number.x", wantOK: false},
		{path: "spec.egress[x]", wantOK: false},
		{path: "spec.egress[0", wantOK: false},
	}
	for _, tc := range cases {
		got, ok := valueAt(root, tc.path)
		if ok != tc.wantOK || !cmp.Equal(got, tc.want) {
			t.Errorf("valueAt(%q) = %v, %v; want %v, %v", tc.path, got, ok, tc.want, tc.wantOK)
		}
	}
}
