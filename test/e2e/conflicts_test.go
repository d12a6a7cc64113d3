//go:build controlplane

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// nsPlaceholder in a manifest or an expected message stands for the test's
// namespace.
const nsPlaceholder = "{{NS}}"

// cacheTimeout bounds waiting for the webhook's informer caches (and the
// reconciler) to catch up with objects just created.
const cacheTimeout = 20 * time.Second

// conflictCase is a Sidecar denied because of what already exists in its
// namespace.
type conflictCase struct {
	name string // the golden file's name and the namespace's prefix
	// setup are manifests applied (and admitted) first, in order.
	setup []string
	// denied is the Sidecar that must be denied.
	denied string
	// want are substrings the denial must contain.
	want []string
}

// conflictCases cover each uniqueness rule of validation/conflicts.go as an
// administrator meets it.
var conflictCases = []conflictCase{
	{
		name:   "second-namespace-wide",
		setup:  []string{wideSidecar("default")},
		denied: wideSidecar("second"),
		want: []string{
			`spec.workloadSelector: Forbidden: [SW1001] namespace "{{NS}}" already has a Sidecar without workloadSelector: {{NS}}/default`,
		},
	},
	{
		name:   "identical-selectors",
		setup:  []string{selectorSidecar("first", "app", "web")},
		denied: selectorSidecar("second", "app", "web"),
		want:   []string{"Sidecar {{NS}}/first (workloadSelector app=web) overlap: the two selectors are identical"},
	},
	{
		// The new Sidecar is the broader one: it takes every workload of the
		// existing, narrower one, although none exists yet.
		name:   "subset-selectors",
		setup:  []string{selectorSidecar("narrow", "app", "web", "version", "v1")},
		denied: selectorSidecar("broad", "app", "web"),
		want:   []string{"every workload selected by the narrower {{NS}}/narrow is also selected by this Sidecar", "no such workload with a sidecar proxy exists yet, but any future one would get two Sidecars"},
	},
	{
		name:   "superset-selectors",
		setup:  []string{selectorSidecar("broad", "app", "web")},
		denied: selectorSidecar("narrow", "app", "web", "version", "v1"),
		want:   []string{"every workload selected by this (narrower) Sidecar is also selected by {{NS}}/broad"},
	},
	{
		// Neither selector contains the other; an existing pod carries both.
		name: "overlap-through-pod",
		setup: []string{
			podManifest(nsPlaceholder, "web-0", map[string]string{"app": "web", "tier": "front"}, nil),
			selectorSidecar("by-app", "app", "web"),
		},
		denied: selectorSidecar("by-tier", "tier", "front"),
		want:   []string{"both select Pod {{NS}}/web-0; Istio's behaviour is undefined"},
	},
	{
		// The template counts before any pod exists: no replicas here, and
		// no injection label, so nothing but the Deployment carries the
		// labels.
		name: "overlap-through-deployment-template",
		setup: []string{
			deploymentManifest(nsPlaceholder, "web", 0, map[string]string{"app": "web", "tier": "front"}),
			selectorSidecar("by-app", "app", "web"),
		},
		denied: selectorSidecar("by-tier", "tier", "front"),
		want:   []string{"both select Deployment {{NS}}/web; Istio's behaviour is undefined"},
	},
	{
		name: "overlap-more-than-five-workloads",
		setup: []string{
			manyPods(7, map[string]string{"app": "web", "tier": "front"}),
			selectorSidecar("by-app", "app", "web"),
		},
		denied: selectorSidecar("by-tier", "tier", "front"),
		want: []string{
			"both select Pod {{NS}}/web-1, Pod {{NS}}/web-2, Pod {{NS}}/web-3, Pod {{NS}}/web-4, Pod {{NS}}/web-5 and 2 more;",
		},
	},
	{
		// The Sidecar reference's no-ip-tables and partial-ip-tables
		// examples both select app=productpage in prod-us1.
		name:   "reference-partial-ip-tables",
		setup:  []string{referenceExample("no-ip-tables.yaml")},
		denied: referenceExample("partial-ip-tables.yaml"),
		want: []string{
			"this Sidecar's workloadSelector (app=productpage) and Sidecar {{NS}}/no-ip-tables (workloadSelector app=productpage) overlap: the two selectors are identical",
		},
	},
}

