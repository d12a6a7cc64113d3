//go:build controlplane

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// parityFiles are applied in this (lexical) order; {{NS}} is the test's
// namespace. The Deployment has no replicas: pods created by the
// controller manager would be workloads the offline checker cannot know.
var parityFiles = []struct {
	file     string
	manifest string
	// allowed is the decision both must make (a Sidecar), or nil (not a
	// Sidecar: must simply be applied).
	allowed *bool
}{
	{file: "00-namespace.yaml", manifest: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{NS}}\n  labels:\n    istio-injection: enabled\n"},
	{file: "01-deployment.yaml", manifest: deploymentManifest(nsPlaceholder, "web", 0, map[string]string{"app": "web", "tier": "front"})},
	{file: "02-default.yaml", manifest: wideSidecar("default"), allowed: ptrTo(true)},
	{file: "03-second-namespace-wide.yaml", manifest: wideSidecar("extra"), allowed: ptrTo(false)},
	{file: "04-by-app.yaml", manifest: selectorSidecar("by-app", "app", "web"), allowed: ptrTo(true)},
	{file: "05-by-tier.yaml", manifest: selectorSidecar("by-tier", "tier", "front"), allowed: ptrTo(false)},
	{file: "06-invalid.yaml", allowed: ptrTo(false), manifest: sidecarManifest("networking.istio.io/v1", nsPlaceholder, "api", `
  workloadSelector:
    labels:
      app: api
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http`)},
	{file: "07-several-errors.yaml", allowed: ptrTo(false), manifest: sidecarManifest("networking.istio.io/v1", nsPlaceholder, "api2", `
  workloadSelector:
    labels:
      app: api2
  ingress:
  - port:
      number: 9080
      protocol: HTTP
      name: http
  egress:
  - hosts:
    - reviews.prod.svc.cluster.local`)},
	// api was denied above, so this one, under the same name, is a create
	// and conflicts with nothing.
	{file: "08-api.yaml", manifest: selectorSidecar("api", "app", "api"), allowed: ptrTo(true)},
	{file: "09-api-v2.yaml", manifest: selectorSidecar("api-v2", "app", "api", "version", "v2"), allowed: ptrTo(false)},
	// An edit of by-app that keeps its selector: an update.
	{file: "10-by-app-edit.yaml", manifest: strings.Replace(selectorSidecar("by-app", "app", "web"), `    - "./*"`, "    - \"./*\"\n    - \"~/*\"", 1), allowed: ptrTo(true)},
}

func ptrTo[T any](v T) *T { return &v }

// TestCheckParity: `sidecar-webhook check` decides a directory of manifests
// offline as the live webhook decides the same files applied one by one in
// the same order: the same Sidecars allowed and denied, each denial with
// the same message (after the API server's "admission webhook ... denied
// the request: " prefix), the same warnings.
func TestCheckParity(t *testing.T) {
	t.Parallel()
	ns := "parity-" + randomSuffix(t)
	dir := t.TempDir()
	for _, f := range parityFiles {
		if err := os.WriteFile(filepath.Join(dir, f.file), []byte(withNamespace(f.manifest, ns)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { kubectl(t, "", "delete", "namespace", ns, "--wait=false", "--ignore-not-found") })

	// Offline.
	cmd := exec.Command(filepath.Join(env.root, "bin", "sidecar-webhook"), "check", "-o", "json", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := testenv.ExitCode(err); code != 1 {
		t.Fatalf("check: exit %d (%v), want 1 (some Sidecars denied)\nstderr:\n%s", code, err, stderr.String())
	}
	var decisions []struct {
		Name, File, Message string
		Allowed             bool
		Warnings            []string
	}
	if err := json.Unmarshal(stdout.Bytes(), &decisions); err != nil {
		t.Fatalf("check -o json: %v\n%s", err, stdout.String())
	}
	offline := map[string]int{} // file → index in decisions
	for i, d := range decisions {
		offline[filepath.Base(d.File)] = i
	}

	// Live, one file at a time.
	for _, f := range parityFiles {
		path := filepath.Join(dir, f.file)
		if f.allowed == nil {
			mustKubectl(t, "", "apply", "-f", path)
			if strings.Contains(f.manifest, "kind: Deployment") {
				waitWebhookSeesWorkload(t, ns, "tier", "front")
			}
			continue
		}
		i, ok := offline[f.file]
		if !ok {
			t.Errorf("%s: check made no decision on it:\n%s", f.file, stdout.String())
			continue
		}
		d := decisions[i]
		liveOut, liveErr, err := kubectl(t, "", "apply", "-f", path)
		liveAllowed := err == nil
		if testenv.ExitCode(err) < 0 {
			t.Fatalf("%s: kubectl apply: %v", f.file, err)
		}
		switch {
		case liveAllowed != d.Allowed:
			t.Errorf("%s: offline allowed=%v, live allowed=%v\noffline: %s\nlive: %s%s", f.file, d.Allowed, liveAllowed, d.Message, liveOut, liveErr)
		case liveAllowed != *f.allowed:
			t.Errorf("%s: both allowed=%v, want %v\nlive: %s%s", f.file, liveAllowed, *f.allowed, liveOut, liveErr)
		case !liveAllowed && !strings.Contains(liveErr, deniedByWebhook+": "+d.Message+"\n"):
			t.Errorf("%s: the live denial does not end with the offline message\noffline:\n%s\nlive:\n%s", f.file, d.Message, liveErr)
		}
		var liveWarnings []string
		for _, line := range scanLines(liveErr) {
			if w, ok := strings.CutPrefix(line, "Warning: "); ok {
				liveWarnings = append(liveWarnings, w)
			}
		}
		offlineWarnings := slices.Clone(d.Warnings)
		slices.Sort(offlineWarnings)
		slices.Sort(liveWarnings)
		if !slices.Equal(offlineWarnings, liveWarnings) {
			t.Errorf("%s: warnings differ\noffline:\n  %s\nlive:\n  %s", f.file, strings.Join(offlineWarnings, "\n  "), strings.Join(liveWarnings, "\n  "))
		}
	}
}

// waitWebhookSeesWorkload waits until the webhook's caches hold a workload
// in ns carrying key=value: a dry-run Sidecar selecting it no longer gets
// the "selects no workload" warning.
func waitWebhookSeesWorkload(t *testing.T, ns, key, value string) {
	t.Helper()
	probe := withNamespace(selectorSidecar("cache-probe", key, value), ns)
	waitUntil(t, cacheTimeout, "the webhook to see a workload with "+key+"="+value, func() (bool, string) {
		_, stderr, err := kubectl(t, probe, "apply", "--dry-run=server", "-f", "-")
		if err != nil && !strings.Contains(stderr, deniedByWebhook) {
			t.Fatalf("dry-run apply: %v\n%s", err, stderr)
		}
		return !strings.Contains(stderr, "selects no workload"), stderr
	})
}
