// Package safefile opens, checks and writes the files blip2chat is handed
// by its user, who may hand it anything: a named pipe (FIFO) where a
// session or an image was expected, a device node, a symbolic link, the
// very file being read. Every reader and writer of a user-named path goes
// through it, so that none of them blocks forever in open(), reads an
// endless file, or replaces what it should not.
//
//   - Open, OpenFile and ReadFile open regular files only, and never block:
//     a FIFO is opened non-blocking (open(2) on a FIFO otherwise waits for a
//     writer, deaf to Ctrl+C) and refused.
//   - CheckTarget vets an output path before anything is written: not an
//     input, not a folder, a link, a device or a FIFO; Target.Write then
//     writes it atomically, naming the user's path in its errors (never
//     the temporary file).
//   - TryLock takes an exclusive lock on an open file without waiting.
//   - Name quotes a path for a message when it holds control characters.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// ErrNotRegular is what errors.Is finds in a NotRegularError.
var ErrNotRegular = errors.New("not a regular file")

// NotRegularError says that a path names something other than a regular
// file.
type NotRegularError struct {
	Path string
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", Name(e.Path), Kind(e.Mode))
}

// Is makes errors.Is(err, ErrNotRegular) hold.
func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// Kind names the kind of file a mode describes, with its article: "a
// folder", "a named pipe (FIFO)".
func Kind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a folder"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeCharDevice != 0:
		return "a character device"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// Open opens a regular file for reading; see OpenFile.
func Open(path string) (*os.File, error) { return OpenFile(path, os.O_RDONLY, 0) }

// OpenFile is os.OpenFile for regular files: it never blocks in open(2)
// (a FIFO is opened non-blocking, then refused) and returns a
// NotRegularError for anything that is not a regular file once links are
// followed. Errors name path.
func OpenFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|nonBlock, perm)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return f, nil
}

// TooLargeError says that a file is larger than what reads it accepts.
type TooLargeError struct {
	Path        string
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %s, more than the %s this file can be", Name(e.Path), bytesText(e.Size), bytesText(e.Limit))
}

// ReadFile reads the regular file path whole; limit > 0 refuses a file
// larger than limit bytes before reading it.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, limit)
}

// ReadAll reads the open regular file f from its start, at most limit
// bytes when limit > 0: the size is checked first, and the read is bounded
// too (the file may grow meanwhile).
func ReadAll(f *os.File, limit int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if limit > 0 && size > limit {
		return nil, &TooLargeError{Path: f.Name(), Size: size, Limit: limit}
	}
	bound := int64(math.MaxInt64)
	if limit > 0 {
		bound = limit
	}
	r := io.NewSectionReader(f, 0, bound)
	// As os.ReadFile: room for the size and one more byte, so that the
	// read that finds the end needs no larger buffer.
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Regular checks, without opening it, that path names a regular file once
// links are followed: a quick check before slow work, whose open must
// still go through Open.
func Regular(path string) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &NotRegularError{Path: path, Mode: fi.Mode()}
	}
	return fi, nil
}

// Name is path as a message shows it: as it is, or quoted (Go syntax)
// when it holds control characters or invalid UTF-8, which a terminal
// would act on.
func Name(path string) string {
	if !utf8.ValidString(path) {
		return strconv.Quote(path)
	}
	for _, r := range path {
		if unicode.IsControl(r) {
			return strconv.Quote(path)
		}
	}
	return path
}

// bytesText is a size for a message: "3.2 GB", "512 KB", "17 bytes".
func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
