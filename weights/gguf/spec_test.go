package gguf

import (
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"testing"
)

// specFile is a GGUF v3 file written out byte by byte from the
// specification (ggml docs/gguf.md), without any code of this package:
//
//	header: magic, version u32, tensor_count u64, metadata_kv_count u64
//	kv:     key (u64 length + bytes), value type u32, value
//	        (arrays: element type u32, count u64, elements)
//	tensor: name, n_dims u32, dims u64 each (fastest first), ggml type u32,
//	        offset u64 from the data section start (multiple of ALIGNMENT)
//	then zero padding to ALIGNMENT, then the data, each tensor padded.
var specFile = concat(
	[]byte("GGUF"),
	[]byte{3, 0, 0, 0},             // version 3
	[]byte{2, 0, 0, 0, 0, 0, 0, 0}, // 2 tensors
	[]byte{4, 0, 0, 0, 0, 0, 0, 0}, // 4 metadata entries

	// general.architecture: STRING (8) "llama"
	[]byte{20, 0, 0, 0, 0, 0, 0, 0}, []byte("general.architecture"),
	[]byte{8, 0, 0, 0},
	[]byte{5, 0, 0, 0, 0, 0, 0, 0}, []byte("llama"),

	// general.alignment: UINT32 (4) 64
	[]byte{17, 0, 0, 0, 0, 0, 0, 0}, []byte("general.alignment"),
	[]byte{4, 0, 0, 0},
	[]byte{64, 0, 0, 0},

	// tokenizer.ggml.scores: ARRAY (9) of FLOAT32 (6), 2 elements: 1.0, -0.5
	[]byte{21, 0, 0, 0, 0, 0, 0, 0}, []byte("tokenizer.ggml.scores"),
	[]byte{9, 0, 0, 0},
	[]byte{6, 0, 0, 0},
	[]byte{2, 0, 0, 0, 0, 0, 0, 0},
	[]byte{0x00, 0x00, 0x80, 0x3f}, []byte{0x00, 0x00, 0x00, 0xbf},

	// x.flag: BOOL (7) true
	[]byte{6, 0, 0, 0, 0, 0, 0, 0}, []byte("x.flag"),
	[]byte{7, 0, 0, 0},
	[]byte{1},

	// tensor "a": 2 dims (4, 2), F32 (0), offset 0 -> 32 bytes
	[]byte{1, 0, 0, 0, 0, 0, 0, 0}, []byte("a"),
	[]byte{2, 0, 0, 0},
	[]byte{4, 0, 0, 0, 0, 0, 0, 0}, []byte{2, 0, 0, 0, 0, 0, 0, 0},
	[]byte{0, 0, 0, 0},
	[]byte{0, 0, 0, 0, 0, 0, 0, 0},

	// tensor "b": 1 dim (32), Q8_0 (8), offset 64 (32 bytes of "a" padded to 64)
	[]byte{1, 0, 0, 0, 0, 0, 0, 0}, []byte("b"),
	[]byte{1, 0, 0, 0},
	[]byte{32, 0, 0, 0, 0, 0, 0, 0},
	[]byte{8, 0, 0, 0},
	[]byte{64, 0, 0, 0, 0, 0, 0, 0},
	// The header so far is 24 + 45 + 33 + 53 + 19 + 41 + 33 = 248 bytes;
	// pad to 256.
	make([]byte, 8),

	// data of "a": 8 float32 = 1..8
	[]byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40},
	[]byte{0, 0, 0xa0, 0x40, 0, 0, 0xc0, 0x40, 0, 0, 0xe0, 0x40, 0, 0, 0, 0x41},
	make([]byte, 32), // pad to 64
	// data of "b": one Q8_0 block, d = 1.0 (f16 0x3c00), q = 0..31
	[]byte{0x00, 0x3c},
	seq(32),
	make([]byte, 30), // pad 34 to 64
)

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestSpecFileParses(t *testing.T) {
	if len(specFile) != 256+128 {
		t.Fatalf("hand-built file is %d bytes, layout arithmetic is off", len(specFile))
	}
	f, err := Parse(specFile)
	if err != nil {
		t.Fatal(err)
	}
	wantKV := []KV{
		{"general.architecture", "llama"},
		{"general.alignment", uint32(64)},
		{"tokenizer.ggml.scores", []float32{1, -0.5}},
		{"x.flag", true},
	}
	if !reflect.DeepEqual(f.KV, wantKV) {
		t.Errorf("KV = %#v", f.KV)
	}
	if f.Alignment != 64 || f.dataStart != 256 {
		t.Errorf("alignment %d, data at %d; want 64, 256", f.Alignment, f.dataStart)
	}
	a, ab, _ := f.Tensor("a")
	if !reflect.DeepEqual(a, TensorInfo{"a", []uint64{4, 2}, TypeF32, 0}) || !bytes.Equal(ab, specFile[256:288]) {
		t.Errorf("tensor a = %+v", a)
	}
	if got := binary.LittleEndian.Uint32(ab[28:]); got != 0x41000000 {
		t.Errorf("a[7] bits %#x, want 8.0", got)
	}
	b, bb, _ := f.Tensor("b")
	if !reflect.DeepEqual(b, TensorInfo{"b", []uint64{32}, TypeQ8_0, 64}) || len(bb) != 34 || bb[0] != 0 || bb[1] != 0x3c || bb[33] != 31 {
		t.Errorf("tensor b = %+v, % x", b, bb)
	}
}

// The Writer, given the same content, must reproduce the hand-built file
// exactly.
func TestWriterMatchesSpecBytes(t *testing.T) {
	w := NewWriter()
	w.Add("general.architecture", "llama")
	w.SetAlignment(64)
	w.Add("tokenizer.ggml.scores", []float32{1, -0.5})
	w.Add("x.flag", true)
	if err := w.AddTensor("a", TypeF32, []uint64{4, 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", TypeQ8_0, []uint64{32}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := w.WriteTo(&out, func(i int, info TensorInfo, o io.Writer) error {
		start := 256 + int(info.Offset)
		_, err := o.Write(specFile[start : start+int(info.Size())])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), specFile) {
		got := out.Bytes()
		for i := range min(len(got), len(specFile)) {
			if got[i] != specFile[i] {
				t.Fatalf("writer output differs from the spec file at byte %d (got %d bytes, want %d)", i, len(got), len(specFile))
			}
		}
		t.Fatalf("writer output is %d bytes, spec file %d", len(got), len(specFile))
	}
}
