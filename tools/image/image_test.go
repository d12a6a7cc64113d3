package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sidecar-webhook/sidecar-webhook/tools/image"
)

// created is the fixed creation time of the images built here.
var created = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// webhookBinary builds the real static binary once per test run (the Go
// build cache makes later runs a link only).
var webhookBinary = sync.OnceValues(func() ([]byte, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "image-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "sidecar-webhook")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := image.BuildBinary(ctx, root, runtime.GOARCH, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
})

// repoRoot is the directory of the webhook's own go.mod, above this module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module github.com/sidecar-webhook/sidecar-webhook\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of github.com/sidecar-webhook/sidecar-webhook above the working directory")
		}
		dir = parent
	}
}

// testImage is the image most tests read, built once.
var testImage = sync.OnceValues(func() (v1.Image, error) {
	bin, err := webhookBinary()
	if err != nil {
		return nil, err
	}
	return image.Build(image.Options{
		Binary: bin, Arch: runtime.GOARCH, Version: "v1.2.3", Revision: "0123456789abcdef", Created: created,
	})
})

// sharedImage returns testImage and the binary in it.
func sharedImage(t *testing.T) (v1.Image, []byte) {
	t.Helper()
	img, err := testImage()
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := webhookBinary()
	return img, bin
}

// buildImage builds a fresh image of the same binary.
func buildImage(t *testing.T, version string) (v1.Image, []byte) {
	t.Helper()
	bin, err := webhookBinary()
	if err != nil {
		t.Fatalf("building the webhook binary: %v", err)
	}
	img, err := image.Build(image.Options{
		Binary: bin, Arch: runtime.GOARCH, Version: version, Revision: "0123456789abcdef", Created: created,
	})
	if err != nil {
		t.Fatal(err)
	}
	return img, bin
}

// layerEntry is one tar header of the layer, with its body.
type layerEntry struct {
	hdr  *tar.Header
	body []byte
}

func layerEntries(t *testing.T, img v1.Image) []layerEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want exactly 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []layerEntry
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, layerEntry{hdr, body})
	}
}

// TestImageConfig: what the kubelet and a container engine read from the
// image is what the Deployment expects.
func TestImageConfig(t *testing.T) {
	img, _ := sharedImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	// deploy/base/deployment.yaml: runAsUser 65532, runAsGroup 65532.
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (numeric, non-root)", cf.Config.User)
	}
	if diff := cmp.Diff([]string{"/sidecar-webhook"}, cf.Config.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"serve"}, cf.Config.Cmd); diff != "" {
		t.Errorf("cmd (-want +got):\n%s", diff)
	}
	wantPorts := map[string]struct{}{"9443/tcp": {}, "8080/tcp": {}, "8081/tcp": {}}
	if diff := cmp.Diff(wantPorts, cf.Config.ExposedPorts); diff != "" {
		t.Errorf("exposed ports (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/sidecar-webhook/sidecar-webhook",
		"org.opencontainers.image.version":  "v1.2.3",
		"org.opencontainers.image.revision": "0123456789abcdef",
		"org.opencontainers.image.title":    "sidecar-webhook",
	}
	if diff := cmp.Diff(wantLabels, cf.Config.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if len(cf.Config.Env) != 0 || len(cf.Config.Shell) != 0 {
		t.Errorf("env %q, shell %q: want neither", cf.Config.Env, cf.Config.Shell)
	}
	if !cf.Created.Time.Equal(created) {
		t.Errorf("created %s, want %s", cf.Created.Time, created)
	}
	if len(cf.RootFS.DiffIDs) != 1 || len(cf.History) != 1 {
		t.Errorf("%d diff ids and %d history entries, want 1 and 1", len(cf.RootFS.DiffIDs), len(cf.History))
	}

	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("media types: manifest %s, config %s, layers %+v; want OCI throughout", mt, m.Config.MediaType, m.Layers)
	}
}

