package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

var allDTypes = []DType{BOOL, U8, I8, F8E5M2, F8E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64}

// TestRoundTripAllDTypes writes one tensor of every dtype (and odd shapes)
// and reads them back through Parse and through WriteFile + Open.
func TestRoundTripAllDTypes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][]int{{3}, {2, 3}, {1, 2, 1, 3}, {}, {0}, {4, 0, 2}}
	var tensors []WriteTensor
	for i, dt := range allDTypes {
		shape := shapes[i%len(shapes)]
		n, _ := numElements(shape)
		data := make([]byte, n*dt.Size())
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		tensors = append(tensors, WriteTensor{Name: "t." + strings.ToLower(string(dt)), DType: dt, Shape: shape, Data: data})
	}
	meta := map[string]string{"format": "pt", "note": "é \"quoted\" \\ \n <&>"}

	check := func(t *testing.T, f *File, size int) {
		checkInvariants(t, f, size)
		if len(f.Names()) != len(tensors) {
			t.Fatalf("%d tensors, want %d", len(f.Names()), len(tensors))
		}
		for _, w := range tensors {
			got, ok := f.Tensor(w.Name)
			if !ok || got.DType != w.DType || !slices.Equal(got.Shape, w.Shape) || !bytes.Equal(got.Data, w.Data) {
				t.Errorf("%s: got %v %s %v", w.Name, ok, got.DType, got.Shape)
			}
		}
		if md := f.Metadata(); len(md) != 2 || md["note"] != meta["note"] {
			t.Errorf("metadata %q", md)
		}
	}

	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	check(t, f, buf.Len())
	checkLayout(t, buf.Bytes(), f)

	path := filepath.Join(t.TempDir(), "all.safetensors")
	if err := WriteFile(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	check(t, g, buf.Len())
	onDisk, _ := os.ReadFile(path)
	if !bytes.Equal(onDisk, buf.Bytes()) {
		t.Error("WriteFile and Write produced different bytes")
	}
}

// checkLayout asserts the writer's layout: header padded with spaces to a
// multiple of 8, data contiguous from offset 0 to the end of the file, every
// tensor aligned to its element size.
func checkLayout(t *testing.T, file []byte, f *File) {
	t.Helper()
	n := binary.LittleEndian.Uint64(file)
	if n%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", n)
	}
	h := string(file[8 : 8+n])
	if trimmed := strings.TrimRight(h, " "); !strings.HasSuffix(trimmed, "}") || len(h)-len(trimmed) >= 8 {
		t.Errorf("header padding wrong: %q", h[max(0, len(h)-10):])
	}
	section := int(uint64(len(file)) - 8 - n)
	total := 0
	for _, name := range f.Names() {
		tt, _ := f.Tensor(name)
		total += len(tt.Data)
		if len(tt.Data) > 0 {
			off := int(uintptr(unsafe.Pointer(&tt.Data[0])) - uintptr(unsafe.Pointer(&file[8+n])))
			if off%tt.DType.Size() != 0 {
				t.Errorf("%s at data offset %d, not aligned to %d", name, off, tt.DType.Size())
			}
		}
	}
	if total != section {
		t.Errorf("tensors hold %d bytes of a %d-byte data section: not contiguous", total, section)
	}
}

