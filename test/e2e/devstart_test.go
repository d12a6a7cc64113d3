//go:build controlplane

package e2e

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sidecar-webhook/sidecar-webhook/test/testenv"
)

// TestDevFailsFastOnATakenWebhookPort: when something else holds the
// webhook port and accepts connections without ever answering a TLS
// handshake, `make run` must stop with the reason, not wait forever.
func TestDevFailsFastOnATakenWebhookPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accept, and never answer
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)

	binDir := filepath.Dir(env.kubectl)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "sidecar-webhook-dev"),
		"--state-dir", t.TempDir(), "--assets", binDir, "--port", port,
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)),
		"--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("sidecar-webhook-dev still running after %s with its webhook port taken; output:\n%s", took.Round(time.Second), out)
	}
	if testenv.ExitCode(err) != 1 {
		t.Errorf("exit code %d, want 1 (err %v)", testenv.ExitCode(err), err)
	}
	if want := "the webhook server failed to start"; !strings.Contains(string(out), want) {
		t.Errorf("output does not say %q:\n%s", want, out)
	}
	t.Logf("stopped after %s", took.Round(100*time.Millisecond))
}