// TestImageLayer: the single layer holds exactly the binary and the files
// the package documents, all owned by root, and nothing else (no shell).
func TestImageLayer(t *testing.T) {
	img, bin := sharedImage(t)
	entries := layerEntries(t, img)
	var got, want []string
	for _, e := range entries {
		got = append(got, e.hdr.Name)
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root (the server must not be able to change its files)", e.hdr.Name, e.hdr.Uid, e.hdr.Gid)
		}
		if !e.hdr.ModTime.Equal(created) {
			t.Errorf("%s modified %s, want the image's creation time %s", e.hdr.Name, e.hdr.ModTime, created)
		}
		base := path.Base(strings.TrimSuffix(e.hdr.Name, "/"))
		if slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox"}, base) || strings.HasPrefix(e.hdr.Name, "bin/") {
			t.Errorf("the layer has %s: no shell belongs in the image", e.hdr.Name)
		}
	}
	for _, e := range image.Layout() {
		want = append(want, e.Name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("layer contents (-want +got):\n%s", diff)
	}
	for i, e := range image.Layout() {
		h := entries[i].hdr
		if h.Mode != e.Mode || (h.Typeflag == tar.TypeDir) != e.Dir {
			t.Errorf("%s: mode %o dir %t, want %o dir %t", h.Name, h.Mode, h.Typeflag == tar.TypeDir, e.Mode, e.Dir)
		}
	}
	byName := map[string][]byte{}
	for _, e := range entries {
		byName[e.hdr.Name] = e.body
	}
	if !bytes.Equal(byName["sidecar-webhook"], bin) {
		t.Errorf("the layer's /sidecar-webhook differs from the binary built")
	}
	if !strings.Contains(string(byName["etc/passwd"]), "nonroot:x:65532:65532:") ||
		!strings.Contains(string(byName["etc/group"]), "nonroot:x:65532:") {
		t.Errorf("etc/passwd or etc/group lack the nonroot user 65532:\n%s\n%s", byName["etc/passwd"], byName["etc/group"])
	}
	if h := entries[slices.Index(got, "tmp/")].hdr; h.Mode != 0o1777 {
		t.Errorf("tmp/ mode %o, want 1777", h.Mode)
	}
}

// TestImageBinaryRuns: the binary taken out of the layer runs on its own
// (static: no libc on the empty base) and keeps its documented exit codes.
func TestImageBinaryRuns(t *testing.T) {
	img, _ := sharedImage(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "sidecar-webhook")
	for _, e := range layerEntries(t, img) {
		if e.hdr.Name == "sidecar-webhook" {
			if err := os.WriteFile(bin, e.body, os.FileMode(e.hdr.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowed := write("allowed.yaml", `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: default
  namespace: prod
spec:
  egress:
    - hosts: ["./*", "istio-system/*"]
`)
	conflicting := write("conflicting.yaml", `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: first
  namespace: prod
spec:
  egress:
    - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata:
  name: second
  namespace: prod
spec:
  egress:
    - hosts: ["./*"]
`)
	cases := []struct {
		args     []string
		wantCode int
		wantOut  string // in stdout or stderr
	}{
		{[]string{"--help"}, 0, "Usage: sidecar-webhook COMMAND"},
		{nil, 2, "Usage: sidecar-webhook COMMAND"},
		{[]string{"serve", "--help"}, 0, "-cert-dir"},
		{[]string{"check", allowed}, 0, "ALLOWED Sidecar prod/default"},
		{[]string{"check", conflicting}, 1, "DENIED Sidecar prod/second"},
		// The local control plane is cmd/sidecar-webhook-dev, never shipped.
		{[]string{"dev"}, 2, `unknown command "dev"`},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, c.args...)
		// What the image provides: no PATH, no HOME beyond passwd's.
		cmd.Env = []string{"HOME=/nonexistent"}
		out, err := cmd.CombinedOutput()
		cancel()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("running %v: %v", c.args, err)
		}
		if code != c.wantCode || !strings.Contains(string(out), c.wantOut) {
			t.Errorf("sidecar-webhook %q: exit %d, want %d; output should contain %q:\n%s",
				c.args, code, c.wantCode, c.wantOut, out)
		}
	}
}

// TestImageReproducible: the same inputs give the same digest; a different
// version label gives another.
func TestImageReproducible(t *testing.T) {
	a, _ := sharedImage(t)
	b, _ := buildImage(t, "v1.2.3")
	c, _ := buildImage(t, "v1.2.4")
	da, _ := a.Digest()
	db, _ := b.Digest()
	dc, _ := c.Digest()
	if da != db {
		t.Errorf("two builds of the same inputs: %s and %s", da, db)
	}
	if da == dc {
		t.Errorf("another version label gave the same digest %s", da)
	}
}

// TestLayoutRoundTrip: the OCI layout `make image` writes reads back as the
// same image.
func TestLayoutRoundTrip(t *testing.T) {
	img, _ := sharedImage(t)
	dir := filepath.Join(t.TempDir(), "image")
	if err := image.WriteLayout(dir, img, "sidecar-webhook:v1.2.3"); err != nil {
		t.Fatal(err)
	}
	// A second write replaces the first (no stale blobs, one manifest).
	if err := image.WriteLayout(dir, img, "sidecar-webhook:v1.2.3"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("OCI layout lacks %s: %v", f, err)
		}
	}
	got, err := image.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, got)
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 3 {
		t.Errorf("%d blobs, want 3 (manifest, config, layer)", len(blobs))
	}
}