// TestConflicts applies each conflicting Sidecar with `kubectl apply -f -`
// after its setup, and compares what kubectl prints and what the API server
// answers with testdata/conflicts/NAME.golden (-update rewrites them).
func TestConflicts(t *testing.T) {
	t.Parallel()
	for _, tc := range conflictCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := createLabelledNamespace(t, "conflict-"+tc.name, injected)
			fill := func(s string) string { return strings.ReplaceAll(s, nsPlaceholder, ns) }
			for _, m := range tc.setup {
				applyAdmitted(t, fill(m))
			}
			denied := fill(tc.denied)
			// The webhook decides from informer caches: wait until it sees
			// the workloads just created (a dry run leaves no trace).
			last := waitDenied(t, denied, fill(tc.want[0]))

			stdout, stderr, err := kubectl(t, denied, "apply", "-f", "-")
			if code := testenv.ExitCode(err); code <= 0 {
				t.Fatalf("kubectl apply: exit %d (%v), want a denial; stdout:\n%s\nstderr:\n%s", code, err, stdout, stderr)
			}
			status := apiCreate(t, denied, false)
			if status == nil {
				t.Fatalf("the API server created the Sidecar, want a denial (the dry run said: %s)", last)
			}
			if status.Code != http.StatusUnprocessableEntity || status.Reason != metav1.StatusReasonInvalid {
				t.Errorf("API server answered %d %s, want 422 Invalid: %s", status.Code, status.Reason, status.Message)
			}
			for _, text := range []string{stderr, status.Message} {
				if !strings.Contains(text, deniedByWebhook) {
					t.Errorf("the denial does not come from our webhook (want %q):\n%s", deniedByWebhook, text)
				}
				for _, w := range tc.want {
					if !strings.Contains(text, fill(w)) {
						t.Errorf("the denial lacks %q:\n%s", fill(w), text)
					}
				}
			}
			for _, line := range scanLines(stderr) {
				if !strings.HasPrefix(line, "Warning: ") && !strings.HasPrefix(line, "The request is invalid: ") && !strings.HasPrefix(line, "- ") {
					t.Errorf("unexpected line on kubectl's stderr: %q", line)
				}
			}
			got := normalize(fmt.Sprintf("%s--- API server answer: %d %s\n%s\n--- manifest\n%s",
				stderr, status.Code, status.Reason, status.Message, denied), ns)
			compareGolden(t, filepath.Join("testdata", "conflicts", tc.name+".golden"), got)
		})
	}
}

