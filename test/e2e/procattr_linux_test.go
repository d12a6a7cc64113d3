//go:build controlplane

package e2e

import "syscall"

// devProcAttr makes the kernel send SIGTERM to the dev process should the
// test binary die without stopping it (a `go test -timeout` panic, SIGKILL),
// so it can still shut the control plane down cleanly.
func devProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
