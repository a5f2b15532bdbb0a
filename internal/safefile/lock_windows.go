//go:build windows

package safefile

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is where the lock's one byte lies: far past any data, since
// Windows locks are mandatory and a lock over the data would stop others
// reading it (a second instance showing the session read-only).
const lockOffset uint64 = 1 << 62

// TryLock takes an exclusive lock (LockFileEx) on f without waiting; ok
// is false when another handle holds it. The lock goes with the handle or
// the process.
func TryLock(f *os.File) (ok bool, err error) {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xFFFFFFFF), OffsetHigh: uint32(lockOffset >> 32)}
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return false, nil
	}
	return err == nil, err
}

// Unlock releases TryLock's lock (closing f does too).
func Unlock(f *os.File) error {
	ol := windows.Overlapped{Offset: uint32(lockOffset & 0xFFFFFFFF), OffsetHigh: uint32(lockOffset >> 32)}
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol)
}
