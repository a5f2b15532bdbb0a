//go:build windows

package hub

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

func (osSpace) Free(dir string) (int64, string, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, "", err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, "", &os.PathError{Op: "GetDiskFreeSpaceEx", Path: dir, Err: err}
	}
	return int64(avail), strings.ToUpper(filepath.VolumeName(dir)), nil
}
