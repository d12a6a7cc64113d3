//go:build controlplane && !linux

package deploy_test

import "syscall"

// serverProcAttr: only Linux can tie the server's life to ours.
func serverProcAttr() *syscall.SysProcAttr { return nil }
