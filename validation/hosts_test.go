package validation

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// longDNSName builds a DNS name of exactly n characters (n >= 193) out of
// valid labels, to probe the 255-character limit.
func longDNSName(n int) string {
	label := strings.Repeat("a", 63)
	prefix := label + "." + label + "." + label + "." + strings.Repeat("c", 60) + "."
	return prefix + strings.Repeat("b", n-len(prefix))
}

func TestValidateEgressHost(t *testing.T) {
	valid := []string{
		"*/*",
		"./*",
		"~/*",
		"istio-system/*",
		"prod-us1/*",
		"*/mysql.foo.com",
		"./reviews.prod.svc.cluster.local",
		"prod/*.example.com",
		"prod/foo.example.com.",
		"prod/" + strings.Repeat("a", 63) + ".com",
		"prod/" + longDNSName(255),
		// Exclusions (istio.io/api v1.32).
		"~prod-us2/*",
		"~prod-apis/foo.example.com",
		"~/bar.example.com",
		"~./foo.example.com",
		"~*/foo.example.com",
		// Istio's DNS labels allow upper case.
		"Prod/foo.com",
		"prod/Foo.com",
		"prod/*.",
	}
	invalid := []string{
		"reviews.prod.svc.cluster.local", // no namespace
		"*",
		"",
		"prod/",
		"/foo.com",
		"prod_ns/foo.com",
		"~~prod/*",
		"~prod_ns/*",
		"prod/reviews",  // a short name: not fully qualified
		"~prod/reviews", // exclusions follow the same rules
		"*/foo",
		"**/foo.com",
		"prod/foo.*.com",
		"prod/f*o.com",
		"prod/*foo.com",
		"prod/*.*.com",
		"prod/foo.com/*",
		"prod/foo..com",
		"prod/-foo.com",
		"prod/10.0.0.1",
		"prod/" + strings.Repeat("a", 64) + ".com",
		"prod/" + longDNSName(256),
		"prod/foo.com..",
	}
	path := field.NewPath("hosts").Index(0)
	for _, h := range valid {
		t.Run("valid "+h, func(t *testing.T) {
			checkObjectErrors(t, validateEgressHost(h, path), nil)
		})
	}
	for _, h := range invalid {
		t.Run("invalid "+h, func(t *testing.T) {
			checkObjectErrors(t, validateEgressHost(h, path), []errAtT{errAt(field.ErrorTypeInvalid, "hosts[0]")})
		})
	}
	t.Run("bad namespace and bad name are both reported", func(t *testing.T) {
		checkObjectErrors(t, validateEgressHost("ba_d/foo.*.com", path), []errAtT{
			errAt(field.ErrorTypeInvalid, "hosts[0]"),
			errAt(field.ErrorTypeInvalid, "hosts[0]"),
		})
	})
}

func TestValidateEgressHostsWarnings(t *testing.T) {
	const everyHost = "`*/*` already selects every host; the other hosts in this listener have no effect"
	cases := []struct {
		name  string
		hosts []string
		want  []errAtT
		warns []warnAtT
	}{
		{name: "required", hosts: nil, want: []errAtT{errAt(field.ErrorTypeRequired, "hosts")}},
		{name: "empty list", hosts: []string{}, want: []errAtT{errAt(field.ErrorTypeRequired, "hosts")}},
		{name: "distinct hosts", hosts: []string{"a/x.com", "a/y.com", "b/x.com", "./*"}},
		{
			name:  "same host twice",
			hosts: []string{"a/x.com", "a/x.com"},
			warns: []warnAtT{{Path: "hosts[1]", Msg: `duplicated egress host "a/x.com"`}},
		},
		{
			name:  "dot resolves to the Sidecar namespace",
			hosts: []string{objNamespace + "/x.com", "./x.com"},
			warns: []warnAtT{{Path: "hosts[1]", Msg: `duplicated egress host "./x.com"`}},
		},
		{
			name:  "host after ns/*",
			hosts: []string{"a/*", "a/x.com"},
			warns: []warnAtT{{Path: "hosts[1]", Msg: `duplicated egress host "a/x.com"`}},
		},
		{
			name:  "ns/* after a host of that namespace",
			hosts: []string{"a/x.com", "b/*", "a/*"},
			warns: []warnAtT{{Path: "hosts[2]", Msg: `duplicated egress host "a/*"`}},
		},
		{
			name:  "*/* with hosts of other namespaces",
			hosts: []string{"*/*", "istio-system/*"},
			warns: []warnAtT{{Path: "hosts", Msg: everyHost}},
		},
		{
			name:  "*/* with */x is a duplicate, not a mix",
			hosts: []string{"*/*", "*/x.com"},
			warns: []warnAtT{{Path: "hosts[1]", Msg: `duplicated egress host "*/x.com"`}},
		},
		{
			name:  "exclusions are no duplicates and do not mix with */*",
			hosts: []string{"*/*", "~prod-us2/*", "~prod-apis/foo.example.com", "~/bar.example.com", "~prod-us2/*"},
		},
		{
			name:  "invalid hosts still count for duplicates",
			hosts: []string{"a/foo.*.com", "a/foo.*.com"},
			want: []errAtT{
				errAt(field.ErrorTypeInvalid, "hosts[0]"),
				errAt(field.ErrorTypeInvalid, "hosts[1]"),
			},
			warns: []warnAtT{{Path: "hosts[1]", Msg: `duplicated egress host "a/foo.*.com"`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warns := validateEgressHosts(tc.hosts, objNamespace, field.NewPath("hosts"))
			checkObjectErrors(t, errs, tc.want)
			checkObjectWarnings(t, warns, tc.warns)
		})
	}
}
