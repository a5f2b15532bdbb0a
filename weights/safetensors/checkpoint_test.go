package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const goldenModel = "blip2-opt/hf/model.safetensors"

// splitGolden writes the golden model as two shards in dir (tensors
// alternating between them) and, if withIndex, the index mapping them.
func splitGolden(t *testing.T, dir string, withIndex bool) map[string]string {
	t.Helper()
	f, err := Open(filepath.Join(golden, goldenModel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shards := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	var parts [2][]WriteTensor
	weightMap := map[string]string{}
	for i, w := range toWrite(f) {
		parts[i%2] = append(parts[i%2], w)
		weightMap[w.Name] = shards[i%2]
	}
	for i, name := range shards {
		if err := WriteFile(filepath.Join(dir, name), parts[i], map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	if withIndex {
		writeIndex(t, dir, weightMap)
	}
	return weightMap
}

func writeIndex(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 123}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, IndexName), b)
}

// sameAsGolden checks that c holds exactly the golden model's tensors.
func sameAsGolden(t *testing.T, c *Checkpoint) {
	t.Helper()
	f, err := Open(filepath.Join(golden, goldenModel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !slices.Equal(c.Names(), f.Names()) {
		t.Fatalf("checkpoint has %d names, file %d", len(c.Names()), len(f.Names()))
	}
	for _, name := range f.Names() {
		want, _ := f.Tensor(name)
		got, ok := c.Tensor(name)
		if !ok || got.Name != name || got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Fatalf("tensor %q differs", name)
		}
	}
	if _, ok := c.Tensor("no.such.tensor"); ok {
		t.Error("found a missing tensor")
	}
}

func TestCheckpointLayouts(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T) string
		nFiles int
	}{
		{"golden folder", func(t *testing.T) string { return filepath.Join(golden, "blip2-opt/hf") }, 1},
		{"single file path", func(t *testing.T) string { return filepath.Join(golden, goldenModel) }, 1},
		{"indexed shards", func(t *testing.T) string {
			dir := t.TempDir()
			splitGolden(t, dir, true)
			// A stray file the index does not list is not read.
			writeFile(t, filepath.Join(dir, "stray.safetensors"), []byte("junk"))
			return dir
		}, 2},
		{"shards without index", func(t *testing.T) string {
			dir := t.TempDir()
			splitGolden(t, dir, false)
			writeFile(t, filepath.Join(dir, "config.json"), []byte("{}"))
			return dir
		}, 2},
		{"symlinked shards", func(t *testing.T) string {
			blobs, dir := t.TempDir(), t.TempDir()
			splitGolden(t, blobs, true)
			entries, _ := os.ReadDir(blobs)
			for _, e := range entries {
				if err := os.Symlink(filepath.Join(blobs, e.Name()), filepath.Join(dir, e.Name())); err != nil {
					t.Skip(err)
				}
			}
			return dir
		}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := OpenCheckpoint(tc.setup(t))
			if err != nil {
				t.Fatal(err)
			}
			sameAsGolden(t, c)
			if n := len(c.Files()); n != tc.nFiles {
				t.Errorf("%d files, want %d", n, tc.nFiles)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok := c.Tensor(c.Names()[0]); ok {
				t.Error("Tensor works after Close")
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestCheckpointErrors(t *testing.T) {
	const (
		shard1 = "model-00001-of-00002.safetensors"
		shard2 = "model-00002-of-00002.safetensors"
	)
	tests := []struct {
		name   string
		setup  func(t *testing.T, dir string)
		phrase string
	}{
		{"empty folder", func(t *testing.T, dir string) {}, "no model.safetensors"},
		{"missing shard", func(t *testing.T, dir string) {
			splitGolden(t, dir, true)
			os.Remove(filepath.Join(dir, shard1))
		}, `shard "` + shard1 + `" is missing`},
		{"tensor in no shard", func(t *testing.T, dir string) {
			m := splitGolden(t, dir, false)
			m["ghost.weight"] = shard1
			writeIndex(t, dir, m)
		}, `tensor "ghost.weight" is mapped to shard "` + shard1 + `" but is in no shard`},
		{"tensor in the other shard", func(t *testing.T, dir string) {
			m := splitGolden(t, dir, false)
			other := map[string]string{shard1: shard2, shard2: shard1}
			m["query_tokens"] = other[m["query_tokens"]]
			writeIndex(t, dir, m)
		}, `tensor "query_tokens" is mapped to shard`},
		{"shard outside the folder", func(t *testing.T, dir string) {
			writeIndex(t, dir, map[string]string{"a": "../model.safetensors"})
		}, "is not a file name in the folder"},
		{"empty weight_map", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, IndexName), []byte(`{"metadata":{}}`))
		}, "weight_map is missing or empty"},
		{"invalid index JSON", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, IndexName), []byte(`{"weight_map":`))
		}, IndexName + ": invalid JSON"},
		{"duplicate across shards", func(t *testing.T, dir string) {
			w := []WriteTensor{F32Tensor("dup", []int{1}, []float32{1})}
			WriteFile(filepath.Join(dir, "a.safetensors"), w, nil)
			WriteFile(filepath.Join(dir, "b.safetensors"), w, nil)
		}, `tensor "dup" is in both`},
		{"duplicate across indexed shards", func(t *testing.T, dir string) {
			w := []WriteTensor{F32Tensor("dup", []int{1}, []float32{1})}
			WriteFile(filepath.Join(dir, "a.safetensors"), w, nil)
			WriteFile(filepath.Join(dir, "b.safetensors"), append(w, F32Tensor("other", []int{1}, []float32{1})), nil)
			writeIndex(t, dir, map[string]string{"dup": "a.safetensors", "other": "b.safetensors"})
		}, `tensor "dup" is in both`},
		{"corrupt shard", func(t *testing.T, dir string) {
			splitGolden(t, dir, true)
			writeFile(t, filepath.Join(dir, shard1), rawFile(`{"x":{"dtype":"U8","shape":[2],"data_offsets":[10,8]}}`, 16))
		}, shard1 + `: tensor "x": data_offsets [10, 8] out of order`},
		{"missing folder", func(t *testing.T, dir string) { os.Remove(dir) }, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "model")
			os.Mkdir(dir, 0o755)
			tc.setup(t, dir)
			c, err := OpenCheckpoint(dir)
			if c != nil {
				t.Fatal("non-nil checkpoint with an error")
			}
			wantErr(t, err, tc.phrase)
			if errors.Is(err, ErrPickle) {
				t.Errorf("not a pickle case, but ErrPickle: %v", err)
			}
		})
	}
}

