//go:build !linux

package escrow

import "time"

var processStart = time.Now()

// threadCPU falls back to wall-clock time where per-thread CPU time is
// not read.
func threadCPU() time.Duration { return time.Since(processStart) }
