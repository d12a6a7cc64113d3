//go:build controlplane

package faults_test

import "syscall"

// procAttr makes the kernel kill the webhook should the test binary die
// without stopping it (a -timeout panic, SIGKILL).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