func TestPickleRefused(t *testing.T) {
	zipMagic := append([]byte("PK\x03\x04\x14\x00\x00\x00"), "archive/data.pkl"...)
	pickle := func(proto byte) []byte { return []byte{0x80, proto, '}', 'q', 0, '(', 'X', 5, 0, 0, 0} }
	tests := []struct {
		name  string
		files map[string][]byte
		open  string // path opened inside the folder; "" opens the folder
	}{
		{"pytorch_model.bin only", map[string][]byte{"pytorch_model.bin": pickle(2), "config.json": []byte("{}")}, ""},
		{"sharded bins", map[string][]byte{"pytorch_model-00001-of-00002.bin": zipMagic, "pytorch_model-00002-of-00002.bin": zipMagic, "pytorch_model.bin.index.json": []byte(`{"weight_map":{}}`)}, ""},
		{".pt and .pth", map[string][]byte{"model.pt": zipMagic, "vit.pth": zipMagic}, ""},
		{"zip named safetensors", map[string][]byte{"model.safetensors": zipMagic}, ""},
		{"pickle 2 named safetensors", map[string][]byte{"model.safetensors": pickle(2)}, ""},
		{"pickle 5 named safetensors", map[string][]byte{"weights.safetensors": pickle(5)}, ""},
		{"index pointing at bin", map[string][]byte{IndexName: []byte(`{"weight_map":{"a":"pytorch_model.bin"}}`), "pytorch_model.bin": pickle(4)}, ""},
		{"direct file", map[string][]byte{"pytorch_model.bin": pickle(3)}, "pytorch_model.bin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tc.files {
				writeFile(t, filepath.Join(dir, name), b)
			}
			_, err := OpenCheckpoint(filepath.Join(dir, tc.open))
			if !errors.Is(err, ErrPickle) {
				t.Fatalf("error %v does not wrap ErrPickle", err)
			}
			for _, phrase := range []string{dir, "arbitrary code", "never executes", "huggingface-cli download Salesforce/blip2-opt-2.7b", "*.safetensors"} {
				wantErr(t, err, phrase)
			}
		})
	}
}

func TestCheckNotPickle(t *testing.T) {
	dir := t.TempDir()
	// A genuine safetensors file whose 640-byte header length starts it with
	// 0x80 0x02, the pickle protocol 2 magic.
	hdr := `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
	hdr += strings.Repeat(" ", 640-len(hdr))
	tricky := rawFile(hdr, 1)
	if tricky[0] != 0x80 || tricky[1] != 0x02 {
		t.Fatalf("test file starts % x", tricky[:2])
	}
	files := map[string][]byte{
		"ok.safetensors":     readGolden(t, "images/images.safetensors"),
		"tricky.safetensors": tricky,
		"zip.safetensors":    []byte("PK\x03\x04\x14\x00\x00\x08\x08\x00"),
		"p2.safetensors":     {0x80, 0x02, '}', 'q'},
		"p5.safetensors":     {0x80, 0x05, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0},
		"p1.safetensors":     {0x80, 0x01, '}'}, // not a protocol pickle 2-5 magic
		"short.safetensors":  {0x80},
		"empty.safetensors":  nil,
		"model.bin":          readGolden(t, "images/images.safetensors"), // refused by name alone
		"x.ckpt":             nil,
		"x.pkl":              nil,
	}
	want := map[string]bool{"zip.safetensors": true, "p2.safetensors": true, "p5.safetensors": true, "model.bin": true, "x.ckpt": true, "x.pkl": true}
	for name, b := range files {
		writeFile(t, filepath.Join(dir, name), b)
		err := CheckNotPickle(filepath.Join(dir, name))
		if got := errors.Is(err, ErrPickle); got != want[name] {
			t.Errorf("%s: CheckNotPickle = %v", name, err)
		}
	}
	for _, name := range []string{"x.pt", "x.PTH", "pytorch_model.bin.index.json"} {
		if err := CheckNotPickle(filepath.Join(dir, name)); !errors.Is(err, ErrPickle) {
			t.Errorf("%s (absent): %v", name, err)
		}
	}
	if err := CheckNotPickle(filepath.Join(dir, "absent.safetensors")); err != nil {
		t.Errorf("absent file: %v", err)
	}
	f, err := Open(filepath.Join(dir, "tricky.safetensors"))
	if err != nil {
		t.Fatalf("tricky safetensors file refused: %v", err)
	}
	f.Close()
}