// TestConflictsAdmitted: what is not a conflict goes through. The same
// Sidecars in different namespaces, re-applying or editing a Sidecar
// (an update is never a conflict with its own earlier version), deleting.
func TestConflictsAdmitted(t *testing.T) {
	t.Parallel()

	t.Run("same Sidecars in different namespaces", func(t *testing.T) {
		t.Parallel()
		first, second := createLabelledNamespace(t, "conflict-free-a", injected), createLabelledNamespace(t, "conflict-free-b", injected)
		for _, m := range []string{
			withNamespace(wideSidecar("default"), first),
			withNamespace(wideSidecar("second"), second),
			withNamespace(selectorSidecar("first", "app", "web"), first),
			withNamespace(selectorSidecar("second-web", "app", "web"), second),
		} {
			applyAdmitted(t, m)
		}
	})

	t.Run("re-apply and edit", func(t *testing.T) {
		t.Parallel()
		ns := createLabelledNamespace(t, "conflict-reapply", injected)
		wide := withNamespace(wideSidecar("default"), ns)
		web := withNamespace(selectorSidecar("web", "app", "web"), ns)
		for _, m := range []string{wide, web} {
			if stdout, _ := applyAdmitted(t, m); !strings.HasSuffix(strings.TrimSpace(stdout), " created") {
				t.Errorf("first apply printed %q, want ... created", stdout)
			}
		}
		generations := map[string]string{}
		for _, name := range []string{"default", "web"} {
			generations[name] = generation(t, ns, name)
		}
		// Re-applying sends an UPDATE (kubectl prints "configured": the
		// stored object has the defaults the mutating webhook added, which
		// the manifest lacks) that changes nothing.
		for _, m := range []string{wide, web} {
			if stdout, _ := applyAdmitted(t, m); !regexp.MustCompile(` (unchanged|configured)$`).MatchString(strings.TrimSpace(stdout)) {
				t.Errorf("second apply printed %q, want ... unchanged or ... configured", stdout)
			}
		}
		for name, before := range generations {
			if after := generation(t, ns, name); after != before {
				t.Errorf("re-applying %s changed its generation from %s to %s", name, before, after)
			}
		}
		// Edits that keep the selector (or its absence): UPDATEs that
		// must not conflict with the Sidecar's own stored version.
		for _, m := range []string{wide, web} {
			edited := strings.Replace(m, `    - "./*"`, "    - \"./*\"\n    - \"~/*\"", 1)
			if edited == m {
				t.Fatalf("the edit changed nothing in:\n%s", m)
			}
			if stdout, _ := applyAdmitted(t, edited); !strings.HasSuffix(strings.TrimSpace(stdout), " configured") {
				t.Errorf("applying an edit printed %q, want ... configured", stdout)
			}
		}
		for name, before := range generations {
			if after := generation(t, ns, name); after == before {
				t.Errorf("the edit of %s left its generation at %s", name, before)
			}
		}
		mustKubectl(t, "", "label", "sidecar", "web", "-n", ns, "team=payments")
		mustKubectl(t, "", "annotate", "sidecar", "default", "-n", ns, "owner=platform")
	})

	t.Run("delete is always allowed", func(t *testing.T) {
		t.Parallel()
		ns := createLabelledNamespace(t, "conflict-delete", injected)
		applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
		applyAdmitted(t, withNamespace(selectorSidecar("web", "app", "web"), ns))
		out := mustKubectl(t, "", "delete", "sidecar", "default", "web", "-n", ns)
		if got := len(scanLines(out)); got != 2 {
			t.Errorf("kubectl delete printed %d lines, want 2:\n%s", got, out)
		}
		// Once deleted, they no longer block others. The replica that
		// admitted them keeps them as pending admissions for
		// webhook.PendingTTL (10s) after admission, deletion or not: a
		// replacement may be denied until then. Measure that, and require
		// it to end.
		start := time.Now()
		for _, m := range []string{withNamespace(wideSidecar("other"), ns), withNamespace(selectorSidecar("web-again", "app", "web"), ns)} {
			waitUntil(t, cacheTimeout, "a replacement of a deleted Sidecar to be admitted", func() (bool, string) {
				status := apiCreate(t, m, true)
				if status == nil {
					return true, ""
				}
				return false, status.Message
			})
			applyAdmitted(t, m)
		}
		t.Logf("replacements of the deleted Sidecars admitted %s after the delete", time.Since(start).Round(100*time.Millisecond))
	})
}

// warningCase is a Sidecar admitted with a warning about cluster state.
type warningCase struct {
	name string
	// namespace, if set, is used (and created if missing) instead of a
	// fresh namespace.
	namespace string
	setup     []string
	manifest  string
	// want are exact "Warning: ..." lines kubectl must print.
	want []string
	// fix, if set, are manifests after which a server-side dry run of the
	// same Sidecar must no longer print want[0].
	fix []string
}

