package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// FreeSpace returns the bytes this user may still write on the file system
// that holds dir, or would hold it once made (its nearest existing
// ancestor); ok is false when that cannot be told.
func FreeSpace(dir string) (free int64, ok bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, false
	}
	for {
		if _, err := os.Stat(dir); err == nil {
			return freeBytes(dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return 0, false
		}
		dir = parent
	}
}

// spaceMargin is kept free beyond what a write needs: GGUF headers (a
// vocabulary is a few MB), file system overhead, rounding in estimates.
func spaceMargin(need int64) int64 { return 64<<20 + need/50 }

// NoSpaceError is the error of a write that does not fit on its disk:
// found before writing, or met while writing (ENOSPC).
type NoSpaceError struct {
	Dir  string
	Need int64  // bytes the write needs in all
	Free int64  // bytes free before it started; -1 if unknown
	File string // the file being written when the disk filled up; "" if found before
}

func (e *NoSpaceError) Error() string {
	s := fmt.Sprintf("no space left on %s (needs %s", e.Dir, FormatBytes(e.Need))
	if e.Free >= 0 {
		s += fmt.Sprintf(", %s free", FormatBytes(e.Free))
	}
	s += ")"
	if e.File != "" {
		s += " while writing " + e.File
	}
	return s
}

// Is makes a NoSpaceError match syscall.ENOSPC.
func (e *NoSpaceError) Is(target error) bool { return target == syscall.ENOSPC }

// CheckSpace refuses a write of need bytes into dir (its file system) with
// a *NoSpaceError when less is free, a margin included; free is the
// caller's measure (nil: FreeSpace).
func CheckSpace(dir string, need int64, free func(string) (int64, bool)) error {
	if free == nil {
		free = FreeSpace
	}
	have, ok := free(dir)
	if !ok || have >= need+spaceMargin(need) {
		return nil
	}
	return &NoSpaceError{Dir: dir, Need: need + spaceMargin(need), Free: have}
}
