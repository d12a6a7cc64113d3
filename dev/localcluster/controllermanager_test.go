//go:build controlplane

package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/pause:3.10
`

// TestControllerManager: with Options.ControllerManager a Deployment really
// gets its pods (Pending: there are no nodes), and Stop takes the
// controller manager down with the rest.
func TestControllerManager(t *testing.T) {
	requireAssets(t)
	if !HasControllerManager("") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and no kube-controller-manager in %s (build it with `make controlplane`)", DefaultAssetsDir())
		}
		t.Skipf("skipping: no kube-controller-manager in %s (build it with `make controlplane`; under CI=true this fails)", DefaultAssetsDir())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stateDir := t.TempDir()
	c, err := Start(ctx, Options{StateDir: stateDir, ControllerManager: true, Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	if want := filepath.Join(stateDir, "kube-controller-manager.log"); c.ControllerManagerLog != want {
		t.Errorf("ControllerManagerLog = %q, want %q", c.ControllerManagerLog, want)
	}
	if pids := childPIDs(c.paths.controllerManager); len(pids) != 1 {
		t.Errorf("kube-controller-manager child processes: %v, want 1", pids)
	}

	if _, _, err := c.RunKubectl(ctx, strings.NewReader(deploymentYAML), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	var names []string
	for {
		out, _, err := c.RunKubectl(ctx, nil, "get", "pods", "-n", "default", "-l", "app=web", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		names = strings.Fields(out)
		if len(names) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Deployment has %d pods after 90s (%v), want 2\n%s", len(names), names, tailHint(c.ControllerManagerLog))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("Deployment web created %v", names)

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if c.ControllerManagerRunning() {
		t.Error("kube-controller-manager still running after Stop")
	}
	if pids := childPIDs(c.paths.controllerManager); len(pids) != 0 {
		t.Errorf("kube-controller-manager processes after Stop: %v", pids)
	}
}
