// Package image builds the sidecar-webhook container image with Go tooling
// alone (no container engine): one layer holding the static binary and the
// few files an empty base lacks, a numeric non-root user, and the OCI labels.
//
// The Dockerfile at the repository's root builds the same layout for those
// who prefer a container engine; dockerfile_test.go keeps the two in step.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is. The Deployment (deploy/base/deployment.yaml, and the
// chart) runs the container as the same user and with the same command.
const (
	// BinaryPath is where the binary sits in the image, and the entrypoint.
	BinaryPath = "/sidecar-webhook"
	// UID and GID are distroless's "nonroot", the user the image ran as
	// when it was built on distroless/static. Numeric in the image config
	// so that the kubelet can check runAsNonRoot without reading
	// /etc/passwd.
	UID  = 65532
	GID  = 65532
	User = "65532:65532"

	// Package is the main package the image runs, relative to the
	// repository's root.
	Package = "./cmd/sidecar-webhook"
	// Source is the org.opencontainers.image.source label.
	Source = "https://github.com/sidecar-webhook/sidecar-webhook"
	// Title is the org.opencontainers.image.title label.
	Title = "sidecar-webhook"
)

// The OCI annotation keys used as image labels.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelTitle    = "org.opencontainers.image.title"
)

var (
	// Entrypoint and Cmd: `docker run IMAGE` serves; `docker run IMAGE
	// check ...` runs another subcommand.
	Entrypoint = []string{BinaryPath}
	Cmd        = []string{"serve"}
	// ExposedPorts: webhook (HTTPS), metrics, health probes; the server's
	// flag defaults and the Deployment's container ports.
	ExposedPorts = []string{"9443/tcp", "8080/tcp", "8081/tcp"}
	// BuildEnv and BuildFlags make the binary static (no libc on an empty
	// base), reproducible (no local paths) and stripped.
	BuildEnv   = []string{"CGO_ENABLED=0"}
	BuildFlags = []string{"-trimpath", "-ldflags=-s -w"}
)

// rootfs holds the files an empty base lacks and the server or its users
// may need; the Dockerfile copies the same directory.
//
//   - etc/passwd and etc/group name uid/gid 65532 "nonroot" (and root), as
//     distroless did: whatever maps ids to names (Go's os/user, ps or id in
//     a debug container sharing the pod's process namespace) then shows a
//     name instead of failing. Its home is /nonexistent (nothing may be
//     written there; the root filesystem is read-only in the Deployment).
//
//go:embed rootfs
var rootfs embed.FS

// RootfsDir is rootfs's path relative to the repository's root, for the
// Dockerfile's COPY.
const RootfsDir = "tools/image/rootfs"

// Entry is one file or directory of the image's single layer.
type Entry struct {
	Name string // relative, slash-separated: "etc/passwd", "tmp/"
	Mode int64  // permission bits (and sticky)
	Dir  bool
}

// Layout lists what the layer holds, in order. Everything is owned by root:
// the server runs as 65532 and cannot change any of it.
//
//   - tmp/ (1777, as on distroless): the server writes nothing at run time
//     (the serving certificate is a Secret volume mounted at
//     /tmp/k8s-webhook-server/serving-certs, whose mount point the runtime
//     creates; logs go to stderr), and the Deployment's root filesystem is
//     read-only anyway; /tmp is there so that a library asking for
//     os.TempDir finds it when the image runs elsewhere (docker run, a
//     writable root filesystem).
//   - No CA certificates: in a cluster the server trusts the API server
//     through the ServiceAccount's ca.crt, and it calls nothing else.
//   - No shell, no other binary.
func Layout() []Entry {
	return []Entry{
		{Name: "etc/", Mode: 0o755, Dir: true},
		{Name: "etc/group", Mode: 0o644},
		{Name: "etc/passwd", Mode: 0o644},
		{Name: BinaryPath[1:], Mode: 0o555},
		{Name: "tmp/", Mode: 0o1777, Dir: true},
	}
}

// Options describe one image.
type Options struct {
	// Binary is the static linux binary (see BuildBinary).
	Binary []byte
	// Arch is its GOARCH, recorded as the image's architecture.
	Arch string
	// Version and Revision become the OCI labels; empty ones are left out.
	Version, Revision string
	// Created is the image's creation time and every file's modification
	// time: the same inputs give the same digest (use the commit's time).
	Created time.Time
}

