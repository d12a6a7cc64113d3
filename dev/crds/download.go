package crds

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// The PolicyReport CRD (wgpolicyk8s.io/v1alpha2), which the audit writes to
// when a cluster has it. The Policy working group's own module is not served
// by the module proxy; Kyverno ships the same CRD in its module. Tests
// install it from the module cache; no binary depends on the module.
const (
	PolicyReportModule  = "github.com/kyverno/kyverno"
	PolicyReportVersion = "v1.19.1"
	PolicyReportFile    = "config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml"
)

// PolicyReportCRD returns the path of the PolicyReport CRD manifest,
// downloading its module into the module cache first if needed.
func PolicyReportCRD(ctx context.Context) (string, error) {
	return DownloadedFile(ctx, PolicyReportModule, PolicyReportVersion, PolicyReportFile)
}

// DownloadedFile returns the path of file rel (slash-separated) inside
// modulePath@version, which `go mod download` fetches into the module cache
// when it is not there yet. It does not change any go.mod: for files that
// tests read from a module the build does not otherwise need.
func DownloadedFile(ctx context.Context, modulePath, version, rel string) (string, error) {
	relOS := filepath.FromSlash(rel)
	if !filepath.IsLocal(relOS) {
		return "", fmt.Errorf("crds: %q is not a relative path inside a module", rel)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*goListTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modulePath+"@"+version)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Error string }
	// On failure the go command still prints the JSON, with Error set.
	_ = json.Unmarshal(stdout.Bytes(), &info)
	if runErr != nil || info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %s %s", modulePath, version, runErr, info.Error, strings.TrimSpace(stderr.String()))
	}
	p := filepath.Join(info.Dir, relOS)
	if err := regularFile(p); err != nil {
		return "", fmt.Errorf("%s@%s: %w", modulePath, version, err)
	}
	return p, nil
}
