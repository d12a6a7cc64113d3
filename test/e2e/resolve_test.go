//go:build controlplane

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// sidecarWebhook runs bin/sidecar-webhook against the shared control plane
// and returns its exit code and outputs.
func sidecarWebhook(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(env.root, "bin", "sidecar-webhook"), args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return testenv.ExitCode(err), out.String(), errOut.String()
}

// resolveJSON is what TestResolveRunningPod reads of `resolve -o json`.
type resolveJSON struct {
	Pod, Proxy, Sidecar, Scope string
	Annotations                *struct {
		Agree    bool
		Pod, Now map[string]string
	}
}

// TestResolveRunningPod: `resolve -n NS POD` reads the running pod from the
// cluster and shows the Sidecar it gets, and says when the pod's
// annotations no longer agree with what resolves now.
func TestResolveRunningPod(t *testing.T) {
	t.Parallel()
	ns := createLabelledNamespace(t, "resolve", injected)
	applyAdmitted(t, withNamespace(selectorSidecar("web", "app", "web"), ns))
	// The finalizer keeps the pod once it is deleted: the annotation
	// reconciler leaves terminating pods alone, which is how its
	// annotations come to be out of date below.
	pod := strings.Replace(podManifest(ns, "web", map[string]string{"app": "web"}, nil),
		"metadata:\n", "metadata:\n  finalizers:\n  - sidecar-webhook.io/e2e-resolve\n", 1)
	applyAdmitted(t, pod)
	t.Cleanup(func() {
		if _, stderr, err := kubectl(t, "", "patch", "pod", "web", "-n", ns, "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`); err != nil {
			t.Logf("removing the finalizer: %v: %s", err, stderr)
		}
	})
	waitUntil(t, cacheTimeout, "the pod annotated with its Sidecar", func() (bool, string) {
		out := mustKubectl(t, "", "get", "pod", "web", "-n", ns, "-o", "jsonpath={.metadata.annotations}")
		return strings.Contains(out, `"`+annotationSidecar+`":"`+ns+`/web"`), out
	})

	resolveOut := func(args ...string) resolveJSON {
		t.Helper()
		code, stdout, stderr := sidecarWebhook(t, append([]string{"resolve", "--kubeconfig", env.kubeconfig, "-n", ns, "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("resolve %v: exit %d\nstderr:\n%s", args, code, stderr)
		}
		var out resolveJSON
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("resolve %v -o json: %v\n%s", args, err, stdout)
		}
		return out
	}

	got := resolveOut("web")
	if got.Pod != ns+"/web" || got.Proxy != "sidecar" || got.Sidecar != ns+"/web" || got.Scope != "workload" ||
		got.Annotations == nil || !got.Annotations.Agree {
		t.Errorf("resolve -n %s web: %+v; want the pod's Sidecar %s/web, annotations agreeing", ns, got, ns)
	}
	code, text, stderr := sidecarWebhook(t, "resolve", "--kubeconfig", env.kubeconfig, "-n", ns, "web")
	for _, want := range []string{
		"Pod: " + ns + "/web (read from the cluster)\n",
		"Sidecar: " + ns + "/web (scope workload)\n",
		"Annotations: the pod's sidecar-webhook.io/ annotations agree with this resolution\n",
	} {
		if code != 0 || !strings.Contains(text, want) {
			t.Errorf("resolve -n %s web: exit %d, output lacks %q:\n%s%s", ns, code, want, text, stderr)
		}
	}
	// The same from labels alone: a pod about to be created.
	if got := resolveOut("--cluster", "--labels", "app=web"); got.Pod != "" || got.Sidecar != ns+"/web" || got.Annotations != nil {
		t.Errorf("resolve --cluster --labels app=web: %+v; want Sidecar %s/web and no pod", got, ns)
	}

	// The pod terminates (held by its finalizer) and its Sidecar goes: no
	// one updates its annotations any more.
	mustKubectl(t, "", "delete", "pod", "web", "-n", ns, "--wait=false")
	mustKubectl(t, "", "delete", "sidecar", "web", "-n", ns)
	start := time.Now()
	waitUntil(t, cacheTimeout, "resolve to report the disagreement", func() (bool, string) {
		got = resolveOut("web")
		return got.Annotations != nil && !got.Annotations.Agree, toYAML(got)
	})
	t.Logf("disagreement reported %s after the Sidecar was deleted", time.Since(start).Round(100*time.Millisecond))
	if got.Sidecar == ns+"/web" || got.Annotations.Pod[annotationSidecar] != ns+"/web" || got.Annotations.Now[annotationSidecar] == ns+"/web" {
		t.Errorf("after deleting the Sidecar: %+v; want the pod to still say %s/web and resolve no longer", got, ns)
	}
	_, text, _ = sidecarWebhook(t, "resolve", "--kubeconfig", env.kubeconfig, "-n", ns, "web")
	if want := annotationSidecar + `: "` + ns + `/web" on the pod, `; !strings.Contains(text, "disagree with this resolution") || !strings.Contains(text, want) {
		t.Errorf("text output lacks the disagreement (%q):\n%s", want, text)
	}
}
