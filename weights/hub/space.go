package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DiskSpace measures free disk space; tests replace the operating
// system's.
type DiskSpace interface {
	// Free returns the bytes this user may still write on the filesystem
	// holding dir (an existing folder), and an identifier of that
	// filesystem (equal for two folders on the same one). free < 0 means
	// unknown, and the check is skipped.
	Free(dir string) (free int64, fsID string, err error)
}

// osSpace is the operating system's DiskSpace (space_*.go).
type osSpace struct{}

// existingDir returns dir or its nearest existing ancestor: where a
// folder still to be made will be.
func existingDir(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return "", fmt.Errorf("%s is not a folder", dir)
			}
			return dir, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", err
		}
		dir = parent
	}
}
