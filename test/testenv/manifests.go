package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Where the installations live, relative to the repository's root.
const (
	KustomizeDir = "deploy"
	ChartDir     = "charts/sidecar-webhook"
)

// Tool returns bin/<name> under root (the Makefile builds kubectl with the
// control plane and helm from the tools module), or an error naming the
// make target that builds it.
func Tool(root, name string) (string, error) {
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		target := map[string]string{"helm": "helm", "kubectl": "controlplane"}[name]
		return "", fmt.Errorf("%s: %w; run `make %s` first", p, err, target)
	}
	return p, nil
}

// RenderKustomize is `kubectl kustomize dir`.
func RenderKustomize(ctx context.Context, kubectl, dir string) ([]byte, error) {
	return RunTool(ctx, kubectl, "kustomize", dir)
}

// RenderChart is `helm template release chartDir --namespace namespace`
// followed by args (e.g. --set k=v).
func RenderChart(ctx context.Context, helm, chartDir, release, namespace string, args ...string) ([]byte, error) {
	return RunTool(ctx, helm, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
}

// RunTool runs bin with args and returns its standard output; an error
// carries its standard error. Helm keeps its cache and configuration under
// the temporary directory, away from the user's.
func RunTool(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+os.TempDir()+"/sidecar-webhook-helm/cache",
		"HELM_CONFIG_HOME="+os.TempDir()+"/sidecar-webhook-helm/config",
		"HELM_DATA_HOME="+os.TempDir()+"/sidecar-webhook-helm/data")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// ParseManifests decodes a multi-document YAML stream into objects, in
// order, skipping documents that hold only comments. Integers stay int64
// (Unstructured's own JSON decoding), so two renderings of the same
// manifest compare equal with reflect.DeepEqual or cmp.
func ParseManifests(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		if u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("document without kind or name:\n%s", doc)
		}
		out = append(out, u)
	}
}

// ObjectKey names an object: "Kind namespace/name" (cluster-scoped objects
// without the namespace).
func ObjectKey(u *unstructured.Unstructured) string {
	s := u.GetKind() + " "
	if u.GetNamespace() != "" {
		s += u.GetNamespace() + "/"
	}
	return s + u.GetName()
}
