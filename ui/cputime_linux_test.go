package ui

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cpuTime runs f on a locked thread and returns the CPU time the thread
// spent: a measure of f's own work that other processes on a loaded
// machine do not inflate (as they do wall time).
func cpuTime(f func()) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &before)
	f()
	unix.Getrusage(unix.RUSAGE_THREAD, &after)
	return time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
}
