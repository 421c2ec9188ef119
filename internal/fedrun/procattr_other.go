//go:build !linux && !freebsd

package fedrun

import "syscall"

// childProcAttr is the portable fallback where the kernel cannot kill a
// child when its parent dies (no Pdeathsig): trustee processes are then
// stopped by [Federation.Close], which the demo also calls when it is
// interrupted (SIGINT, SIGTERM). A parent killed outright (SIGKILL, or
// Windows' TerminateProcess) leaves its trustees running; stop them by
// hand.
func childProcAttr() *syscall.SysProcAttr { return nil }
