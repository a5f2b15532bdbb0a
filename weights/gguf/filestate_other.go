//go:build !unix

package gguf

import "os"

// fileState is the size and modification time (Unix nanoseconds) of the
// open file f.
func fileState(f *os.File) (size, mtime int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return st.Size(), st.ModTime().UnixNano(), nil
}
