//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package safefile

import (
	"errors"
	"os"
)

// TryLock takes a lock file beside f (f's name with ".lock"), created
// exclusively and removed by Unlock: this system has no flock. A crash
// leaves it behind; the message of the caller should say to delete it
// when no other instance runs.
func TryLock(f *os.File) (ok bool, err error) {
	l, err := os.OpenFile(f.Name()+".lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, l.Close()
}

// Unlock removes TryLock's lock file.
func Unlock(f *os.File) error { return os.Remove(f.Name() + ".lock") }
