//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package hub

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func (osSpace) Free(dir string) (int64, string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, "", &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	id := dir
	if fi, err := os.Stat(dir); err == nil {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			id = fmt.Sprint(s.Dev)
		}
	}
	return int64(st.Bavail) * int64(st.Bsize), id, nil
}