func TestConflictWarnings(t *testing.T) {
	t.Parallel()
	rootSuffix := randomSuffix(t)
	cases := []warningCase{
		{
			name:     "compatible-selectors",
			setup:    []string{selectorSidecar("by-app", "app", "web")},
			manifest: selectorSidecar("by-tier", "tier", "front"),
			want: []string{
				"Warning: spec.workloadSelector.labels: [SW1004] selects the same workloads as {{NS}}/by-app if a workload carries both label sets (app=web,tier=front); none with a sidecar proxy exists now",
			},
		},
		{
			name:     "selects-no-workload",
			manifest: selectorSidecar("web", "app", "web"),
			want: []string{
				`Warning: spec.workloadSelector.labels: [SW1005] selects no workload in namespace "{{NS}}" now (no Pod, WorkloadEntry or workload controller template carries app=web)`,
			},
			// Once a workload carries the labels, the warning goes.
			fix: []string{deploymentManifest(nsPlaceholder, "web", 0, map[string]string{"app": "web"})},
		},
		{
			// The root namespace is shared by every test run against this
			// control plane: unique name and labels.
			name:      "selector-in-root-namespace",
			namespace: "istio-system",
			manifest:  selectorSidecar("root-selector-"+rootSuffix, "app", "root-"+rootSuffix),
			want: []string{
				`Warning: spec.workloadSelector: [SW1008] this Sidecar is in the mesh root namespace "istio-system", where the Sidecar reference expects only the global default Sidecar, without workloadSelector; a Sidecar with a workloadSelector here is not a mesh-wide default`,
			},
		},
		{
			name:     "namespace-wide-not-named-default",
			manifest: wideSidecar("everything"),
			want: []string{
				`Warning: metadata.name: [SW1009] the Sidecar reference recommends naming the namespace-wide Sidecar (the one without workloadSelector) "default"`,
			},
		},
		{
			name:     "egress-host-in-missing-namespace",
			manifest: hostsSidecar("default", "missing-"+rootSuffix+"/*"),
			want: []string{
				`Warning: spec.egress[0].hosts[0]: [SW1011] namespace "missing-` + rootSuffix + `" does not exist, so "missing-` + rootSuffix + `/*" imports nothing`,
			},
		},
		{
			name:     "exact-host-without-service",
			manifest: hostsSidecar("default", "./reviews.{{NS}}.svc.cluster.local"),
			want: []string{
				`Warning: spec.egress[0].hosts[0]: [SW1011] no Service or ServiceEntry in namespace "{{NS}}" visible from namespace "{{NS}}" provides host "reviews.{{NS}}.svc.cluster.local", so "./reviews.{{NS}}.svc.cluster.local" imports nothing`,
			},
			fix: []string{serviceManifest("reviews")},
		},
		{
			// The Sidecar reference's ratings example terminates TLS on
			// 9443; its PeerAuthentication disables mutual TLS there.
			name:     "ingress-tls-without-peerauthentication",
			manifest: referenceExample("ratings.yaml"),
			want: []string{
				`Warning: spec.ingress[1].tls: [SW1012] ingress listener on port 9443 terminates TLS with its own settings, but mutual TLS on port 9443 is PERMISSIVE for workloads labelled app=ratings (no PeerAuthentication sets a mode: Istio's default; istiod composes PeerAuthentications workload over namespace over mesh, port-level settings only from the workload's); the Sidecar reference pairs a custom ingress TLS listener with a PeerAuthentication whose portLevelMtls sets 9443 to DISABLE, otherwise Istio's mutual TLS takes precedence on that port`,
			},
			fix: []string{ratingsPeerAuthentication},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := tc.namespace
			if ns == "" {
				ns = createLabelledNamespace(t, "warning-"+tc.name, injected)
			} else {
				ensureNamespace(t, ns)
			}
			fill := func(s string) string { return strings.ReplaceAll(s, nsPlaceholder, ns) }
			for _, m := range tc.setup {
				applyAdmitted(t, fill(m))
			}
			manifest := fill(tc.manifest)
			if tc.namespace != "" {
				name := manifestName(t, manifest)
				t.Cleanup(func() { kubectl(t, "", "delete", "sidecar", name, "-n", ns, "--ignore-not-found") })
			}
			stdout, stderr := applyAdmitted(t, manifest)
			if !strings.HasSuffix(strings.TrimSpace(stdout), " created") {
				t.Errorf("kubectl apply printed %q, want ... created", stdout)
			}
			lines := warningLines(t, stderr)
			for _, w := range tc.want {
				if !containsLine(lines, fill(w)) {
					t.Errorf("kubectl's stderr lacks the line\n%s\nstderr:\n%s", fill(w), stderr)
				}
			}
			if len(tc.fix) == 0 {
				return
			}
			var fixes []string
			for _, m := range tc.fix {
				applyAdmitted(t, fill(m))
				fixes = append(fixes, fill(m))
			}
			gone := fill(tc.want[0])
			waitUntil(t, cacheTimeout, "the warning to go after "+strings.Join(kindsOf(t, fixes), ", ")+" was created", func() (bool, string) {
				_, stderr, err := kubectl(t, manifest, "apply", "--dry-run=server", "-f", "-")
				if err != nil {
					t.Fatalf("dry-run apply: %v\n%s", err, stderr)
				}
				return !containsLine(scanLines(stderr), gone), stderr
			})
		})
	}
}

