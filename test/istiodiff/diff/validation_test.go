package diff

import (
	"fmt"
	"math/rand"
	"testing"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/sidecar-webhook/sidecar-webhook/test/istiodiff/oracle"
)

// compareValidation records the comparison of Istio's validation and the
// project's admission path on one Sidecar.
func compareValidation(rec *recorder, label, namespace, name string, spec *networking.Sidecar) (allowed []string) {
	raw, err := sidecarJSON(namespace, name, spec)
	if err != nil {
		rec.disagree("cannot write the Sidecar as JSON", fmt.Sprintf("%s: %v", label, err))
		return nil
	}
	istioAdmits, istioText := istioDecision(namespace, name, spec)
	ours := projectAdmission(raw)
	if istioAdmits {
		rec.count("istio admits")
	} else {
		rec.count("istio rejects")
	}
	agree, allowed, kind := validationVerdict(spec, istioAdmits, ours)
	switch {
	case agree:
		rec.ok()
	case kind == "":
		rec.allowAll(allowed)
		return allowed
	default:
		rec.disagree(kind, fmt.Sprintf("%s\n  Sidecar %s/%s spec %s\n  istio:   %s\n  project: %s", label, namespace, name, compactJSON(raw), istioText, ours))
	}
	return nil
}

// TestIstioValidationTable runs every case of Istio's own
// TestValidateSidecar table (read from the istio.io/istio module at run
// time) through the project's admission path.
func TestIstioValidationTable(t *testing.T) {
	cases, skipped, err := oracle.LoadIstioSidecarCases()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		t.Errorf("Istio's table row %q could not be interpreted, so it is not compared: %s", s.Name, s.Reason)
	}
	if len(cases) < 70 {
		t.Fatalf("only %d cases read from Istio's table", len(cases))
	}
	rec := newRecorder(t, "Istio's TestValidateSidecar table", 0)
	defer rec.finish()
	for _, c := range cases {
		// The oracle must reproduce the table's own expectation, or the
		// interpretation of the row is wrong.
		warning, verr := oracle.ValidateSidecar("bar", "foo", c.Sidecar)
		if (verr == "") != c.Valid || (warning != "") != c.Warning {
			t.Errorf("row %q: Istio's ValidateSidecar says error %q warning %q, the table expects valid=%v warning=%v", c.Name, verr, warning, c.Valid, c.Warning)
			continue
		}
		// Istio's test validates the Sidecar as bar/foo.
		if allowed := compareValidation(rec, fmt.Sprintf("Istio table row %q", c.Name), "bar", "foo", c.Sidecar); allowed != nil {
			t.Logf("row %q: Istio admits, the project denies, allowed by %v", c.Name, allowed)
		}
	}
}

// TestGeneratedValidation compares the two over generated Sidecars:
// mutations of valid ones (hosts, ports, binds, capture modes, protocols,
// port names, endpoints, TLS, connection pools, selectors, outbound
// policy, structure).
func TestGeneratedValidation(t *testing.T) {
	seed := seedFor(t, 4004)
	n := scaled(t, 4000)
	rec := newRecorder(t, "generated Sidecars through validation", seed)
	defer rec.finish()
	for i := 0; i < n; i++ {
		r := rand.New(rand.NewSource(seed*1_000_003 + int64(i)))
		spec, applied := genMutatedSidecar(r)
		if len(applied) == 0 {
			rec.count("unmutated base")
		}
		compareValidation(rec, fmt.Sprintf("case #%d, mutations %q", i, applied), "prod", "s", spec)
	}
}
