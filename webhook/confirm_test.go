package webhook_test

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/validation"
	"github.com/sidecar-webhook/sidecar-webhook/webhook"
)

// countingCluster serves a cached view and, on Confirm, what the API server
// would answer now (live); it counts the confirming reads.
type countingCluster struct {
	cached, live clusterview.View
	confirms     int
	// err, if set, is what the API server answers.
	err error
}

func (c *countingCluster) View(context.Context) (clusterview.View, error) { return c.cached, nil }

func (c *countingCluster) Confirm(context.Context, clusterview.View, string) (clusterview.View, error) {
	c.confirms++
	if c.err != nil {
		return nil, c.err
	}
	return c.live, nil
}

// TestSidecarValidatorConfirmsOnlySelectorChanges: the confirming read is
// made for every CREATE and for an UPDATE that changes what the Sidecar
// selects, and skipped for an UPDATE that keeps its selector. The live view
// holds a Sidecar the cache has not seen yet, so a skipped read would admit
// a CREATE that conflicts with it.
func TestSidecarValidatorConfirmsOnlySelectorChanges(t *testing.T) {
	ratings := `{"workloadSelector":{"labels":{"app":"ratings"}},"egress":[{"hosts":["./*"]}]}`
	ratingsV2 := `{"workloadSelector":{"labels":{"app":"ratings","version":"v2"}},"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}`
	reviews := `{"workloadSelector":{"labels":{"app":"reviews"}},"egress":[{"hosts":["./*"]}]}`
	namespaceWide := `{"egress":[{"hosts":["./*"]}]}`

	newView := func(withUnseen bool) clusterview.View {
		m := clusterview.NewMemory("istio-system")
		m.EnsureNamespace("prod")
		if withUnseen {
			s, errs := sidecar.Decode(sidecarJSON("just-admitted-elsewhere", `{"workloadSelector":{"labels":{"app":"details"}},"egress":[{"hosts":["./*"]}]}`))
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
		old, object string
		wantConfirm bool
	}{
		{name: "create", op: admissionv1.Create, object: ratings, wantConfirm: true},
		{name: "update keeping the selector", op: admissionv1.Update, old: ratings, object: `{"workloadSelector":{"labels":{"app":"ratings"}},"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}`},
		{name: "update of a namespace-wide Sidecar that stays one", op: admissionv1.Update, old: namespaceWide, object: `{"egress":[{"hosts":["./*","istio-system/*"]}]}`},
		{name: "update narrowing the selector", op: admissionv1.Update, old: ratings, object: ratingsV2, wantConfirm: true},
		{name: "update selecting other labels", op: admissionv1.Update, old: ratings, object: reviews, wantConfirm: true},
		{name: "update dropping the selector", op: admissionv1.Update, old: ratings, object: namespaceWide, wantConfirm: true},
		{name: "update adding a selector", op: admissionv1.Update, old: namespaceWide, object: ratings, wantConfirm: true},
		{name: "update with an unreadable old object", op: admissionv1.Update, old: `not json`, object: ratings, wantConfirm: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cluster := &countingCluster{cached: newView(false), live: newView(true)}
			v := &webhook.SidecarValidator{Cluster: cluster, Options: validation.Options{Enforcement: validation.EnforcementDeny}}
			req := sidecarReq(tc.op, "v1", sidecarJSON("ratings", tc.object))
			if tc.old != "" {
				req.OldObject = runtime.RawExtension{Raw: sidecarJSON("ratings", tc.old)}
			}
			resp := v.Handle(context.Background(), req)
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			if got := cluster.confirms == 1; got != tc.wantConfirm || cluster.confirms > 1 {
				t.Errorf("confirming reads = %d, want %v", cluster.confirms, tc.wantConfirm)
			}
		})
	}

	// The read is what catches a Sidecar the cache has not seen: here the
	// live view holds one selecting the same workloads.
	cached := newView(false)
	live := clusterview.NewMemory("istio-system")
	live.EnsureNamespace("prod")
	other, errs := sidecar.Decode(sidecarJSON("ratings-elsewhere", ratings))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	live.PutSidecar(clusterview.RefOf(other))
	v := &webhook.SidecarValidator{Cluster: &countingCluster{cached: cached, live: live}, Options: validation.Options{Enforcement: validation.EnforcementDeny}}
	if resp := v.Handle(context.Background(), sidecarReq(admissionv1.Create, "v1", sidecarJSON("ratings", ratings))); resp.Allowed {
		t.Errorf("a CREATE conflicting with a Sidecar only the API server has was admitted")
	}
}
