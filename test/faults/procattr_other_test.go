//go:build !linux

package faults_test

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
