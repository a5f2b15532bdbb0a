//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package hub

// Free is unknown here: the free-space check is skipped.
func (osSpace) Free(dir string) (int64, string, error) { return -1, dir, nil }
