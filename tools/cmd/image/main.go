// Command image builds the sidecar-webhook container image without a
// container engine (see package image) and writes it as an OCI layout,
// optionally also as a `docker load` tarball, and pushes it.
//
//	go run ./cmd/image --src .. --out ../bin/image                 # build
//	go run ./cmd/image --src .. --push registry.example/sidecar-webhook:v1
//
// Version, revision and creation time default to git's view of --src
// (git describe, HEAD and HEAD's commit time; $SOURCE_DATE_EPOCH wins for
// the time), so the same commit gives the same digest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/sidecar-webhook/sidecar-webhook/tools/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	src, binary, arch, out, tar, push, tag string
	version, revision                      string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.src, "src", "", "the repository's root (default: the directory above this module's)")
	fs.StringVar(&c.binary, "binary", "", "a static linux binary to use instead of building one from --src")
	fs.StringVar(&c.arch, "arch", runtime.GOARCH, "GOARCH of the image")
	fs.StringVar(&c.out, "out", "", "write the image as an OCI layout to this directory (default: SRC/bin/image)")
	fs.StringVar(&c.tar, "tar", "", "also write a `docker load` tarball to this file")
	fs.StringVar(&c.tag, "tag", "sidecar-webhook:latest", "the name recorded in the layout's index and the tarball")
	fs.StringVar(&c.push, "push", "", "push the image to this reference (registry/name:tag), with the usual credentials (docker config, credential helpers)")
	fs.StringVar(&c.version, "version", "", "org.opencontainers.image.version (default: git describe --tags --always --dirty)")
	fs.StringVar(&c.revision, "revision", "", "org.opencontainers.image.revision (default: git rev-parse HEAD)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "image: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := build(ctx, c, stdout); err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	return 0
}

func build(ctx context.Context, c config, stdout io.Writer) error {
	if c.src == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		c.src = filepath.Dir(wd)
	}
	if c.out == "" {
		c.out = filepath.Join(c.src, "bin", "image")
	}
	if c.version == "" {
		c.version = git(ctx, c.src, "describe", "--tags", "--always", "--dirty")
	}
	if c.version == "" {
		c.version = "dev"
	}
	if c.revision == "" {
		c.revision = git(ctx, c.src, "rev-parse", "HEAD")
	}
	created := time.Unix(0, 0)
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		t, err := image.SourceDateEpoch(v)
		if err != nil {
			return err
		}
		created = t
	} else if v := git(ctx, c.src, "log", "-1", "--format=%ct"); v != "" {
		if t, err := image.SourceDateEpoch(v); err == nil {
			created = t
		}
	}

	begin := time.Now()
	binPath := c.binary
	if binPath == "" {
		tmp, err := os.MkdirTemp("", "sidecar-webhook-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		binPath = filepath.Join(tmp, "sidecar-webhook")
		if err := image.BuildBinary(ctx, c.src, c.arch, binPath); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return err
	}
	img, err := image.Build(image.Options{
		Binary:   bin,
		Arch:     c.arch,
		Version:  c.version,
		Revision: c.revision,
		Created:  created,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", binPath, err)
	}
	if err := image.WriteLayout(c.out, img, c.tag); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	sizes, err := image.SizesOf(img)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "image %s (linux/%s, version %s) written to %s in %s\n",
		digest, c.arch, c.version, c.out, time.Since(begin).Round(100*time.Millisecond))
	fmt.Fprintf(stdout, "  layer %s compressed (%s uncompressed), total %s\n",
		mib(sizes.Layer), mib(sizes.Uncompressed), mib(sizes.Total))
	if c.tar != "" {
		if err := image.WriteTarball(c.tar, img, c.tag); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  docker load -i %s\n", c.tar)
	}
	if c.push != "" {
		ref, err := image.Push(ctx, img, c.push, authn.DefaultKeychain)
		if err != nil {
			return fmt.Errorf("pushing %s: %w", c.push, err)
		}
		fmt.Fprintf(stdout, "pushed %s\n", ref)
	}
	return nil
}

// git runs git in dir and returns its trimmed output, or "" if it fails
// (no git, not a repository).
func git(ctx context.Context, dir string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
