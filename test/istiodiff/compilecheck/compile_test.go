// Package compilecheck proves that the project's own packages build inside
// this module's graph, next to istio.io/istio.
package compilecheck

import (
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
)

func TestMainModuleLinks(t *testing.T) {
	if !sidecar.IsUnixAddress("unix:///var/run/app.sock") {
		t.Fatal("sidecar.IsUnixAddress rejected a unix address")
	}
}
