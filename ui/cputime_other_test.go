//go:build !linux

package ui

import "time"

// cpuTime returns the time f takes (wall time here: no per-thread CPU
// clock).
func cpuTime(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}
