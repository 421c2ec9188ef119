//go:build linux || freebsd

package fedrun

import "syscall"

// childProcAttr has the kernel kill a trustee process when the process
// that started it dies, even by SIGKILL, so that no trustee outlives the
// demo or a test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