// TestPushPull: pushed with the usual credential chain to a registry (here
// go-containerregistry's, in process), the image pulls back unchanged.
func TestPushPull(t *testing.T) {
	img, _ := sharedImage(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/sidecar-webhook/sidecar-webhook:v1.2.3"

	ctx := context.Background()
	pushed, err := image.Push(ctx, img, ref, authn.DefaultKeychain)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if pushed.DigestStr() != want.String() {
		t.Errorf("Push returned %s, the image's digest is %s", pushed, want)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Errorf("the registry's tag points at %s, want %s", desc.Digest, want)
	}
	pulled, err := remote.Image(pushed, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	sameImage(t, img, pulled)
}

// sameImage compares digests, manifests, configs and the layer's bytes.
func sameImage(t *testing.T, want, got v1.Image) {
	t.Helper()
	wd, err := want.Digest()
	if err != nil {
		t.Fatal(err)
	}
	gd, err := got.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if wd != gd {
		t.Errorf("digest %s, want %s", gd, wd)
	}
	wm, _ := want.RawManifest()
	gm, _ := got.RawManifest()
	if !bytes.Equal(wm, gm) {
		t.Errorf("manifest differs:\n%s\nwant\n%s", gm, wm)
	}
	wc, _ := want.RawConfigFile()
	gc, _ := got.RawConfigFile()
	if !bytes.Equal(wc, gc) {
		t.Errorf("config differs:\n%s\nwant\n%s", gc, wc)
	}
	gl, err := got.Layers()
	if err != nil || len(gl) != 1 {
		t.Fatalf("%d layers (%v), want 1", len(gl), err)
	}
	rc, err := gl[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h, n, err := v1.SHA256(rc)
	if err != nil {
		t.Fatal(err)
	}
	if h != wantLayerDigest(t, want) {
		t.Errorf("layer bytes hash to %s (%d bytes), want %s", h, n, wantLayerDigest(t, want))
	}
}

func wantLayerDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers[0].Digest
}

// TestCheckStatic: what cannot run on an empty base is refused before it
// becomes an image.
func TestCheckStatic(t *testing.T) {
	bin, err := webhookBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := image.CheckStatic(bin, runtime.GOARCH); err != nil {
		t.Errorf("the webhook's static binary: %v", err)
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	if err := image.CheckStatic(bin, other); err == nil {
		t.Errorf("a %s binary accepted as %s", runtime.GOARCH, other)
	}
	if err := image.CheckStatic([]byte("#!/bin/sh\necho hi\n"), runtime.GOARCH); err == nil {
		t.Errorf("a shell script accepted")
	}
	// A dynamically linked system binary, where there is one (ls is on
	// glibc systems).
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls to try a dynamic binary with")
	}
	data, err := os.ReadFile(ls)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := elf.NewFile(bytes.NewReader(data)); err != nil || !hasInterp(f) {
		t.Skipf("%s is not a dynamically linked ELF binary here", ls)
	}
	if err := image.CheckStatic(data, runtime.GOARCH); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("the dynamically linked %s: got %v, want a refusal naming dynamic linking", ls, err)
	}
}

func hasInterp(f *elf.File) bool {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}
