package oracle

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	networking "istio.io/api/networking/v1alpha3"
)

func TestValidateSidecar(t *testing.T) {
	cases := []struct {
		name    string
		spec    *networking.Sidecar
		errSub  string
		warnSub string
	}{
		{name: "egress all", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}}}},
		{name: "nothing configured", spec: &networking.Sidecar{}, errSub: "empty configuration"},
		{name: "selector without labels warns",
			spec: &networking.Sidecar{
				WorkloadSelector: &networking.WorkloadSelector{},
				Egress:           []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}},
			}, warnSub: "workload selector"},
		{name: "bad host", spec: &networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"foo"}}}}, errSub: "host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := ValidateSidecar("app", "s", tc.spec)
			if (tc.errSub == "") != (err == "") || !strings.Contains(err, tc.errSub) {
				t.Errorf("error %q, want one containing %q", err, tc.errSub)
			}
			if (tc.warnSub == "") != (warn == "") || !strings.Contains(warn, tc.warnSub) {
				t.Errorf("warning %q, want one containing %q", warn, tc.warnSub)
			}
		})
	}
}

// TestIstioSidecarValidationTable loads Istio's own TestValidateSidecar
// table from the istio.io/istio module and checks that Istio's
// ValidateSidecar agrees with every interpreted case, which validates the
// interpreter.
func TestIstioSidecarValidationTable(t *testing.T) {
	cases, skipped, err := LoadIstioSidecarCases()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("TestValidateSidecar: %d cases interpreted, %d skipped", len(cases), len(skipped))
	for _, s := range skipped {
		t.Logf("skipped %q: %s", s.Name, s.Reason)
	}
	if len(cases) < 50 {
		t.Fatalf("only %d cases interpreted", len(cases))
	}
	var valid, warned, nonEmpty int
	for _, c := range cases {
		if c.Valid {
			valid++
		}
		if c.Warning {
			warned++
		}
		if c.Sidecar != nil && proto.Size(c.Sidecar) > 0 {
			nonEmpty++
		}
	}
	t.Logf("%d valid, %d invalid, %d with warnings, %d non-empty inputs", valid, len(cases)-valid, warned, nonEmpty)
	if valid == 0 || valid == len(cases) || warned == 0 || nonEmpty < len(cases)-5 {
		t.Fatalf("implausible table: %d valid of %d, %d warnings, %d non-empty", valid, len(cases), warned, nonEmpty)
	}
	for _, c := range cases {
		warn, err := ValidateSidecar("bar", "foo", c.Sidecar)
		if (err == "") != c.Valid {
			t.Errorf("%s: valid=%v, table says %v (%s)", c.Name, err == "", c.Valid, err)
		}
		if (warn != "") != c.Warning {
			t.Errorf("%s: warning=%v, table says %v (%s)", c.Name, warn != "", c.Warning, warn)
		}
	}
}
