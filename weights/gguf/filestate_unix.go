//go:build unix

package gguf

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileState is the size and modification time (Unix nanoseconds) of the
// open file f, read without allocating (os.File.Stat allocates, and an
// image or a token checks it once).
func fileState(f *os.File) (size, mtime int64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, err
	}
	sec, nsec := st.Mtim.Unix()
	return st.Size, sec*1e9 + nsec, nil
}
