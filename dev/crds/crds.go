// Package crds locates CustomResourceDefinition manifests that ship inside Go
// modules (for example Istio's generated CRDs in istio.io/api), so that the
// local control plane installs exactly the CRDs of the API version this
// binary was built against instead of hand-maintained copies.
package crds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// IstioAPIModule is the module that ships Istio's CRD manifests.
	IstioAPIModule = "istio.io/api"
	// IstioCRDsFile is the path of the generated CRD manifest inside IstioAPIModule.
	IstioCRDsFile = "kubernetes/customresourcedefinitions.gen.yaml"
	// EnvIstioCRDs, when set to a file path, overrides where IstioCRDs looks.
	EnvIstioCRDs = "SIDECAR_WEBHOOK_ISTIO_CRDS"
)

// readBuildInfo is replaced in tests.
var readBuildInfo = debug.ReadBuildInfo

// goListTimeout bounds the `go list -m` fallback.
const goListTimeout = 60 * time.Second

// IstioCRDs returns the path of istio.io/api's
// kubernetes/customresourcedefinitions.gen.yaml for the istio.io/api version
// this binary was built with. The environment variable
// SIDECAR_WEBHOOK_ISTIO_CRDS, when non-empty, takes precedence and must name
// an existing file.
func IstioCRDs() (string, error) {
	if p := os.Getenv(EnvIstioCRDs); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvIstioCRDs, p, err)
		}
		if err := regularFile(abs); err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvIstioCRDs, p, err)
		}
		return abs, nil
	}
	return ModuleFile(IstioAPIModule, IstioCRDsFile)
}

// ModuleFile returns the path of file rel (slash-separated, relative to the
// module root) inside module modulePath, at the version recorded in this
// binary's build info. When the build info doesn't list the module, or the
// module is not in the module cache at that version, it falls back to
// `go list -m -f '{{.Dir}}' modulePath`, which consults the go.mod of the
// current directory.
func ModuleFile(modulePath, rel string) (string, error) {
	if modulePath == "" {
		return "", errors.New("crds: empty module path")
	}
	relOS := filepath.FromSlash(rel)
	if !filepath.IsLocal(relOS) {
		return "", fmt.Errorf("crds: %q is not a relative path inside a module", rel)
	}

	var tried []string

	if dir, version, ok := buildInfoModuleDir(modulePath); ok {
		p := filepath.Join(dir, relOS)
		if regularFile(p) == nil {
			return p, nil
		}
		tried = append(tried, fmt.Sprintf("%s (build info: %s@%s)", p, modulePath, version))
	}

	dir, listErr := goListModuleDir(modulePath)
	if listErr == nil {
		p := filepath.Join(dir, relOS)
		if regularFile(p) == nil {
			return p, nil
		}
		tried = append(tried, fmt.Sprintf("%s (go list -m)", p))
	} else {
		tried = append(tried, fmt.Sprintf("go list -m %s: %v", modulePath, listErr))
	}

	return "", fmt.Errorf("crds: cannot find %s in module %s; run `go mod download %s` in the repository (tried: %s)",
		rel, modulePath, modulePath, strings.Join(tried, "; "))
}

// buildInfoModuleDir returns the module-cache directory of modulePath at the
// version found in the running binary's build info.
func buildInfoModuleDir(modulePath string) (dir, version string, ok bool) {
	bi, ok := readBuildInfo()
	if !ok || bi == nil {
		return "", "", false
	}
	mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
	for _, m := range mods {
		if m == nil || m.Path != modulePath {
			continue
		}
		path, version := m.Path, m.Version
		if r := m.Replace; r != nil {
			if r.Version == "" {
				// Replaced by a local directory; its location relative to
				// the main module is unknown here. Let `go list` handle it.
				return "", "", false
			}
			path, version = r.Path, r.Version
		}
		if version == "" || version == "(devel)" {
			return "", "", false
		}
		d, err := ModuleCacheDir(path, version)
		if err != nil {
			return "", "", false
		}
		return d, version, true
	}
	return "", "", false
}

// ModuleCacheDir returns where the go command extracts modulePath@version:
// $GOMODCACHE/<escaped path>@<escaped version>. The directory may not exist.
func ModuleCacheDir(modulePath, version string) (string, error) {
	cache := modCache()
	if cache == "" {
		return "", errors.New("crds: cannot determine the module cache (set GOMODCACHE, GOPATH or HOME)")
	}
	ep, err := escape(modulePath)
	if err != nil {
		return "", fmt.Errorf("crds: module path %q: %w", modulePath, err)
	}
	ev, err := escape(version)
	if err != nil {
		return "", fmt.Errorf("crds: module version %q: %w", version, err)
	}
	return filepath.Join(cache, filepath.FromSlash(ep)+"@"+ev), nil
}

// modCache mirrors the go command's default: GOMODCACHE, else the first
// GOPATH entry's pkg/mod, else $HOME/go/pkg/mod.
func modCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		if first := filepath.SplitList(gp)[0]; first != "" {
			return filepath.Join(first, "pkg", "mod")
		}
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, "go", "pkg", "mod")
}

// escape applies the module cache's case encoding: every upper-case ASCII
// letter becomes '!' followed by its lower-case form (see
// golang.org/x/mod/module.EscapePath, which is not a direct dependency here).
func escape(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("invalid UTF-8")
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '!':
			return "", errors.New("contains '!'")
		case 'A' <= r && r <= 'Z':
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// goListModuleDir asks the go command for the directory of modulePath as
// resolved by the go.mod of the current working directory.
func goListModuleDir(modulePath string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go command not found: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), goListTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Dir}}", modulePath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", err
		}
		return "", fmt.Errorf("%w: %s", err, msg)
	}
	dir := strings.TrimSpace(stdout.String())
	if dir == "" {
		return "", fmt.Errorf("module %s is not downloaded", modulePath)
	}
	return dir, nil
}

func regularFile(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}
