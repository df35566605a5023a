//go:build unix

package main

import (
	"os"
	"syscall"
)

// peakRSSMiB is the largest resident set of an exited process (its
// getrusage ru_maxrss, KiB on Linux), in MiB; 0 if unknown.
func peakRSSMiB(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}
