//go:build !linux

package bench

import (
	"errors"
	"time"
)

var errNoProc = errors.New("bench: per-process CPU time and memory are read from /proc, which only Linux has")

func processCPU(pid int) (time.Duration, error) { return 0, errNoProc }

func processPeakRSS(pid int) (int64, error) { return 0, errNoProc }

// threadCPU falls back to the wall clock.
func threadCPU() time.Duration { return time.Duration(time.Now().UnixNano()) }
