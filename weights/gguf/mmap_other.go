//go:build !unix && !windows

package gguf

import (
	"io"
	"os"
)

// mmap reads the file where memory mapping is not implemented.
func mmap(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	return b, err
}

func munmap([]byte) error { return nil }
