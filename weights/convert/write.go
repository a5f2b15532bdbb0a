package convert

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// writePlans writes every plan to a temporary file in modelDir and renames
// them all into place once every one is complete. On error or cancellation
// the temporary files are removed (and modelDir too, if this call created it
// and it is still empty).
func writePlans(ctx context.Context, modelDir string, plans []*Plan, opt Options) (files []string, tensors int, nbytes int64, err error) {
	var totalBytes int64
	var totalTensors int
	for _, p := range plans {
		seen := map[string]bool{}
		for _, t := range p.Tensors {
			if seen[t.Name] {
				return nil, 0, 0, fmt.Errorf("convert: %s: tensor %s planned twice", p.File, t.Name)
			}
			seen[t.Name] = true
			b, err := t.Bytes()
			if err != nil {
				return nil, 0, 0, fmt.Errorf("convert: %s: %v", p.File, err)
			}
			totalBytes += b
			totalTensors++
		}
	}

	created := false
	if st, err := os.Stat(modelDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(modelDir, 0o755); err != nil {
			return nil, 0, 0, err
		}
		created = true
	} else if err != nil {
		return nil, 0, 0, err
	} else if !st.IsDir() {
		return nil, 0, 0, fmt.Errorf("%s is a file, not a model folder; give a new or existing folder", modelDir)
	}
	var temps []string
	defer func() {
		if err == nil {
			return
		}
		for _, t := range temps {
			os.Remove(t)
		}
		if created {
			os.Remove(modelDir) // only succeeds when empty
		}
	}()

	prog := newProgress(opt.Progress, opt.Terminal, totalTensors, totalBytes)
	for _, p := range plans {
		tmp, n, err := writePlan(ctx, modelDir, p, prog)
		if tmp != "" {
			temps = append(temps, tmp)
		}
		if err != nil {
			prog.abort()
			if ctx.Err() != nil {
				return nil, 0, 0, &interrupted{modelDir, ctx.Err()}
			}
			return nil, 0, 0, err
		}
		nbytes += n
		tensors += len(p.Tensors)
	}
	if ctx.Err() != nil {
		prog.abort()
		return nil, 0, 0, &interrupted{modelDir, ctx.Err()}
	}
	for i, p := range plans {
		dst := filepath.Join(modelDir, p.File)
		if err := os.Rename(temps[i], dst); err != nil {
			return nil, 0, 0, err
		}
		files = append(files, dst)
	}
	temps = nil
	syncDir(modelDir)
	prog.finish()
	return files, tensors, nbytes, nil
}

// writePlan streams one plan into a new temporary file in dir and returns
// its name (also on error, for cleanup) and the tensor bytes written.
func writePlan(ctx context.Context, dir string, p *Plan, prog *progress) (string, int64, error) {
	w, err := plan.NewWriter(p.KV, p.Tensors)
	if err != nil {
		return "", 0, fmt.Errorf("convert: %s: %v", p.File, err)
	}
	f, err := os.CreateTemp(dir, "."+p.File+".partial-*")
	if err != nil {
		return "", 0, err
	}
	name := f.Name()
	var written int64
	bw := bufio.NewWriterSize(f, 4<<20)
	err = w.WriteTo(bw, func(i int, info gguf.TensorInfo, out io.Writer) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t := p.Tensors[i]
		buf, err := t.Encode()
		if err != nil {
			return fmt.Errorf("convert: %s: %v", t.Name, err)
		}
		if _, err := out.Write(buf); err != nil {
			return err
		}
		written += int64(len(buf))
		prog.add(len(buf))
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp makes 0600; a model folder is meant to be shared
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return name, 0, fmt.Errorf("writing %s: %w", filepath.Join(dir, p.File), err)
	}
	return name, written, nil
}

// syncDir makes the renames durable; errors are ignored (some file
// systems cannot sync a directory, and the data itself is already synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
