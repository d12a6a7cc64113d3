//go:build controlplane

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	"sigs.k8s.io/yaml"
)

// TestReferenceExamples applies each example of the Sidecar reference (all
// valid) as an administrator would, and checks that it is admitted, that
// defaulting filled in only what was absent, and that re-applying is quiet.
func TestReferenceExamples(t *testing.T) {
	t.Parallel()
	ensureNamespace(t, "istio-config")
	ensureNamespace(t, "prod-us1")

	cases := []struct {
		file string
		// ownNamespace moves the example to a fresh namespace.
		ownNamespace bool
		// check looks at the stored spec beyond "everything the file says
		// is still there".
		check func(t *testing.T, spec map[string]any)
	}{
		{
			file: "global-default.yaml",
			check: func(t *testing.T, spec map[string]any) {
				egress := listener(t, spec, "egress", 0)
				wantField(t, egress, "spec.egress[0]", "captureMode", "DEFAULT")
				wantField(t, egress, "spec.egress[0]", "bind", nil)
			},
		},
		{
			file: "prod-us1-default.yaml",
			check: func(t *testing.T, spec map[string]any) {
				wantField(t, listener(t, spec, "egress", 0), "spec.egress[0]", "captureMode", "DEFAULT")
			},
		},
		{
			file: "ratings.yaml",
			check: func(t *testing.T, spec map[string]any) {
				for i := range 2 {
					wantField(t, listener(t, spec, "ingress", i), fmt.Sprintf("spec.ingress[%d]", i), "captureMode", "DEFAULT")
					egress := listener(t, spec, "egress", i)
					wantField(t, egress, fmt.Sprintf("spec.egress[%d]", i), "captureMode", "DEFAULT")
					wantField(t, egress, fmt.Sprintf("spec.egress[%d]", i), "bind", nil)
				}
			},
		},
		{
			file: "no-ip-tables.yaml",
			check: func(t *testing.T, spec map[string]any) {
				// Both set by the user, and kept as written.
				egress := listener(t, spec, "egress", 0)
				wantField(t, egress, "spec.egress[0]", "bind", "127.0.0.1")
				wantField(t, egress, "spec.egress[0]", "captureMode", "NONE")
				wantField(t, listener(t, spec, "ingress", 0), "spec.ingress[0]", "captureMode", "NONE")
			},
		},
		{
			// partial-ip-tables selects app=productpage in prod-us1, as
			// no-ip-tables does. Two selector Sidecars for the same
			// workload are a conflict (validation/conflicts.go) that the
			// webhook denies, so this example gets a namespace of its
			// own: the test is about each example being valid on its own,
			// not about conflicts between them.
			file:         "partial-ip-tables.yaml",
			ownNamespace: true,
			check: func(t *testing.T, spec map[string]any) {
				ingress := listener(t, spec, "ingress", 0)
				wantField(t, ingress, "spec.ingress[0]", "bind", "172.16.1.32")
				wantField(t, ingress, "spec.ingress[0]", "captureMode", "NONE")
				egress := listener(t, spec, "egress", 0)
				wantField(t, egress, "spec.egress[0]", "captureMode", "IPTABLES")
				// No port and not NONE: nothing to bind.
				wantField(t, egress, "spec.egress[0]", "bind", nil)
			},
		},
	}
	dir := filepath.Join(env.root, "validation", "testdata", "reference")
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			manifest := string(data)
			var meta struct {
				Metadata struct{ Name, Namespace string }
			}
			if err := yaml.Unmarshal(data, &meta); err != nil {
				t.Fatal(err)
			}
			name, namespace := meta.Metadata.Name, meta.Metadata.Namespace
			if tc.ownNamespace {
				fresh := createNamespace(t, namespace)
				manifest = strings.Replace(manifest, "namespace: "+namespace+"\n", "namespace: "+fresh+"\n", 1)
				namespace = fresh
			}
			applyAndCheckQuiet(t, manifest, namespace, name, tc.check)
		})
	}
}

