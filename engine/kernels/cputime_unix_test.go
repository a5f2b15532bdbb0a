//go:build unix

package kernels

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: benchmarks report work per
// CPU-second too, which stays meaningful on a machine shared with others.
func cpuTime() time.Duration {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
