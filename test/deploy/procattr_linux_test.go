//go:build controlplane

package deploy_test

import "syscall"

// serverProcAttr makes the kernel send SIGTERM to the server should the test
// binary die without stopping it (a `go test -timeout` panic, SIGKILL).
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
