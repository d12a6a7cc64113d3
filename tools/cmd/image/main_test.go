package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/sidecar-webhook/sidecar-webhook/tools/image"
)

// staticBinary builds a tiny static program: the command's flags are under
// test here, not the webhook (tools/image's tests run the real binary).
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestWritesLayoutTarballAndPushes: one run writes the OCI layout and the
// `docker load` tarball and pushes, all three the same image, labelled
// from the flags and dated from $SOURCE_DATE_EPOCH.
func TestWritesLayoutTarballAndPushes(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/sidecar-webhook:v9"
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")

	code, stdout, stderr := runCmd(t, "--src", dir, "--binary", bin, "--out", filepath.Join(dir, "layout"),
		"--tar", filepath.Join(dir, "image.tar"), "--tag", "sidecar-webhook:v9",
		"--version", "v9", "--revision", "abc", "--push", ref)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	fromLayout, err := image.ReadLayout(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := fromLayout.Digest()
	if !strings.Contains(stdout, want.String()) || !strings.Contains(stdout, "pushed ") {
		t.Errorf("output does not name the digest %s and the push:\n%s", want, stdout)
	}
	cf, err := fromLayout.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.Labels[image.LabelVersion] != "v9" || cf.Config.Labels[image.LabelRevision] != "abc" {
		t.Errorf("labels %v, want version v9 and revision abc", cf.Config.Labels)
	}
	if cf.Created.Unix() != 1700000000 {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH 1700000000", cf.Created.Time)
	}

	tag, _ := name.NewTag("sidecar-webhook:v9")
	fromTar, err := tarball.ImageFromPath(filepath.Join(dir, "image.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	// docker's tarball format keeps the config and layers, not the
	// manifest: compare what it keeps.
	tarCfg, _ := fromTar.ConfigName()
	layoutCfg, _ := fromLayout.ConfigName()
	if tarCfg != layoutCfg {
		t.Errorf("tarball config %s, layout config %s", tarCfg, layoutCfg)
	}

	r, _ := name.ParseReference(ref)
	pushed, err := remote.Head(r)
	if err != nil {
		t.Fatal(err)
	}
	if pushed.Digest != want {
		t.Errorf("pushed %s, layout holds %s", pushed.Digest, want)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown flag", []string{"--bogus"}, 2, "bogus"},
		{"stray argument", []string{"extra"}, 2, "unexpected arguments"},
		{"not a binary", []string{"--src", dir, "--binary", script, "--out", filepath.Join(dir, "out")}, 1, "not a linux executable"},
		{"unknown architecture", []string{"--src", dir, "--binary", script, "--arch", "mips", "--out", filepath.Join(dir, "out")}, 1, `architecture "mips" not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, c.args...)
			if code != c.wantCode || !strings.Contains(stderr, c.wantErr) {
				t.Errorf("exit %d, want %d; stderr should contain %q:\n%s", code, c.wantCode, c.wantErr, stderr)
			}
		})
	}
}
