package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// TestProductionDependencies: the shipped binary (serve, check, resolve)
// links no development code. The local control plane, the CRD lookup and
// the throwaway CA belong to cmd/sidecar-webhook-dev and the tests; linked
// here they would grow the image and put code no cluster runs in front of
// every reader and scanner of it.
func TestProductionDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("go list -deps: %v\n%s", err, exitErr.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages; the check would pass vacuously:\n%s", len(deps), out)
	}
	forbidden := []struct {
		prefix string
		why    string
	}{
		{"sigs.k8s.io/controller-runtime/pkg/envtest", "envtest starts etcd and kube-apiserver"},
		{testenv.ModulePath + "/dev/", "development packages (local control plane, CRD lookup, CA)"},
		{testenv.ModulePath + "/test/", "test harnesses"},
		{testenv.ModulePath + "/cmd/sidecar-webhook-dev", "the development command"},
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f.prefix) {
				t.Errorf("the production binary links %s: %s", dep, f.why)
			}
		}
	}
}