// TestWriteMatchesReference compares with byte strings produced by the
// reference implementation: its unit-test vectors and every golden file.
func TestWriteMatchesReference(t *testing.T) {
	f32s := F32Tensor("attn.0", []int{1, 2, 3}, []float32{0, 1, 2, 3, 4, 5})
	data := f32s.Data
	vectors := []struct {
		name    string
		tensors []WriteTensor
		meta    map[string]string
		want    string
	}{
		{"empty", nil, nil, "\x08\x00\x00\x00\x00\x00\x00\x00{}      "},
		{"empty metadata map", nil, map[string]string{}, "\x08\x00\x00\x00\x00\x00\x00\x00{}      "},
		{"metadata only", nil, map[string]string{"framework": "pt"},
			"\x28\x00\x00\x00\x00\x00\x00\x00" + `{"__metadata__":{"framework":"pt"}}` + "     "},
		{"one tensor", []WriteTensor{f32s}, nil,
			"\x40\x00\x00\x00\x00\x00\x00\x00" + `{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}` + string(data)},
		{"padded", []WriteTensor{{Name: "attn0", DType: F32, Shape: []int{1, 1, 2, 3}, Data: data}}, nil,
			"\x48\x00\x00\x00\x00\x00\x00\x00" + `{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}` + "       " + string(data)},
	}
	for _, v := range vectors {
		var buf bytes.Buffer
		if err := Write(&buf, v.tensors, v.meta); err != nil {
			t.Fatal(err)
		}
		if buf.String() != v.want {
			t.Errorf("%s:\n got %q\nwant %q", v.name, buf.String(), v.want)
		}
	}

	for _, path := range goldenFiles(t) {
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(orig)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, toWrite(f), f.Metadata()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), orig) {
			t.Errorf("%s: rewritten file differs from the reference writer's", path)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	ok := WriteTensor{Name: "a", DType: U8, Shape: []int{2}, Data: []byte{1, 2}}
	tests := []struct {
		name    string
		tensors []WriteTensor
		meta    map[string]string
		phrase  string
	}{
		{"duplicate", []WriteTensor{ok, ok}, nil, `tensor "a" appears twice`},
		{"reserved name", []WriteTensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, nil, "reserved"},
		{"bad UTF-8 name", []WriteTensor{{Name: "\xff", DType: U8, Shape: []int{0}}}, nil, "UTF-8"},
		{"bad UTF-8 metadata", nil, map[string]string{"k": "\xff"}, "UTF-8"},
		{"unknown dtype", []WriteTensor{{Name: "a", DType: "F12", Shape: []int{1}, Data: []byte{0}}}, nil, `unknown dtype "F12"`},
		{"short data", []WriteTensor{{Name: "a", DType: F32, Shape: []int{2}, Data: make([]byte, 7)}}, nil, "needs 8 bytes, got 7"},
		{"negative dim", []WriteTensor{{Name: "a", DType: F32, Shape: []int{-1}}}, nil, "invalid shape"},
		{"overflow", []WriteTensor{{Name: "a", DType: F64, Shape: []int{1 << 62}}}, nil, "invalid shape"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, tc.tensors, tc.meta)
			wantErr(t, err, tc.phrase)
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		return 0, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	first := []WriteTensor{F32Tensor("w", []int{2}, []float32{1, 2})}
	if err := WriteFile(path, first, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	// A failing write leaves the old file and no temporary behind.
	bad := []WriteTensor{{Name: "w", DType: F32, Shape: []int{3}, Data: make([]byte, 8)}}
	wantErr(t, WriteFile(path, bad, nil), path+`: tensor "w"`)
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("failed WriteFile changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after a failed write, want 1", len(entries))
	}

	// A successful write replaces it.
	second := []WriteTensor{F32Tensor("v", []int{1}, []float32{3})}
	if err := WriteFile(path, second, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !slices.Equal(got, []string{"v"}) {
		t.Errorf("names after replace: %v", got)
	}
	f.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want 1", len(entries))
	}

	// Errors name the file asked for, never the temporary one.
	missing := filepath.Join(dir, "missing", "x.safetensors")
	wantErr(t, WriteFile(missing, second, nil), missing+": folder "+filepath.Join(dir, "missing")+" does not exist")
	wantErr(t, WriteFile(dir, second, nil), dir+" is a folder; give a file name")
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries after failed writes, want 1", len(entries))
	}

	// Write reports the writer's error.
	if err := Write(&failWriter{after: 20}, second, nil); err == nil || err.Error() != "disk full" {
		t.Errorf("Write error = %v", err)
	}
}
