package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/dev/crds"
)

// The tests that start no control plane: what Start checks before anything
// runs, the assets lookup and the CRD files' split. The ones that start a
// control plane carry the controlplane build tag (localcluster_test.go,
// controllermanager_test.go).

func TestStartFailsFastOnMissingCRDPath(t *testing.T) {
	assets := t.TempDir()
	for _, n := range []string{"kube-apiserver", "etcd", "kubectl"} {
		// Would fail if run: the CRD paths must be checked first.
		if err := os.WriteFile(filepath.Join(assets, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Start(context.Background(), Options{AssetsDir: assets, CRDPaths: []string{missing}})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Start with a missing CRD path: %v", err)
	}
}

func TestCheckAssets(t *testing.T) {
	dir := t.TempDir()
	err := CheckAssets(dir)
	if err == nil || !strings.Contains(err.Error(), "kube-apiserver") || !strings.Contains(err.Error(), "etcd") {
		t.Fatalf("CheckAssets(empty dir) = %v", err)
	}
	for _, n := range []string{"kube-apiserver", "server", "kubectl"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := resolveAssets(dir)
	if err != nil {
		t.Fatalf("etcd named server: %v", err)
	}
	if filepath.Base(p.etcd) != "server" {
		t.Errorf("etcd resolved to %s", p.etcd)
	}
}

func TestSplitCRDPaths(t *testing.T) {
	dir := t.TempDir()
	crd := func(name string) string {
		return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]ss.example.com
spec:
  group: example.com
  names: {kind: %[1]s, plural: %[1]ss}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object}
`, name)
	}
	pure := filepath.Join(dir, "pure.yaml")
	mixed := filepath.Join(dir, "mixed.yaml")
	none := filepath.Join(dir, "none.yaml")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(pure, "# comment\n---\n"+crd("a")+"---\n"+crd("b"))
	// A non-CRD document whose spec.names would not decode into a CRD.
	write(mixed, crd("c")+"---\napiVersion: v1\nkind: Weird\nspec:\n  names: [x, y]\n---\n"+crd("d"))
	write(none, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")

	direct, decoded, err := splitCRDPaths([]string{pure, mixed, dir + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(direct) != 2 || direct[0] != pure {
		t.Errorf("direct = %v", direct)
	}
	if len(decoded) != 2 || decoded[0].Name != "cs.example.com" || decoded[1].Name != "ds.example.com" {
		t.Errorf("decoded = %d CRDs", len(decoded))
	}
	if _, _, err := splitCRDPaths([]string{none}); err == nil {
		t.Error("a file without CRDs must be an error")
	}
	if _, _, err := splitCRDPaths([]string{filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Error("a missing path must be an error")
	}

	istio, err := crds.IstioCRDs()
	if err != nil {
		t.Fatal(err)
	}
	direct, decoded, err = splitCRDPaths([]string{istio})
	if err != nil || len(direct) != 1 || len(decoded) != 0 {
		t.Errorf("Istio's CRD file: direct=%v decoded=%d err=%v", direct, len(decoded), err)
	}
}

// TestControllerManagerMissing: asking for the controller manager without
// its binary fails before anything starts, naming what is missing.
func TestControllerManagerMissing(t *testing.T) {
	assets := t.TempDir()
	for _, n := range []string{"kube-apiserver", "etcd", "kubectl"} {
		// Would fail if run: the check must come first.
		if err := os.WriteFile(filepath.Join(assets, n), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if HasControllerManager(assets) {
		t.Fatal("HasControllerManager on a directory without it")
	}
	_, err := Start(context.Background(), Options{AssetsDir: assets, ControllerManager: true})
	if err == nil || !strings.Contains(err.Error(), "kube-controller-manager") || !strings.Contains(err.Error(), assets) {
		t.Fatalf("Start with ControllerManager and no binary: %v", err)
	}
}