// ratingsPeerAuthentication is the PeerAuthentication the Sidecar reference
// pairs with the ratings example (port 9443 in this repository's copy).
const ratingsPeerAuthentication = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: ratings-peer-auth
  namespace: {{NS}}
spec:
  selector:
    matchLabels:
      app: ratings
  mtls:
    mode: STRICT
  portLevelMtls:
    9443:
      mode: DISABLE
`

// generation is metadata.generation of Sidecar ns/name.
func generation(t testing.TB, ns, name string) string {
	t.Helper()
	return mustKubectl(t, "", "get", "sidecar", name, "-n", ns, "-o", "jsonpath={.metadata.generation}")
}

// --- helpers shared by the conflict, pod, race, audit and check tests ---

// wideSidecar is a namespace-wide Sidecar (no workloadSelector) in {{NS}}.
func wideSidecar(name string) string {
	return hostsSidecar(name, "./*")
}

// hostsSidecar is a namespace-wide Sidecar importing hosts.
func hostsSidecar(name string, hosts ...string) string {
	var b strings.Builder
	b.WriteString("  egress:\n  - hosts:\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "    - %q\n", h)
	}
	return sidecarManifest("networking.istio.io/v1", nsPlaceholder, name, b.String())
}

// selectorSidecar is a Sidecar in {{NS}} whose workloadSelector has the
// given key, value pairs.
func selectorSidecar(name string, keyValues ...string) string {
	var b strings.Builder
	b.WriteString("  workloadSelector:\n    labels:\n")
	for i := 0; i+1 < len(keyValues); i += 2 {
		fmt.Fprintf(&b, "      %s: %s\n", keyValues[i], keyValues[i+1])
	}
	b.WriteString("  egress:\n  - hosts:\n    - \"./*\"\n")
	return sidecarManifest("networking.istio.io/v1", nsPlaceholder, name, b.String())
}

// withNamespace fills in the namespace placeholder.
func withNamespace(manifest, ns string) string {
	return strings.ReplaceAll(manifest, nsPlaceholder, ns)
}

// podManifest is a Pod that never runs (there are no nodes).
func podManifest(ns, name string, labels, annotations map[string]string) string {
	meta := map[string]any{"name": name, "namespace": ns}
	if len(labels) > 0 {
		meta["labels"] = labels
	}
	if len(annotations) > 0 {
		meta["annotations"] = annotations
	}
	return toYAML(map[string]any{
		"apiVersion": "v1",
		"kind":       "Pod",
		"metadata":   meta,
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}},
		},
	})
}

// manyPods is n pods web-1 ... web-n in {{NS}} as one multi-document manifest.
func manyPods(n int, labels map[string]string) string {
	docs := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		docs = append(docs, podManifest(nsPlaceholder, fmt.Sprintf("web-%d", i), labels, nil))
	}
	return strings.Join(docs, "---\n")
}

// deploymentManifest is a Deployment whose pod template carries labels.
func deploymentManifest(ns, name string, replicas int, labels map[string]string) string {
	return toYAML(map[string]any{
		"apiVersion": "apps/v1",
		"kind":       "Deployment",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas": replicas,
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{
					"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}},
				},
			},
		},
	})
}

// serviceManifest is a ClusterIP Service in {{NS}}.
func serviceManifest(name string) string {
	return toYAML(map[string]any{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata":   map[string]any{"name": name, "namespace": nsPlaceholder},
		"spec": map[string]any{
			"selector": map[string]any{"app": name},
			"ports":    []any{map[string]any{"name": "http", "port": 9080}},
		},
	})
}

// referenceExample returns validation/testdata/reference/FILE with its
// namespace prod-us1 replaced by the placeholder.
func referenceExample(file string) string {
	data, err := os.ReadFile(filepath.Join(repoRootForTables(), "validation", "testdata", "reference", file))
	if err != nil {
		panic(err)
	}
	return strings.ReplaceAll(string(data), "prod-us1", nsPlaceholder)
}

// repoRootForTables finds the repository root for table initialisation,
// which runs before TestMain has set env.root.
func repoRootForTables() string {
	root, err := testenv.RepoRoot()
	if err != nil {
		panic(err)
	}
	return root
}

func toYAML(obj any) string {
	out, err := yaml.Marshal(obj)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// randomSuffix is 6 hex digits.
func randomSuffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// createLabelledNamespace is createNamespace for a namespace created with
// labels (in the same request, so no admission ever sees it unlabelled).
func createLabelledNamespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	name := strings.TrimSuffix(strings.ToLower(prefix), "-")
	if len(name) > 50 {
		name = name[:50]
	}
	name += "-" + randomSuffix(t)
	mustKubectl(t, toYAML(map[string]any{
		"apiVersion": "v1",
		"kind":       "Namespace",
		"metadata":   map[string]any{"name": name, "labels": labels},
	}), "create", "-f", "-")
	t.Cleanup(func() {
		if _, stderr, err := kubectl(t, "", "delete", "namespace", name, "--wait=false", "--ignore-not-found"); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", name, err, stderr)
		}
	})
	return name
}

// applyAdmitted runs `kubectl apply -f -` and fails the test unless it
// succeeds; it returns kubectl's output.
func applyAdmitted(t testing.TB, manifest string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := kubectl(t, manifest, "apply", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply: %v (want admitted)\nstderr:\n%s\nmanifest:\n%s", err, stderr, manifest)
	}
	return stdout, stderr
}

// waitDenied dry-runs manifest until the webhook denies it with a message
// containing want, and returns that message.
func waitDenied(t testing.TB, manifest, want string) string {
	t.Helper()
	var msg string
	waitUntil(t, cacheTimeout, fmt.Sprintf("a dry run to be denied with %q", want), func() (bool, string) {
		status := apiCreate(t, manifest, true)
		if status == nil {
			msg = "(admitted)"
			return false, msg
		}
		msg = status.Message
		return strings.Contains(msg, want), msg
	})
	return msg
}

// waitUntil asks cond until it holds or timeout passes, through the shared
// harness; cond returns a description of what it saw, reported on timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.Eventually(t, timeout, what, func(context.Context) error {
		if ok, seen := cond(); !ok {
			return fmt.Errorf("last seen:\n%s", seen)
		}
		return nil
	})
}

// warningLines returns kubectl's stderr lines, each of which must be a
// warning.
func warningLines(t testing.TB, stderr string) []string {
	t.Helper()
	lines := scanLines(stderr)
	for _, line := range lines {
		if !strings.HasPrefix(line, "Warning: ") {
			t.Errorf("kubectl printed a line on stderr that is not a warning: %q", line)
		}
	}
	return lines
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

var nameLine = regexp.MustCompile(`(?m)^  name: (\S+)$`)

// manifestName returns metadata.name of a one-object manifest.
func manifestName(t testing.TB, manifest string) string {
	t.Helper()
	m := nameLine.FindStringSubmatch(manifest)
	if m == nil {
		t.Fatalf("no metadata.name in:\n%s", manifest)
	}
	return m[1]
}

// kindsOf names the objects of manifests for messages.
func kindsOf(t testing.TB, manifests []string) []string {
	t.Helper()
	var out []string
	for _, m := range manifests {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if err := yaml.Unmarshal([]byte(m), &obj); err != nil {
			t.Fatal(err)
		}
		out = append(out, obj.Kind+" "+obj.Metadata.Name)
	}
	return out
}
