//go:build linux

package safetensors

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// residentPages counts the pages of a mapping that are in memory.
func residentPages(b []byte) (int, error) {
	page := unix.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return 0, errno
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n, nil
}
