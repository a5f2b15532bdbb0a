package plan

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// WriteOptions control WriteFiles. The zero value prints nothing.
type WriteOptions struct {
	// Progress receives the progress bar (nil: none). Terminal says it is
	// a terminal, where one line is redrawn in place; otherwise plain lines
	// are printed from time to time.
	Progress io.Writer
	Terminal bool
	// Finish, if set, is called with each file's temporary path once it is
	// written and synced, before any is renamed into place: it may rewrite
	// the file there (llama.cpp's quantizer turns an f16 llm.gguf into
	// q4_k_m). An error fails the write like any other: every temporary
	// file is removed and the folder is left as it was.
	Finish func(f *File, path string) error
	// Extra is how many bytes Finish writes besides the files (the
	// quantized copy, while the f16 one still exists): the free-space
	// check counts them.
	Extra int64
	// FreeSpace measures the free space of the folder's file system (nil:
	// the operating system's, FreeSpace); tests replace it.
	FreeSpace func(dir string) (int64, bool)
}

// Written describes the files WriteFiles wrote.
type Written struct {
	Paths   []string // in the order of the files given
	Tensors int
	Bytes   int64 // tensor bytes
}

// ErrInterrupted is matched (errors.Is) by the error of a WriteFiles whose
// context was cancelled, as is the context's own error.
var ErrInterrupted = errors.New("conversion interrupted")

// interrupted is the error of a cancelled WriteFiles.
type interrupted struct {
	dir   string
	cause error
}

func (e *interrupted) Error() string {
	return fmt.Sprintf("%v; nothing written to %s", ErrInterrupted, e.dir)
}

func (e *interrupted) Unwrap() []error { return []error{ErrInterrupted, e.cause} }

// WriteFiles writes every file into dir (created if needed): each is
// streamed, tensor by tensor, into a temporary file in dir, and they are
// all renamed into place once every one is complete and synced. On error
// or cancellation the temporary files are removed (and dir too, if this
// call created it and it is still empty), so dir is left as it was.
func WriteFiles(ctx context.Context, dir string, files []*File, o WriteOptions) (w Written, err error) {
	var totalBytes int64
	var totalTensors int
	for _, f := range files {
		seen := map[string]bool{}
		for _, t := range f.Tensors {
			if seen[t.Name] {
				return Written{}, fmt.Errorf("%s: tensor %s planned twice", f.Name, t.Name)
			}
			seen[t.Name] = true
			b, err := t.Bytes()
			if err != nil {
				return Written{}, fmt.Errorf("%s: %v", f.Name, err)
			}
			totalBytes += b
			totalTensors++
		}
	}

	// Everything is written before the old files go: the new files and
	// what Finish adds must fit beside them.
	var need int64
	for _, f := range files {
		need += int64(len(f.Data))
	}
	need += totalBytes + o.Extra
	if err := CheckSpace(dir, need, o.FreeSpace); err != nil {
		return Written{}, err
	}

	created := false
	if st, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Written{}, err
		}
		created = true
	} else if err != nil {
		return Written{}, err
	} else if !st.IsDir() {
		return Written{}, fmt.Errorf("%s is a file, not a model folder; give a new or existing folder", dir)
	}
	var temps []string
	defer func() {
		if err == nil {
			return
		}
		for _, t := range temps {
			if t != "" {
				os.Remove(t)
			}
		}
		if created {
			os.Remove(dir) // only succeeds when empty
		}
	}()

	prog := newProgress(o.Progress, o.Terminal, totalTensors, totalBytes)
	for _, f := range files {
		if f.Absent {
			temps = append(temps, "")
			continue
		}
		tmp, n, err := writeTemp(ctx, dir, f, prog)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err == nil && o.Finish != nil {
			err = o.Finish(f, tmp)
		}
		if err != nil {
			prog.abort()
			if ctx.Err() != nil {
				return Written{}, &interrupted{dir, ctx.Err()}
			}
			var ns *NoSpaceError
			if errors.Is(err, syscall.ENOSPC) && !errors.As(err, &ns) {
				err = &NoSpaceError{Dir: dir, Need: need, Free: -1, File: f.Name}
			}
			return Written{}, err
		}
		w.Bytes += n
		w.Tensors += len(f.Tensors)
	}
	if ctx.Err() != nil {
		prog.abort()
		return Written{}, &interrupted{dir, ctx.Err()}
	}
	for i, f := range files {
		dst := filepath.Join(dir, f.Name)
		if f.Absent {
			if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return Written{}, err
			}
			continue
		}
		if err := os.Rename(temps[i], dst); err != nil {
			return Written{}, err
		}
		w.Paths = append(w.Paths, dst)
	}
	temps = nil
	syncDir(dir)
	prog.finish()
	return w, nil
}

// writeTemp streams one file into a new temporary file in dir and returns
// its name (also on error, for cleanup) and the tensor bytes written.
func writeTemp(ctx context.Context, dir string, f *File, prog *progress) (string, int64, error) {
	out, err := os.CreateTemp(dir, "."+f.Name+".partial-*")
	if err != nil {
		return "", 0, err
	}
	name := out.Name()
	var written int64
	bw := bufio.NewWriterSize(out, 4<<20)
	if f.Data != nil {
		_, err = bw.Write(f.Data)
	} else {
		err = writeGGUF(ctx, bw, f, prog, &written)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = out.Chmod(0o644) // CreateTemp makes 0600; a model folder is meant to be shared
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return name, 0, fmt.Errorf("writing %s: %w", filepath.Join(dir, f.Name), err)
	}
	return name, written, nil
}

// writeGGUF streams f's metadata and tensors to bw, adding the tensor bytes
// to *written.
func writeGGUF(ctx context.Context, bw io.Writer, f *File, prog *progress, written *int64) error {
	w, err := f.newWriter()
	if err != nil {
		return fmt.Errorf("%s: %v", f.Name, err)
	}
	return w.WriteTo(bw, func(i int, _ gguf.TensorInfo, dst io.Writer) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := f.Tensors[i]
		vals, err := t.Values()
		if err != nil {
			return fmt.Errorf("tensor %s: %v", t.Name, err)
		}
		if len(vals) != t.NumElements() {
			return fmt.Errorf("tensor %s: %d values for shape %v", t.Name, len(vals), t.Shape)
		}
		// Encoded and written a few MB of whole rows at a time, checking
		// the context between: a large tensor takes seconds on a busy
		// machine, and Ctrl+C should not wait for all of it.
		row := t.Shape[len(t.Shape)-1]
		step := max(1, encodeChunk/row) * row
		for from := 0; from < len(vals); from += step {
			if err := ctx.Err(); err != nil {
				return err
			}
			buf, err := t.encodeRows(vals[from:min(from+step, len(vals))], from)
			if err != nil {
				return fmt.Errorf("tensor %s: %v", t.Name, err)
			}
			if _, err := dst.Write(buf); err != nil {
				return err
			}
			*written += int64(len(buf))
			prog.add(len(buf), from+step >= len(vals))
		}
		return nil
	})
}

// encodeChunk is how many values of a tensor are encoded and written
// between two checks of the context (rounded to whole rows).
const encodeChunk = 4 << 20

// syncDir makes the renames durable; errors are ignored (some file
// systems cannot sync a directory, and the data itself is already synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
