//go:build unix

package trustee

import "syscall"

// umask sets the process's file mode creation mask and returns the old
// one, so the control socket is never briefly open to others.
func umask(m int) int { return syscall.Umask(m) }
