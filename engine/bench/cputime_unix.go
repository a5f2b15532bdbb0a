//go:build unix

package bench

import (
	"syscall"
	"time"
)

// processCPU is the process's user and system CPU time so far (every
// thread: the kernels' pool included); 0 when unknown.
func processCPU() time.Duration {
	var r syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &r) != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
