//go:build tools

// Package tools pins the commands the Makefile builds from this module into
// bin/ (today the Helm CLI the chart tests run).
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