// Build assembles the image: one OCI layer on an empty base.
func Build(o Options) (v1.Image, error) {
	if err := CheckStatic(o.Binary, o.Arch); err != nil {
		return nil, err
	}
	created := o.Created.UTC()
	data, err := layerTar(o.Binary, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "sidecar-webhook tools/cmd/image",
			Comment:   BinaryPath + " and " + RootfsDir,
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = o.Arch
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		User:         User,
		Entrypoint:   Entrypoint,
		Cmd:          Cmd,
		WorkingDir:   "/",
		ExposedPorts: map[string]struct{}{},
		Labels:       Labels(o.Version, o.Revision),
	}
	for _, p := range ExposedPorts {
		cf.Config.ExposedPorts[p] = struct{}{}
	}
	return mutate.ConfigFile(img, cf)
}

// Labels are the image's OCI labels.
func Labels(version, revision string) map[string]string {
	l := map[string]string{LabelSource: Source, LabelTitle: Title}
	if version != "" {
		l[LabelVersion] = version
	}
	if revision != "" {
		l[LabelRevision] = revision
	}
	return l
}

// layerTar writes the layer's uncompressed tar: Layout's entries, owned by
// root, all with the same modification time.
func layerTar(binary []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range Layout() {
		hdr := &tar.Header{
			Name:    e.Name,
			Mode:    e.Mode,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		var body []byte
		switch {
		case e.Dir:
			hdr.Typeflag = tar.TypeDir
		case e.Name == BinaryPath[1:]:
			hdr.Typeflag, body = tar.TypeReg, binary
		default:
			var err error
			if body, err = fs.ReadFile(rootfs, path.Join("rootfs", e.Name)); err != nil {
				return nil, err
			}
			hdr.Typeflag = tar.TypeReg
		}
		hdr.Size = int64(len(body))
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// elfMachines maps GOARCH to the ELF machine a binary for it declares.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
}

// CheckStatic refuses what cannot run on an empty base: anything but a
// linux ELF executable for arch without a dynamic loader.
func CheckStatic(binary []byte, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("architecture %q not supported (one of amd64, arm64, ppc64le, s390x)", arch)
	}
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		return fmt.Errorf("the binary is not a linux executable: %w", err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("the binary is for %s, not %s", f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("the binary is dynamically linked (an empty base has no libc): build it with CGO_ENABLED=0")
		}
	}
	return nil
}

// BuildBinary builds the webhook's static binary for linux/arch from the
// repository at src into out, with BuildEnv and BuildFlags.
func BuildBinary(ctx context.Context, src, arch, out string) error {
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-o", out, Package)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), BuildEnv...)
	cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v in %s: %w", args, src, err)
	}
	return nil
}

// WriteLayout writes img as the only image of an OCI image layout at dir
// (replacing whatever was there), its index entry annotated with refName.
func WriteLayout(dir string, img v1.Image, refName string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if refName != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": refName,
		}))
	}
	return p.AppendImage(img, opts...)
}

// ReadLayout reads back the single image of an OCI layout written by
// WriteLayout.
func ReadLayout(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s holds %d manifests, want 1", dir, len(m.Manifests))
	}
	return idx.Image(m.Manifests[0].Digest)
}

// WriteTarball writes img as a `docker load` tarball tagged tag.
func WriteTarball(file string, img v1.Image, tag string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return tarball.WriteToFile(file, t, img)
}

// Push uploads img to ref with credentials from keychain (for users:
// authn.DefaultKeychain, the docker/podman config and credential helpers)
// and returns the pushed digest reference.
func Push(ctx context.Context, img v1.Image, ref string, keychain authn.Keychain, opts ...remote.Option) (name.Digest, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain)}, opts...)
	if err := remote.Write(r, img, opts...); err != nil {
		return name.Digest{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return r.Context().Digest(d.String()), nil
}

// Sizes are an image's byte counts.
type Sizes struct {
	// Layer is the compressed layer (what a node downloads), Uncompressed
	// the layer's tar.
	Layer, Uncompressed int64
	// Total adds the manifest and the config: everything a registry stores.
	Total int64
}

// SizesOf measures img.
func SizesOf(img v1.Image) (Sizes, error) {
	var s Sizes
	layers, err := img.Layers()
	if err != nil {
		return s, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return s, err
		}
		s.Layer += n
		rc, err := l.Uncompressed()
		if err != nil {
			return s, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return s, err
		}
		s.Uncompressed += u
	}
	m, err := img.RawManifest()
	if err != nil {
		return s, err
	}
	c, err := img.RawConfigFile()
	if err != nil {
		return s, err
	}
	s.Total = s.Layer + int64(len(m)) + int64(len(c))
	return s, nil
}

// SourceDateEpoch parses $SOURCE_DATE_EPOCH (reproducible-builds.org), the
// usual way to pin Created.
func SourceDateEpoch(v string) (time.Time, error) {
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", v, err)
	}
	return time.Unix(secs, 0).UTC(), nil
}
