//go:build unix

package ics

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time the process has used, all threads (the
// garbage collector's too): benchmarks report throughput per CPU second
// beside the wall-clock figure, which a loaded machine distorts.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
