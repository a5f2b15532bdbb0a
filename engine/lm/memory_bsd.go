//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package lm

import (
	"runtime"

	"golang.org/x/sys/unix"
)

func physicalMemory() int64 {
	name := "hw.physmem"
	if runtime.GOOS == "darwin" {
		name = "hw.memsize"
	}
	n, err := unix.SysctlUint64(name)
	if err != nil || n > 1<<62 {
		return 0
	}
	return int64(n)
}
