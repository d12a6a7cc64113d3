package validation

import (
	"strings"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidecar-webhook/sidecar-webhook/clusterview"
	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

// decideFixture is a namespace "team" that already has a namespace-wide
// Sidecar, so a second one breaks a conflict rule.
func decideFixture(nsLabels map[string]string) (*clusterview.Memory, *sidecar.Sidecar) {
	view := clusterview.NewMemory("istio-system")
	view.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: nsLabels}})
	view.PutSidecar(clusterview.SidecarRef{Namespace: "team", Name: "default"})
	second := &sidecar.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "second"}}
	second.Spec.Egress = []*networkingv1alpha3.IstioEgressListener{{Hosts: []string{"./*"}}}
	return view, second
}

func TestDecideEnforcement(t *testing.T) {
	warnLabel := map[string]string{NamespaceEnforcementLabel: "warn"}
	tests := []struct {
		name        string
		nsLabels    map[string]string
		opts        Options
		wantAllowed bool
	}{
		{name: "deny mode denies a conflict", opts: Options{Enforcement: EnforcementDeny}, wantAllowed: false},
		{name: "warn mode admits it with the reason as a warning", opts: Options{Enforcement: EnforcementWarn}, wantAllowed: true},
		{name: "namespace label ignored without the override flag", nsLabels: warnLabel,
			opts: Options{Enforcement: EnforcementDeny}, wantAllowed: false},
		{name: "namespace label honoured with the override flag", nsLabels: warnLabel,
			opts: Options{Enforcement: EnforcementDeny, AllowNamespaceOverride: true}, wantAllowed: true},
		{name: "other label values do not exempt", nsLabels: map[string]string{NamespaceEnforcementLabel: "off"},
			opts: Options{Enforcement: EnforcementDeny, AllowNamespaceOverride: true}, wantAllowed: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view, s := decideFixture(tt.nsLabels)
			got := Decide(s, nil, view, tt.opts)
			if got.Allowed() != tt.wantAllowed {
				t.Fatalf("Allowed() = %v, want %v (errors %v)", got.Allowed(), tt.wantAllowed, got.Errors)
			}
			if !tt.wantAllowed {
				return
			}
			found := false
			for _, w := range got.Warnings {
				if strings.HasPrefix(w.Message, "would be denied (enforcement=warn): ") && strings.Contains(w.Message, "team/default") {
					found = true
				}
			}
			if !found {
				t.Fatalf("an admitted-in-warn-mode conflict must be reported as a warning naming team/default; got %v", got.Warnings.Strings())
			}
		})
	}
}

func TestDecideSkipsClusterRulesForInvalidSidecars(t *testing.T) {
	view, s := decideFixture(nil)
	s.Spec.Egress[0].Hosts = []string{"no-slash"}
	got := Decide(s, nil, view, Options{Enforcement: EnforcementDeny})
	if len(got.Errors) != 1 || got.Errors[0].Field != "spec.egress[0].hosts[0]" {
		t.Fatalf("want only the per-object error on spec.egress[0].hosts[0], got %v", got.Errors)
	}
}

func TestDecideWithoutViewAppliesPerObjectRulesOnly(t *testing.T) {
	_, s := decideFixture(nil)
	if got := Decide(s, nil, nil, Options{Enforcement: EnforcementDeny}); !got.Allowed() {
		t.Fatalf("no view means no conflict rules; got %v", got.Errors)
	}
}
