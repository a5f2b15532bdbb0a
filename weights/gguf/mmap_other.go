//go:build !unix

package gguf

import (
	"io"
	"os"
)

// mapFile reads the file where memory mapping is not implemented (the
// tensors then live on the heap).
func mapFile(fd *os.File, size int) ([]byte, error) {
	data := make([]byte, size)
	_, err := io.ReadFull(fd, data)
	return data, err
}

func unmap([]byte) error { return nil }
