// Package testenv holds what the end-to-end test packages share about their
// surroundings: where the repository is.
package testenv

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
)

// ModulePath is this repository's Go module.
const ModulePath = "github.com/sidecar-webhook/sidecar-webhook"

// RepoRoot walks up from the working directory (go test runs in the package
// directory) to the directory holding this module's go.mod; the nested
// test/controlplane module is skipped over.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(data, []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module " + ModulePath + " above the working directory")
		}
		dir = parent
	}
}
