package sidecar_test

import (
	"fmt"
	"testing"

	"github.com/sidecar-webhook/sidecar-webhook/sidecar"
	"github.com/sidecar-webhook/sidecar-webhook/test/benchdata"
)

// TestFillBenchdata replays the benchmarks' generated Sidecars through the
// differential check of fill_test.go; every one of them must be filled,
// and taken by the fast path.
func TestFillBenchdata(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 100
	}
	for i := range n {
		name := fmt.Sprintf("benchdata/%d", i)
		raw := benchdata.GeneratedSidecar(fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("s-%d", i), i%30)
		if !sidecar.SameDecode(t, name, raw) {
			t.Errorf("%s: not filled", name)
		}
		if !sidecar.FastAccepts(raw) {
			t.Errorf("%s: not taken by the fast path", name)
		}
	}
}
