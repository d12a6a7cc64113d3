//go:build controlplane

package e2e

import (
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// TestServerDryRun: `kubectl apply --dry-run=server` must give the same
// answer as the real request, and have no side effect.
func TestServerDryRun(t *testing.T) {
	t.Parallel()
	ns := createNamespace(t, "dry-run")

	t.Run("invalid is denied as by a real apply", func(t *testing.T) {
		t.Parallel()
		// Two broken listeners: the whole list of causes must match.
		manifest := sidecarManifest("networking.istio.io/v1", ns, "invalid", `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
  egress:
  - hosts:
    - reviews.prod.svc.cluster.local`)

		_, dryStderr, err := kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-")
		if code := testenv.ExitCode(err); code <= 0 {
			t.Fatalf("kubectl apply --dry-run=server: exit %d (%v), want a denial", code, err)
		}
		_, realStderr, err := kubectl(t, manifest, "apply", "-f", "-")
		if code := testenv.ExitCode(err); code <= 0 {
			t.Fatalf("kubectl apply: exit %d (%v), want a denial", code, err)
		}
		if got, want := strings.ReplaceAll(dryStderr, " (server dry run)", ""), realStderr; got != want {
			t.Errorf("dry run and real apply are denied differently\n--- dry run:\n%s\n--- real:\n%s", dryStderr, realStderr)
		}
		for _, field := range []string{"spec.ingress[0].defaultEndpoint", "spec.egress[0].hosts[0]"} {
			if !strings.Contains(dryStderr, field+": ") {
				t.Errorf("the dry-run denial does not name %s:\n%s", field, dryStderr)
			}
		}

		dry, real := apiCreate(t, manifest, true), apiCreate(t, manifest, false)
		if dry == nil || real == nil {
			t.Fatalf("admitted (dry run: %v, real: %v), want both denied", dry == nil, real == nil)
		}
		if !strings.Contains(dry.Message, deniedByWebhook) {
			t.Errorf("the dry-run denial does not come from our webhook: %s", dry.Message)
		}
		if dry.Code != real.Code || dry.Reason != real.Reason || dry.Message != real.Message {
			t.Errorf("API answers differ\n--- dry run: %d %s: %s\n--- real:    %d %s: %s",
				dry.Code, dry.Reason, dry.Message, real.Code, real.Reason, real.Message)
		}
	})

	t.Run("valid is admitted without being stored", func(t *testing.T) {
		t.Parallel()
		manifest := sidecarManifest("networking.istio.io/v1", ns, "valid", `
  egress:
  - hosts:
    - "./*"
    - istio-system/*`)

		stdout := mustKubectl(t, manifest, "apply", "--dry-run=server", "-f", "-")
		if got, want := strings.TrimSpace(stdout), "sidecar.networking.istio.io/valid created (server dry run)"; got != want {
			t.Errorf("kubectl apply --dry-run=server printed %q, want %q", got, want)
		}
		// The mutating webhook runs on dry runs too: the answer shows the
		// object as it would be stored.
		spec := parseSpec(t, mustKubectl(t, manifest, "apply", "--dry-run=server", "-o", "yaml", "-f", "-"))
		wantField(t, listener(t, spec, "egress", 0), "spec.egress[0]", "captureMode", "DEFAULT")

		_, stderr, err := kubectl(t, "", "get", "sidecar", "valid", "-n", ns)
		if err == nil || !strings.Contains(stderr, "NotFound") {
			t.Errorf("kubectl get after a dry run: err %v, stderr %q; want NotFound", err, stderr)
		}
	})
}