// TestDefaultBindForCaptureModeNone: an egress listener with captureMode
// NONE and a port but no bind is stored with bind 127.0.0.1, as the
// reference says; a port-less one gets no bind (a bind needs a port).
func TestDefaultBindForCaptureModeNone(t *testing.T) {
	t.Parallel()
	ns := createNamespace(t, "default-bind")
	manifest := sidecarManifest("networking.istio.io/v1", ns, "legacy", `
  workloadSelector:
    labels:
      app: legacy
  egress:
  - port:
      number: 8080
      protocol: HTTP
      name: http
    captureMode: NONE
    hosts:
    - "./*"
  - captureMode: NONE
    hosts:
    - "istio-system/*"`)
	applyAndCheckQuiet(t, manifest, ns, "legacy", func(t *testing.T, spec map[string]any) {
		withPort := listener(t, spec, "egress", 0)
		wantField(t, withPort, "spec.egress[0]", "bind", "127.0.0.1")
		wantField(t, withPort, "spec.egress[0]", "captureMode", "NONE")
		portless := listener(t, spec, "egress", 1)
		wantField(t, portless, "spec.egress[1]", "bind", nil)
		wantField(t, portless, "spec.egress[1]", "captureMode", "NONE")
	})
}

// applyAndCheckQuiet applies manifest, checks the stored object, then
// checks that applying it again changes nothing and that `kubectl diff`
// sees no drift: the defaults the webhook adds must not look like changes
// to GitOps tools.
func applyAndCheckQuiet(t *testing.T, manifest, namespace, name string, check func(*testing.T, map[string]any)) {
	t.Helper()
	t.Cleanup(func() {
		if _, stderr, err := kubectl(t, "", "delete", "sidecar", name, "-n", namespace, "--ignore-not-found", "--wait=false"); err != nil {
			t.Errorf("deleting Sidecar %s/%s: %v: %s", namespace, name, err, stderr)
		}
	})
	resource := "sidecar.networking.istio.io/" + name

	stdout, stderr, err := kubectl(t, manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v\nstderr:\n%s\nmanifest:\n%s", err, stderr, manifest)
	}
	if got, want := strings.TrimSpace(stdout), resource+" created"; got != want {
		t.Errorf("kubectl apply printed %q, want %q", got, want)
	}
	// Warnings are fine here: the cluster-aware ones (a namespace or
	// workload that does not exist in this empty cluster) are expected.
	for _, line := range scanLines(stderr) {
		if !strings.HasPrefix(line, "Warning: ") {
			t.Errorf("kubectl apply printed a line on stderr that is not a warning: %q", line)
		} else {
			t.Logf("kubectl apply: %s", line)
		}
	}

	stored := mustKubectl(t, "", "get", "sidecar", name, "-n", namespace, "-o", "yaml")
	spec := parseSpec(t, stored)
	// Defaulting only adds: everything the manifest says is stored as written.
	var written struct{ Spec map[string]any }
	if err := yaml.Unmarshal([]byte(manifest), &written); err != nil {
		t.Fatal(err)
	}
	if path, ok := contains(written.Spec, spec, "spec"); !ok {
		t.Errorf("stored object differs from the manifest at %s\nstored:\n%s", path, stored)
	}
	check(t, spec)
	if t.Failed() {
		t.Logf("stored object:\n%s", stored)
	}

	stdout, stderr, err = kubectl(t, manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("re-applying: %v\nstderr:\n%s", err, stderr)
	}
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(resource) + ` (unchanged|configured)$`).MatchString(strings.TrimSpace(stdout)) {
		t.Errorf("re-applying printed %q, want %q or %q", strings.TrimSpace(stdout), resource+" unchanged", resource+" configured")
	}

	stdout, stderr, err = kubectl(t, manifest, "diff", "-f", "-")
	if code := testenv.ExitCode(err); code != 0 || stdout != "" {
		t.Errorf("kubectl diff after apply: exit %d (want 0: no differences)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// wantField checks obj[key]; want nil means the key must be absent.
func wantField(t *testing.T, obj map[string]any, path, key string, want any) {
	t.Helper()
	got, ok := obj[key]
	switch {
	case want == nil && ok:
		t.Errorf("%s.%s = %v, want it absent", path, key, got)
	case want != nil && !ok:
		t.Errorf("%s.%s is absent, want %v", path, key, want)
	case want != nil && !reflect.DeepEqual(got, want):
		t.Errorf("%s.%s = %v, want %v", path, key, got, want)
	}
}

// contains reports whether got holds everything in want: every key of a
// map (got may have more), lists of the same length element by element,
// equal scalars. It returns the first path where they differ.
func contains(want, got any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return path + "." + k, false
			}
			if p, ok := contains(wv, gv, path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := contains(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, reflect.DeepEqual(want, got)
	}
}
