package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Target is an output path vetted by CheckTarget: what writing it would
// replace.
type Target struct {
	Path string
	// Existing is the regular file that writing would replace, nil when
	// there is none. Replacing it needs the user's consent: --force on a
	// command line, a confirmation in the interface.
	Existing fs.FileInfo
}

// CheckTarget vets path as a file to write. It refuses a path that is one
// of inputs (the same file, whatever the name: links and hard links
// included), a folder, a symbolic link (writing would replace the link, not
// what it points to), a device node, a FIFO or a socket (which a rename
// would replace by a regular file). A missing path is fine; an existing
// regular file is returned in Target.Existing for the caller to confirm.
// Inputs that do not exist are ignored.
func CheckTarget(path string, inputs ...string) (Target, error) {
	t := Target{Path: path}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return t, err
	case fi.Mode()&fs.ModeSymlink != 0:
		dest, _ := os.Readlink(path)
		return t, fmt.Errorf("%s is a symbolic link (to %s): not replaced; give the path of the file itself", Name(path), Name(dest))
	case fi.IsDir():
		return t, fmt.Errorf("%s is a folder; give a file name", Name(path))
	case !fi.Mode().IsRegular():
		return t, fmt.Errorf("%s is %s: not replaced", Name(path), Kind(fi.Mode()))
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		if ifi, err := os.Stat(in); err == nil && os.SameFile(fi, ifi) {
			if filepath.Clean(in) == filepath.Clean(path) {
				return t, fmt.Errorf("%s is an input: writing it would destroy it; give another name", Name(path))
			}
			return t, fmt.Errorf("%s is the input %s: writing it would destroy it; give another name", Name(path), Name(in))
		}
	}
	t.Existing = fi
	return t, nil
}

// Write writes data to the target atomically: to a temporary file in the
// same folder, synced, then renamed over the path, so that a crash leaves
// the old file or the new one, whole. It refuses to go on when the path
// changed since CheckTarget (a file appeared, or another replaced the one
// confirmed). A replaced file keeps its permissions; a new one gets perm.
// Errors name the target, never the temporary file.
func (t Target) Write(data []byte, perm fs.FileMode) (err error) {
	fail := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return fmt.Errorf("cannot write %s: %w", Name(t.Path), err)
	}
	if t.Existing != nil {
		perm = t.Existing.Mode().Perm()
	}
	dir := filepath.Dir(t.Path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(t.Path)+".tmp-")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := t.unchanged(); err != nil {
		return err
	}
	if err := os.Rename(tmp, t.Path); err != nil {
		return fail(err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// unchanged checks that the path is still what CheckTarget found.
func (t Target) unchanged() error {
	fi, err := os.Lstat(t.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && t.Existing == nil:
		return nil
	case err != nil:
		return err
	case t.Existing == nil:
		return fmt.Errorf("%s appeared meanwhile: not replaced; save again to replace it", Name(t.Path))
	case !os.SameFile(fi, t.Existing) || !fi.Mode().IsRegular() || fi.Size() != t.Existing.Size() || !fi.ModTime().Equal(t.Existing.ModTime()):
		// Size and time too: a new file may reuse a deleted one's inode.
		return fmt.Errorf("%s changed meanwhile: not replaced; save again to replace it", Name(t.Path))
	}
	return nil
}
