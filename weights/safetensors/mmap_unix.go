//go:build unix

package safetensors

import (
	"fmt"
	"math"

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
