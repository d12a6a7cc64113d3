//go:build controlplane

package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// sidecarVersions are the versions Istio's CRD serves; the webhooks are
// registered for all of them.
var sidecarVersions = []string{"v1alpha3", "v1beta1", "v1"}

// TestAPIVersions: the same Sidecar is judged the same way whichever
// version it is written in.
func TestAPIVersions(t *testing.T) {
	t.Parallel()
	ns := createNamespace(t, "versions")
	const field = "spec.ingress[0].defaultEndpoint"

	var mu sync.Mutex
	denials := map[string]string{} // version -> kubectl's stderr, name replaced
	t.Run("group", func(t *testing.T) {
		for _, version := range sidecarVersions {
			apiVersion := "networking.istio.io/" + version
			t.Run(version+"/invalid", func(t *testing.T) {
				t.Parallel()
				name := "invalid-" + version
				manifest := sidecarManifest(apiVersion, ns, name, `
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http`)
				_, stderr, err := kubectl(t, manifest, "apply", "-f", "-")
				if code := testenv.ExitCode(err); code <= 0 {
					t.Fatalf("kubectl apply: exit %d (%v), want a denial", code, err)
				}
				tc := denialCase{name: name, field: field}
				checkKubectlDenial(t, stderr, tc)
				status := apiCreate(t, manifest, false)
				if status == nil {
					t.Fatalf("the API server created %s, want a denial", name)
				}
				checkDenialStatus(t, status, tc)
				mu.Lock()
				denials[version] = strings.ReplaceAll(stderr, name, "NAME")
				mu.Unlock()
			})
			t.Run(version+"/valid", func(t *testing.T) {
				t.Parallel()
				name := "valid-" + version
				manifest := sidecarManifest(apiVersion, ns, name, `
  workloadSelector:
    labels:
      app: `+name+`
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
    defaultEndpoint: 127.0.0.1:8080`)
				stdout := mustKubectl(t, manifest, "apply", "-f", "-")
				if got, want := strings.TrimSpace(stdout), "sidecar.networking.istio.io/"+name+" created"; got != want {
					t.Errorf("kubectl apply printed %q, want %q", got, want)
				}
				// Read back in the same version: defaulted there too.
				stored := mustKubectl(t, "", "get", "sidecars."+version+".networking.istio.io", name, "-n", ns, "-o", "yaml")
				if !strings.Contains(stored, "apiVersion: "+apiVersion+"\n") {
					t.Errorf("kubectl get returned another version:\n%s", stored)
				}
				wantField(t, listener(t, parseSpec(t, stored), "ingress", 0), "spec.ingress[0]", "captureMode", "DEFAULT")
			})
		}
	})
	if t.Failed() {
		return
	}
	for _, version := range sidecarVersions[:len(sidecarVersions)-1] {
		if got, want := denials[version], denials["v1"]; got != want {
			t.Errorf("denial in %s differs from v1\n--- %s:\n%s\n--- v1:\n%s", version, version, got, want)
		}
	}
}
