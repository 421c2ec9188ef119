package escrow

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is Linux's CLOCK_THREAD_CPUTIME_ID.
const clockThreadCPUTime = 3

// threadCPU returns the CPU time the calling OS thread has used, to the
// nanosecond (getrusage's per-thread figures are tick-sampled, too coarse
// for one operation). The benchmarks lock their goroutine to its thread,
// so that the figures exclude the time other processes of a shared machine
// took.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic("escrow: clock_gettime: " + errno.Error())
	}
	return time.Duration(ts.Nano())
}
