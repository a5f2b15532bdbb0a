//go:build unix

package convert

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// release tells the kernel that the mapped pages of data (a tensor of the
// read-only checkpoint mapping) are not needed any more, so that streaming
// a 15 GB checkpoint does not leave all of it resident in this process.
// The pages stay in the page cache and come back on the next read; errors
// are ignored because this is only advice.
func release(data []byte) {
	if len(data) == 0 {
		return
	}
	// Only the whole pages inside data: madvise wants a page-aligned
	// start, and the partial pages at the ends may hold other tensors.
	page := os.Getpagesize()
	off := (page - int(uintptr(unsafe.Pointer(&data[0]))%uintptr(page))) % page
	if off >= len(data) {
		return
	}
	n := (len(data) - off) / page * page
	if n > 0 {
		unix.Madvise(data[off:off+n], unix.MADV_DONTNEED)
	}
}
