//go:build controlplane && !linux

package e2e

import "syscall"

// devProcAttr: only Linux can tie the dev process's life to ours.
func devProcAttr() *syscall.SysProcAttr { return nil }
