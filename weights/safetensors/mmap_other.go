//go:build !unix

package safetensors

// mapFile reads the whole file where memory mapping is not implemented.
func mapFile(path string) ([]byte, func([]byte) error, error) {
	data, err := readFile(path)
	return data, nil, err
}

// release does nothing: the data was read, not mapped.
func release([]byte) {}
