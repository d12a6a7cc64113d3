//go:build controlplane

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// legacySidecar breaks two rules Istio does not enforce and the reference
// does: an egress listener with bind but no port, and an ingress listener
// without defaultEndpoint. extraHost, if not empty, is added to its egress
// hosts; selector "" makes it namespace-wide.
func legacySidecar(selector, extraHost string) string {
	var b strings.Builder
	if selector != "" {
		k, v, _ := strings.Cut(selector, "=")
		b.WriteString("  workloadSelector:\n    labels:\n      " + k + ": " + v + "\n")
	}
	b.WriteString("  ingress:\n  - port:\n      number: 9080\n      protocol: HTTP\n      name: http\n")
	b.WriteString("  egress:\n  - bind: 127.0.0.1\n    hosts:\n    - \"./*\"\n")
	if extraHost != "" {
		b.WriteString("    - \"" + extraHost + "\"\n")
	}
	return sidecarManifest("networking.istio.io/v1", nsPlaceholder, "legacy", b.String())
}

// TestRatchet: Sidecars created while the namespace was in warn mode (they
// predate enforcement) break rules and conflict with each other. Once
// enforcement is on, an unrelated edit (kubectl label, as Argo CD adds its
// tracking label on every sync) and a listener edit that keeps the old
// errors are admitted with warnings that say the problems pre-date the
// change; an edit that adds an error or a conflict is denied for it alone;
// the audit and `check --cluster` keep reporting what is there.
func TestRatchet(t *testing.T) {
	t.Parallel()
	ns := createLabelledNamespace(t, "ratchet", map[string]string{
		"istio-injection":                injected["istio-injection"],
		"sidecar-webhook.io/enforcement": "warn",
	})
	in := func(manifest string) string { return withNamespace(manifest, ns) }

	// Legacy objects, admitted in warn mode (dev runs with
	// --allow-namespace-override).
	waitUntil(t, cacheTimeout, "the webhook to see the namespace in warn mode", func() (bool, string) {
		status := apiCreate(t, in(legacySidecar("app=legacy", "")), true)
		if status == nil {
			return true, "admitted"
		}
		return false, status.Message
	})
	applyAdmitted(t, in(wideSidecar("default")))
	for _, m := range []string{wideSidecar("b"), legacySidecar("app=legacy", "")} {
		_, stderr := applyAdmitted(t, in(m))
		if !strings.Contains(stderr, "would be denied (enforcement=warn): ") {
			t.Errorf("creating %s in warn mode: no would-be-denied warning:\n%s", manifestName(t, m), stderr)
		}
	}

	// Enforcement on.
	mustKubectl(t, "", "label", "namespace", ns, "sidecar-webhook.io/enforcement-")
	waitDenied(t, in(wideSidecar("c")), "already has a Sidecar without workloadSelector")
	// Created today, the legacy Sidecar would be denied.
	copyOfLegacy := strings.Replace(in(legacySidecar("app=copy", "")), "name: legacy", "name: copy", 1)
	if status := apiCreate(t, copyOfLegacy, true); status == nil || !strings.Contains(status.Message, "spec.egress[0].port: Required value") {
		t.Errorf("a new Sidecar like legacy: %+v, want denied for spec.egress[0].port", status)
	}

	t.Run("label edit of a Sidecar in an old conflict", func(t *testing.T) {
		_, stderr, err := kubectl(t, "", "label", "sidecar", "b", "-n", ns, "team=payments")
		if err != nil {
			t.Fatalf("kubectl label sidecar b: %v\n%s", err, stderr)
		}
		wantLine(t, warningLines(t, stderr), "Warning: spec.workloadSelector: [SW1001] pre-dates this change (this update keeps the workloadSelector", ns+"/default")
	})

	t.Run("label edit of a Sidecar with old errors", func(t *testing.T) {
		_, stderr, err := kubectl(t, "", "label", "sidecar", "legacy", "-n", ns, "team=payments")
		if err != nil {
			t.Fatalf("kubectl label sidecar legacy: %v\n%s", err, stderr)
		}
		lines := warningLines(t, stderr)
		wantLine(t, lines, "Warning: spec.ingress[0].defaultEndpoint: [SW0208] pre-dates this change (the stored Sidecar already has it", "fix: Required value: every ingress listener needs a defaultEndpoint")
		wantLine(t, lines, "Warning: spec.egress[0].port: [SW0301] pre-dates this change (the stored Sidecar already has it", "fix: Required value: a port is required when bind is set")
	})

	t.Run("listener edit that keeps the old errors", func(t *testing.T) {
		_, stderr := applyAdmitted(t, in(legacySidecar("app=legacy", "istio-system/*")))
		lines := warningLines(t, stderr)
		wantLine(t, lines, "Warning: spec.egress[0].port: [SW0301] pre-dates this change")
		wantLine(t, lines, "Warning: spec.ingress[0].defaultEndpoint: [SW0208] pre-dates this change")
	})

	t.Run("edit that adds an error", func(t *testing.T) {
		_, stderr, err := kubectl(t, in(legacySidecar("app=legacy", "nope")), "apply", "-f", "-")
		if err == nil {
			t.Fatalf("admitted; want denied for spec.egress[0].hosts[1]\n%s", stderr)
		}
		want := deniedByWebhook + `: Sidecar.networking.istio.io "legacy" is invalid: spec.egress[0].hosts[1]: Invalid value: "nope"`
		if !strings.Contains(stderr, want) {
			t.Errorf("denial does not name the new error alone; want %q in:\n%s", want, stderr)
		}
	})

	t.Run("edit that adds a conflict", func(t *testing.T) {
		// Dropping the selector makes legacy a third namespace-wide Sidecar.
		_, stderr, err := kubectl(t, in(legacySidecar("", "istio-system/*")), "apply", "-f", "-")
		if err == nil {
			t.Fatalf("admitted; want denied for the new conflict\n%s", stderr)
		}
		want := deniedByWebhook + `: Sidecar.networking.istio.io "legacy" is invalid: spec.workloadSelector: Forbidden: [SW1001] namespace "` + ns + `" already has a Sidecar without workloadSelector: ` + ns + "/b, " + ns + "/default"
		if !strings.Contains(stderr, want) {
			t.Errorf("want %q in:\n%s", want, stderr)
		}
	})

	t.Run("the audit keeps reporting the old conflict", func(t *testing.T) {
		cs := clientset(t)
		waitUntil(t, cacheTimeout, "a SidecarConflict Event on b", func() (bool, string) {
			list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=SidecarConflict,involvedObject.name=b"})
			if err != nil {
				return false, err.Error()
			}
			return len(list.Items) > 0, "no Event yet"
		})
	})

	t.Run("check --cluster with a file that updates a stored Sidecar", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "legacy.yaml")
		if err := os.WriteFile(path, []byte(in(legacySidecar("app=legacy", "istio-system/*"))), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(filepath.Join(env.root, "bin", "sidecar-webhook"), "check", "--cluster", "--kubeconfig", env.kubeconfig, "-o", "json", path)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		// Exit 1: the conflicts already in the cluster are listed first.
		if code := testenv.ExitCode(cmd.Run()); code != 1 {
			t.Errorf("exit %d, want 1\nstderr:\n%s", code, stderr.String())
		}
		var decisions []struct {
			Name, File string
			Allowed    bool
			Warnings   []string
		}
		if err := json.Unmarshal(stdout.Bytes(), &decisions); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
		for _, d := range decisions {
			if d.File != path {
				continue
			}
			if !d.Allowed || !strings.Contains(strings.Join(d.Warnings, "\n"), "spec.egress[0].port: [SW0301] pre-dates this change") {
				t.Errorf("the file's update of the stored legacy: allowed=%v warnings %q; want admitted as pre-dating", d.Allowed, d.Warnings)
			}
			return
		}
		t.Errorf("no decision on %s:\n%s", path, stdout.String())
	})

	t.Run("check --cluster lists what would be denied if created today", func(t *testing.T) {
		stdout, stderr, code := runCheckCluster(t, "text")
		if code != 1 {
			t.Errorf("exit %d, want 1\nstderr:\n%s", code, stderr)
		}
		section := namespaceSection(stdout, ns)
		for _, want := range []string{
			"  Sidecar legacy would be denied if created today:\n" +
				"    - spec.ingress[0].defaultEndpoint: Required value: [SW0208] every ingress listener needs a defaultEndpoint",
			"    - spec.egress[0].port: Required value: [SW0301] a port is required when bind is set",
			"  Sidecar b would be denied if created today:\n" +
				`    - spec.workloadSelector: Forbidden: [SW1001] namespace "` + ns + `" already has a Sidecar without workloadSelector: ` + ns + "/default",
			"  Sidecar default would be denied if created today:\n",
		} {
			if !strings.Contains(section, want) {
				t.Errorf("check --cluster: the section of %s lacks %q:\n%s", ns, want, section)
			}
		}
		if !strings.Contains(stdout, " Sidecars checked, ") || !strings.Contains(stdout, " would be denied\n") {
			t.Errorf("no summary line:\n%s", stdout)
		}
	})
}

