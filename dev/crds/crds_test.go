package crds

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// istioVersion returns the istio.io/api version of this repository's build
// list. (`go test` binaries carry no dependency build info, so ask go.)
func istioVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}", IstioAPIModule).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", IstioAPIModule, err)
	}
	v := strings.TrimSpace(string(out))
	if v == "" {
		t.Fatalf("no version for %s", IstioAPIModule)
	}
	return v
}

// fakeBuildInfo makes the package see a build info listing deps.
func fakeBuildInfo(t *testing.T, deps ...*debug.Module) {
	t.Helper()
	readBuildInfo = func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Path: "example.com/main", Version: "(devel)"}, Deps: deps}, true
	}
	t.Cleanup(func() { readBuildInfo = debug.ReadBuildInfo })
}

func TestIstioCRDs(t *testing.T) {
	t.Setenv(EnvIstioCRDs, "")
	p, err := IstioCRDs()
	if err != nil {
		t.Fatal(err)
	}
	v := istioVersion(t)
	if !strings.Contains(p, "@"+v+string(filepath.Separator)) {
		t.Errorf("IstioCRDs() = %s, want a path inside %s@%s", p, IstioAPIModule, v)
	}
	if !strings.HasSuffix(filepath.ToSlash(p), "/"+IstioCRDsFile) {
		t.Errorf("IstioCRDs() = %s, want suffix %s", p, IstioCRDsFile)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: CustomResourceDefinition", "name: sidecars.networking.istio.io"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s does not contain %q", p, want)
		}
	}
}

func TestIstioCRDsEnvOverride(t *testing.T) {
	f := filepath.Join(t.TempDir(), "crds.yaml")
	if err := os.WriteFile(f, []byte("# empty\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvIstioCRDs, f)
	p, err := IstioCRDs()
	if err != nil {
		t.Fatal(err)
	}
	if p != f {
		t.Errorf("IstioCRDs() = %s, want %s", p, f)
	}

	t.Setenv(EnvIstioCRDs, filepath.Join(t.TempDir(), "missing.yaml"))
	if _, err := IstioCRDs(); err == nil || !strings.Contains(err.Error(), EnvIstioCRDs) {
		t.Errorf("IstioCRDs() with a missing override: err = %v, want an error naming %s", err, EnvIstioCRDs)
	}
}

func TestModuleFileFromModuleCache(t *testing.T) {
	// Point GOMODCACHE at a fake cache holding the build-info version; the
	// build-info path must be used (no `go list` needed).
	cache := t.TempDir()
	v := istioVersion(t)
	dir := filepath.Join(cache, "istio.io", "api@"+v, "kubernetes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "customresourcedefinitions.gen.yaml")
	if err := os.WriteFile(want, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMODCACHE", cache)
	fakeBuildInfo(t, &debug.Module{Path: IstioAPIModule, Version: v})
	got, err := ModuleFile(IstioAPIModule, IstioCRDsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ModuleFile = %s, want %s", got, want)
	}
}

func TestModuleFileFallsBackToGoList(t *testing.T) {
	want, err := ModuleFile(IstioAPIModule, IstioCRDsFile)
	if err != nil {
		t.Fatal(err)
	}
	// Without build info only `go list -m` (run in this package's
	// directory, inside the repository) can resolve the module.
	fakeBuildInfo(t)
	got, err := ModuleFile(IstioAPIModule, IstioCRDsFile)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ModuleFile via go list = %s, want %s", got, want)
	}
}

func TestModuleFileMissing(t *testing.T) {
	_, err := ModuleFile(IstioAPIModule, "does/not/exist.yaml")
	if err == nil {
		t.Fatal("expected an error")
	}
	if !strings.Contains(err.Error(), "go mod download "+IstioAPIModule) {
		t.Errorf("error %q does not tell to run go mod download", err)
	}
	if _, err := ModuleFile(IstioAPIModule, "../escape"); err == nil {
		t.Error("expected an error for a non-local path")
	}
}

func TestModuleCacheDirEscaping(t *testing.T) {
	t.Setenv("GOMODCACHE", "/cache")
	got, err := ModuleCacheDir("github.com/BurntSushi/toml", "v1.0.0-RC1")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.FromSlash("/cache/github.com/!burnt!sushi/toml@v1.0.0-!r!c1")
	if got != want {
		t.Errorf("ModuleCacheDir = %s, want %s", got, want)
	}
	if _, err := ModuleCacheDir("example.com/a!b", "v1.0.0"); err == nil {
		t.Error("expected an error for '!' in a module path")
	}

	t.Setenv("GOMODCACHE", "")
	t.Setenv("GOPATH", "/gp1"+string(filepath.ListSeparator)+"/gp2")
	if got, _ := ModuleCacheDir("x.io/y", "v1.2.3"); got != filepath.FromSlash("/gp1/pkg/mod/x.io/y@v1.2.3") {
		t.Errorf("GOPATH-based cache dir = %s", got)
	}
	t.Setenv("GOPATH", "")
	t.Setenv("HOME", "/home/someone")
	if got, _ := ModuleCacheDir("x.io/y", "v1.2.3"); got != filepath.FromSlash("/home/someone/go/pkg/mod/x.io/y@v1.2.3") {
		t.Errorf("HOME-based cache dir = %s", got)
	}
}

func TestModuleFileReplacedVersion(t *testing.T) {
	cache := t.TempDir()
	dir := filepath.Join(cache, "example.com", "!fork@v9.9.9", "sub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "f.yaml")
	if err := os.WriteFile(want, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMODCACHE", cache)
	fakeBuildInfo(t, &debug.Module{
		Path: "example.com/orig", Version: "v1.0.0",
		Replace: &debug.Module{Path: "example.com/Fork", Version: "v9.9.9"},
	})
	got, err := ModuleFile("example.com/orig", "sub/f.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("ModuleFile = %s, want %s", got, want)
	}
}

// TestPolicyReportCRD: the pinned module ships the PolicyReport CRD where
// the tests look for it.
func TestPolicyReportCRD(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a large module")
	}
	p, err := PolicyReportCRD(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: CustomResourceDefinition", "name: policyreports.wgpolicyk8s.io", "name: v1alpha2"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("%s lacks %q", p, want)
		}
	}
	if _, err := DownloadedFile(t.Context(), PolicyReportModule, PolicyReportVersion, "no/such/file.yaml"); err == nil {
		t.Errorf("a missing file was found")
	}
	if _, err := DownloadedFile(t.Context(), PolicyReportModule, PolicyReportVersion, "../escape.yaml"); err == nil {
		t.Errorf("a path outside the module was accepted")
	}
}
