package webhook_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// TestSidecarValidatorRatchets: the handler hands the decoded old object of
// an UPDATE to the rules. The cluster holds two namespace-wide Sidecars
// created before enforcement (prod/default and prod/second), second also
// with an egress bind without port.
func TestSidecarValidatorRatchets(t *testing.T) {
	const (
		wide       = `{"egress":[{"hosts":["./*"]}]}`
		legacy     = `{"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`
		legacyEd   = `{"egress":[{"bind":"127.0.0.1","hosts":["./*","istio-system/*"]}]}`
		legacyBad  = `{"egress":[{"bind":"127.0.0.1","hosts":["./*","nope"]}]}`
		legacyApp  = `{"workloadSelector":{"labels":{"app":"x"}},"egress":[{"bind":"127.0.0.1","hosts":["./*"]}]}`
		labelsOnly = `{"apiVersion":"networking.istio.io/v1","kind":"Sidecar","metadata":{"name":"second","namespace":"prod","labels":{"team":"payments"}},"spec":` + legacy + `}`
	)
	newView := func() clusterview.View {
		m := clusterview.NewMemory("istio-system")
		m.EnsureNamespaceLabelled("prod", map[string]string{"istio-injection": "enabled"})
		for name, spec := range map[string]string{"default": wide, "second": legacy} {
			s, errs := sidecar.Decode(sidecarJSON(name, spec))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			m.PutSidecar(clusterview.RefOf(s))
		}
		return m
	}
	cases := []struct {
		name        string
		op          admissionv1.Operation
		old         []byte
		object      []byte
		wantAllowed bool
		// wantErrorPaths are the paths the denial names.
		wantErrorPaths []string
		// wantPredates are substrings of the warnings, one per pre-dates
		// warning, in order.
		wantPredates []string
		wantConfirm  bool
	}{
		{
			name: "kubectl label: both old problems pre-date it",
			op:   admissionv1.Update, old: sidecarJSON("second", legacy), object: []byte(labelsOnly),
			wantAllowed:  true,
			wantPredates: []string{"spec.egress[0].port: [SW0301] pre-dates this change", "spec.workloadSelector: [SW1001] pre-dates this change (this update keeps the workloadSelector"},
		},
		{
			name: "listener edit keeping the old error",
			op:   admissionv1.Update, old: sidecarJSON("second", legacy), object: sidecarJSON("second", legacyEd),
			wantAllowed:  true,
			wantPredates: []string{"spec.egress[0].port: [SW0301] pre-dates this change", "prod/default"},
		},
		{
			name: "edit adding a new error: denied for it alone",
			op:   admissionv1.Update, old: sidecarJSON("second", legacy), object: sidecarJSON("second", legacyBad),
			wantErrorPaths: []string{"spec.egress[0].hosts[1]"},
			wantPredates:   []string{"spec.egress[0].port: [SW0301] pre-dates this change"},
		},
		{
			name: "edit dropping the selector into a new conflict: denied",
			op:   admissionv1.Update, old: sidecarJSON("second", legacyApp), object: sidecarJSON("second", legacy),
			wantErrorPaths: []string{"spec.workloadSelector"},
			wantPredates:   []string{"spec.egress[0].port: [SW0301] pre-dates this change"},
			wantConfirm:    true,
		},
		{
			name: "the same object created: denied for everything",
			op:   admissionv1.Create, object: sidecarJSON("third", legacy),
			wantErrorPaths: []string{"spec.egress[0].port"},
		},
		{
			name: "an old object that cannot be decoded: judged as a CREATE",
			op:   admissionv1.Update, old: []byte(`{"spec":{"egress":[{"hostz":[]}]}}`), object: sidecarJSON("second", legacy),
			wantErrorPaths: []string{"spec.egress[0].port"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster := &countingCluster{cached: newView(), live: newView()}
			v := &webhook.SidecarValidator{Cluster: cluster, Options: validation.Options{Enforcement: validation.EnforcementDeny}}
			req := sidecarReq(tc.op, "v1", tc.object)
			req.OldObject = runtime.RawExtension{Raw: tc.old}
			resp := v.Handle(context.Background(), req)
			if resp.Allowed != tc.wantAllowed {
				t.Fatalf("allowed=%v, want %v: %v; warnings %q", resp.Allowed, tc.wantAllowed, resp.Result, resp.Warnings)
			}
			if !tc.wantAllowed {
				if diff := cmp.Diff(tc.wantErrorPaths, causePaths(resp)); diff != "" {
					t.Errorf("denied paths (-want +got):\n%s\n%s", diff, resp.Result.Message)
				}
			}
			var predates []string
			for _, w := range resp.Warnings {
				if strings.Contains(w, "pre-dates this change") {
					predates = append(predates, w)
				}
			}
			if len(predates) != len(tc.wantPredates) {
				t.Fatalf("pre-dates warnings %q, want %d", predates, len(tc.wantPredates))
			}
			for i, want := range tc.wantPredates {
				if !strings.Contains(predates[i], want) {
					t.Errorf("warning %q does not contain %q", predates[i], want)
				}
			}
			if got := cluster.confirms > 0; got != tc.wantConfirm && tc.op == admissionv1.Update && tc.wantAllowed {
				t.Errorf("confirming reads %d, want %v", cluster.confirms, tc.wantConfirm)
			}
		})
	}
}
