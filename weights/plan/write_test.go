package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

func constant(n int, v float32) func() ([]float32, error) {
	return func() ([]float32, error) {
		out := make([]float32, n)
		for i := range out {
			out[i] = v
		}
		return out, nil
	}
}

// TestWriteFiles: every file lands under its name with its metadata and
// values; the counts are returned; a tensor planned twice is refused before
// anything is written.
func TestWriteFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "model")
	a := &File{Name: "a.gguf", KV: []gguf.KV{{Key: gguf.KeyArchitecture, Value: "a"}},
		Tensors: []Tensor{{Name: "w", Type: gguf.TypeF16, Shape: []int{2, 3}, Values: constant(6, 0.5)}}}
	b := &File{Name: "b.gguf", Tensors: []Tensor{{Name: "v", Type: gguf.TypeF32, Shape: []int{4}, Values: constant(4, 2)}}}
	w, err := WriteFiles(context.Background(), dir, []*File{a, b}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Tensors != 2 || w.Bytes != 6*2+4*4 || !slices.Equal(w.Paths, []string{filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")}) {
		t.Errorf("Written %+v", w)
	}
	f, err := gguf.Open(w.Paths[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if arch, _ := f.String(gguf.KeyArchitecture); arch != "a" {
		t.Errorf("architecture %q", arch)
	}
	if info, data, ok := f.Tensor("w"); !ok || info.Type != gguf.TypeF16 || !bytes.Equal(data, bytes.Repeat([]byte{0, 0x38}, 6)) {
		t.Errorf("w: %+v % x", info, data)
	}

	dup := &File{Name: "dup.gguf", Tensors: []Tensor{a.Tensors[0], a.Tensors[0]}}
	other := filepath.Join(t.TempDir(), "other")
	if _, err := WriteFiles(context.Background(), other, []*File{dup}, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "tensor w planned twice") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused write created %s", other)
	}
}

// TestWriteFilesInterrupted: a cancelled write leaves nothing, matches
// ErrInterrupted and the context's error, and a failing tensor names
// itself.
func TestWriteFilesInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &File{Name: "x.gguf", Tensors: []Tensor{
		{Name: "first", Type: gguf.TypeF32, Shape: []int{1}, Values: func() ([]float32, error) { cancel(); return []float32{1}, nil }},
		{Name: "second", Type: gguf.TypeF32, Shape: []int{1}, Values: constant(1, 1)},
	}}
	dir := filepath.Join(t.TempDir(), "m")
	_, err := WriteFiles(ctx, dir, []*File{f}, WriteOptions{})
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing written to "+dir) {
		t.Errorf("error %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("interrupted write left %s", dir)
	}
	bad := &File{Name: "y.gguf", Tensors: []Tensor{{Name: "broken", Type: gguf.TypeF32, Shape: []int{1},
		Values: func() ([]float32, error) { return nil, errors.New("read error") }}}}
	if _, err := WriteFiles(context.Background(), t.TempDir(), []*File{bad}, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "tensor broken: read error") {
		t.Errorf("failing tensor: %v", err)
	}
}

// TestProgress: plain lines when not a terminal, one redrawn line on a
// terminal; both end with a summary. Each tensor comes in two chunks (a
// large tensor is written in several): it counts once.
func TestProgress(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var buf bytes.Buffer
		clock := time.Unix(0, 0)
		p := newProgress(&buf, tty, 20, 2000)
		p.now = func() time.Time { return clock }
		p.start, p.last = clock, clock
		for i := 0; i < 20; i++ {
			for chunk := 0; chunk < 2; chunk++ {
				clock = clock.Add(time.Second / 2)
				p.add(50, chunk == 1)
			}
		}
		p.finish()
		s := buf.String()
		if strings.Contains(s, "21/20") || strings.Contains(s, "40/20") {
			t.Errorf("tty=%v: chunks counted as tensors: %q", tty, s)
		}
		if !strings.Contains(s, "20/20 tensors") || !strings.Contains(s, "converted 20 tensors") || !strings.Contains(s, "100 B/s") {
			t.Errorf("tty=%v: %q", tty, s)
		}
		if tty != strings.Contains(s, "\r") {
			t.Errorf("tty=%v: carriage returns %v", tty, strings.Contains(s, "\r"))
		}
		if !tty {
			if n := strings.Count(s, "\n"); n < 10 || n > 12 {
				t.Errorf("%d plain lines, want one per 10%% and the summary:\n%s", n, s)
			}
			if !strings.Contains(s, "ETA 0:10") {
				t.Errorf("no ETA at half way: %s", s)
			}
		}
	}
}

