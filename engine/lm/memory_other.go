//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package lm

func physicalMemory() int64 { return 0 }
