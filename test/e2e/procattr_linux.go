// Package e2e holds the end-to-end tests: they drive `sidecar-webhook-dev`
// (a real etcd and kube-apiserver with the webhook registered over TLS) with
// the real kubectl, the way an administrator would. The test files carry the
// controlplane build tag: `make e2e`, or `go test -tags controlplane ./test/e2e/`.
package e2e

import "syscall"

// devProcAttr makes the kernel send SIGTERM to the dev process should the
// test binary die without stopping it (a `go test -timeout` panic, SIGKILL),
// so it can still shut the control plane down cleanly.
func devProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