// TestWriteVerbatimAndAbsent: a Data file is written as it is, beside the
// GGUF files; an Absent one is removed from the folder, but only once the
// others are in place (a failed write leaves it).
func TestWriteVerbatimAndAbsent(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.json")
	os.WriteFile(stale, []byte("old"), 0o644)
	a := &File{Name: "a.gguf", Tensors: []Tensor{{Name: "w", Type: gguf.TypeF32, Shape: []int{2}, Values: constant(2, 1)}}}
	cfg := &File{Name: "generation_config.json", Data: []byte(`{"eos_token_id": 50118}`)}
	gone := &File{Name: "stale.json", Absent: true}

	bad := &File{Name: "b.gguf", Tensors: []Tensor{{Name: "v", Type: gguf.TypeF32, Shape: []int{2},
		Values: func() ([]float32, error) { return nil, errors.New("boom") }}}}
	if _, err := WriteFiles(context.Background(), dir, []*File{a, cfg, gone, bad}, WriteOptions{}); err == nil {
		t.Fatal("failing tensor accepted")
	}
	if _, err := os.Stat(stale); err != nil {
		t.Errorf("a failed write removed the Absent file: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("a failed write left %d entries", len(ents))
	}

	w, err := WriteFiles(context.Background(), dir, []*File{a, cfg, gone}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err != nil || string(got) != `{"eos_token_id": 50118}` {
		t.Errorf("verbatim file: %q %v", got, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Absent file still there: %v", err)
	}
	if len(w.Paths) != 2 || w.Tensors != 1 {
		t.Errorf("Written %+v", w)
	}
	// Absent and missing: nothing to do.
	if _, err := WriteFiles(context.Background(), dir, []*File{gone}, WriteOptions{}); err != nil {
		t.Error(err)
	}
}

// TestWriteSpace: a write that does not fit (the files plus what Finish
// adds) is refused before anything is written, naming the folder and the
// sizes; a Finish failing on a full disk (ENOSPC) says so in one line and
// leaves the folder as it was; Finish may rewrite a file in place.
func TestWriteSpace(t *testing.T) {
	dir := t.TempDir()
	a := &File{Name: "a.gguf", Tensors: []Tensor{{Name: "w", Type: gguf.TypeF32, Shape: []int{1 << 10}, Values: constant(1<<10, 1)}}}
	free := func(n int64) func(string) (int64, bool) { return func(string) (int64, bool) { return n, true } }

	_, err := WriteFiles(context.Background(), dir, []*File{a}, WriteOptions{Extra: 1 << 30, FreeSpace: free(512 << 20)})
	var ns *NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on "+dir+" (needs 1.1 GB, 512.0 MB free)") {
		t.Errorf("too little space: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a refused write left %d files", len(ents))
	}

	full := func(f *File, path string) error {
		return fmt.Errorf("quantizing: %w", &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC})
	}
	_, err = WriteFiles(context.Background(), dir, []*File{a}, WriteOptions{Finish: full, FreeSpace: free(1 << 40)})
	if err == nil || !strings.HasPrefix(err.Error(), "no space left on "+dir+" (needs ") || !strings.HasSuffix(err.Error(), ") while writing a.gguf") {
		t.Errorf("disk full while finishing: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed write left %d files", len(ents))
	}

	rewrite := func(f *File, path string) error { return os.WriteFile(path, []byte("finished"), 0o644) }
	if _, err := WriteFiles(context.Background(), dir, []*File{a}, WriteOptions{Finish: rewrite}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.gguf")); string(got) != "finished" {
		t.Errorf("a.gguf holds %q after Finish", got)
	}
}
