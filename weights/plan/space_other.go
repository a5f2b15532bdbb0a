//go:build !unix

package plan

// freeBytes cannot tell here: the write fails when the disk is full.
func freeBytes(string) (int64, bool) { return 0, false }
