package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvAssets is the conventional envtest variable naming the directory that
// holds etcd, kube-apiserver and kubectl.
const EnvAssets = "KUBEBUILDER_ASSETS"

const (
	binAPIServer = "kube-apiserver"
	binEtcd      = "etcd"
	binKubectl   = "kubectl"
	// binEtcdAlt is what `go build go.etcd.io/etcd/server/v3` names etcd.
	binEtcdAlt = "server"
)

// DefaultAssetsDir returns where the control-plane binaries are looked for
// when Options.AssetsDir is empty: $KUBEBUILDER_ASSETS if set, else the bin/
// directory of the repository, found by walking up from the working
// directory to a directory holding go.mod. Among nested modules the first
// whose bin/ holds kube-apiserver wins, else the outermost one. It returns ""
// if nothing is found.
func DefaultAssetsDir() string {
	if d := os.Getenv(EnvAssets); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	var outermost string
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			bin := filepath.Join(dir, "bin")
			if isExecutable(filepath.Join(bin, binAPIServer)) {
				return bin
			}
			outermost = bin
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return outermost
}

// assetPaths are the binaries of one assets directory.
type assetPaths struct {
	apiServer, etcd, kubectl string
	// controllerManager is set only when Options.ControllerManager asks
	// for it.
	controllerManager string
}

// resolveAssets finds the three binaries in dir. etcd may also be named
// "server" (the name `go build` gives to go.etcd.io/etcd/server/v3).
func resolveAssets(dir string) (assetPaths, error) {
	if dir == "" {
		return assetPaths{}, errors.New("no assets directory: set Options.AssetsDir or " + EnvAssets +
			", or build the control plane into <repo>/bin")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return assetPaths{}, err
	}
	p := assetPaths{
		apiServer: filepath.Join(abs, binAPIServer),
		etcd:      filepath.Join(abs, binEtcd),
		kubectl:   filepath.Join(abs, binKubectl),
	}
	if !isExecutable(p.etcd) {
		if alt := filepath.Join(abs, binEtcdAlt); isExecutable(alt) {
			p.etcd = alt
		}
	}
	var missing []string
	for _, b := range []string{p.apiServer, p.etcd, p.kubectl} {
		if !isExecutable(b) {
			missing = append(missing, filepath.Base(b))
		}
	}
	if len(missing) > 0 {
		return p, fmt.Errorf("control-plane binaries missing in %s: %s", abs, strings.Join(missing, ", "))
	}
	return p, nil
}

// CheckAssets reports whether dir ("" means DefaultAssetsDir()) holds
// executable kube-apiserver, etcd (or "server") and kubectl binaries. The
// error names the missing ones; tests use it to decide whether to skip.
func CheckAssets(dir string) error {
	if dir == "" {
		dir = DefaultAssetsDir()
	}
	_, err := resolveAssets(dir)
	return err
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