// wantLine fails unless one of lines starts with prefix and contains every
// one of parts.
func wantLine(t *testing.T, lines []string, prefix string, parts ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return
		}
	}
	t.Errorf("no line starts with %q and contains %q:\n%s", prefix, parts, strings.Join(lines, "\n"))
}

// runCheckCluster runs `sidecar-webhook check --cluster` (the pre-flight)
// against the shared control plane.
func runCheckCluster(t *testing.T, output string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(env.root, "bin", "sidecar-webhook"), "check", "--cluster", "--kubeconfig", env.kubeconfig, "-o", output)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), testenv.ExitCode(err)
}

// namespaceSection is the pre-flight's text for one namespace: from its
// "namespace NS:" line to the next unindented line.
func namespaceSection(text, ns string) string {
	_, rest, found := strings.Cut(text, "namespace "+ns+":\n")
	if !found {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(rest, "\n") {
		if !strings.HasPrefix(line, " ") {
			break
		}
		b.WriteString(line)
	}
	return b.String()
}

// TestCheckClusterJSON: the pre-flight's JSON has one element per stored
// Sidecar checked, the denied ones with their errors.
func TestCheckClusterJSON(t *testing.T) {
	t.Parallel()
	ns := createLabelledNamespace(t, "preflight-json", injected)
	applyAdmitted(t, withNamespace(wideSidecar("default"), ns))
	stdout, stderr, code := runCheckCluster(t, "json")
	if code != 0 && code != 1 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var decisions []struct {
		Namespace, Name, File, Message string
		Allowed                        bool
		Errors                         []string
	}
	if err := json.Unmarshal([]byte(stdout), &decisions); err != nil {
		t.Fatalf("check --cluster -o json: %v\n%s", err, stdout)
	}
	found := false
	for _, d := range decisions {
		if d.Namespace != ns {
			continue
		}
		found = true
		if d.Name != "default" || !d.Allowed || d.File != "cluster" || d.Message != "" || len(d.Errors) != 0 {
			t.Errorf("the only Sidecar of %s, valid: %+v", ns, d)
		}
	}
	if !found {
		t.Errorf("no element for %s/default (every stored Sidecar is checked):\n%s", ns, stdout)
	}
}
