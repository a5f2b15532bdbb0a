//go:build !unix

package convert

// release is a no-op where madvise does not exist.
func release(data []byte) {}
