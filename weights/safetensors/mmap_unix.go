//go:build unix

package safetensors

import (
	"fmt"
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// mapFile maps path read-only. Empty files cannot be mapped and are read
// (giving an empty slice and a nil unmap function).
func mapFile(path string) ([]byte, func([]byte) error, error) {
	f, err := safefile.Open(path) // a FIFO or a device is refused, never waited on
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 {
		data, err := readFile(path)
		return data, nil, err
	}
	if size > math.MaxInt {
		return nil, nil, fmt.Errorf("%s: %d bytes is too large to map", path, size)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	return data, unix.Munmap, nil
}

// release tells the kernel that this process no longer needs the mapped
// pages of data (a tensor of a read-only file mapping), so that streaming a
// 15 GB checkpoint does not leave all of it resident in the process: the
// pages stay in the page cache and come back on the next read. Errors are
// ignored: this is advice.
func release(data []byte) {
	if len(data) == 0 {
		return
	}
	// Only the whole pages inside data: madvise wants a page-aligned start,
	// and the partial pages at the ends may hold other tensors.
	page := os.Getpagesize()
	off := (page - int(uintptr(unsafe.Pointer(&data[0]))%uintptr(page))) % page
	if off >= len(data) {
		return
	}
	if n := (len(data) - off) / page * page; n > 0 {
		unix.Madvise(data[off:off+n], unix.MADV_DONTNEED)
	}
}
