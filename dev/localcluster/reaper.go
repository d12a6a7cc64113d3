package localcluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// reaper is a tiny `sh` process that SIGKILLs the control-plane processes
// once its stdin reaches EOF, which happens when this process exits in any
// way, including SIGKILL or a `go test -timeout` panic that skips deferred
// Stop calls. envtest starts etcd and kube-apiserver in their own process
// groups, so nothing else would take them down. A normal Stop kills the
// reaper (by its pid) after the control plane has stopped gracefully.
type reaper struct {
	cmd *exec.Cmd
	w   io.WriteCloser
}

// reaperScript's $1, if not empty, is a directory to remove afterwards.
const reaperScript = `pids=
while read -r p; do pids="$pids $p"; done
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
if [ -n "$1" ]; then sleep 1; rm -rf -- "$1"; fi
exit 0`

// startReaper starts the reaper; removeDir, if not empty, is deleted after
// the kill (a temporary state directory).
func startReaper(removeDir string) (*reaper, error) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(sh, "-c", reaperScript, "localcluster-reaper", removeDir)
	// Own process group: a terminal's Ctrl-C must not take the reaper down
	// before the caller has had a chance to Stop gracefully.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	w, err := cmd.StdinPipe() // O_CLOEXEC: no other child inherits it
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &reaper{cmd: cmd, w: w}, nil
}

// watch registers processes to kill should this process die.
func (r *reaper) watch(pids ...int) error {
	if r == nil {
		return nil
	}
	for _, p := range pids {
		if _, err := fmt.Fprintln(r.w, p); err != nil {
			return err
		}
	}
	return nil
}

// stop ends the reaper without it killing anything.
func (r *reaper) stop() {
	if r == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.w.Close()
	_ = r.cmd.Wait()
}

// childPIDs returns the pids of this process's children whose argv[0] is
// one of paths (Linux /proc; nil elsewhere).
func childPIDs(paths ...string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parens.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err != nil || ppid != self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		for _, p := range paths {
			if string(argv0) == p {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
