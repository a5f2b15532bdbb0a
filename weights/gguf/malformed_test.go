package gguf

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestRejectMalformed(t *testing.T) {
	nested := func(depth int) *raw {
		r := header(3, 0, 1).str("deep").u32(uint32(typeArray))
		for range depth - 1 {
			r.u32(uint32(typeArray)).u64(1)
		}
		return r.u32(uint32(typeUint8)).u64(0)
	}
	tests := []struct {
		name string
		data []byte
		want string // substring of the error
	}{
		{"empty", nil, "not a GGUF file: only 0 bytes"},
		{"short", []byte("GG"), "only 2 bytes"},
		{"wrong magic", []byte("GGML\x03\x00\x00\x00"), `magic "GGML"`},
		{"no version", []byte("GGUF\x03"), "version: needs 4 bytes"},
		{"version 1", header(1, 0, 0).b, "GGUF version 1 is not supported"},
		{"version 0", header(0, 0, 0).b, "unsupported GGUF version 0"},
		{"version 4", header(4, 0, 0).b, "unsupported GGUF version 4"},
		{"big-endian", (&raw{b: []byte("GGUF")}).u32(0x03000000).u64(0).u64(0).b, "byte-swapped"},
		{"no counts", (&raw{b: []byte("GGUF")}).u32(3).u64(0).b, "metadata count: needs 8 bytes"},
		{"tensor count too large", header(3, 1<<40, 0).b, "header claims 0 metadata entries and 1099511627776 tensors"},
		{"kv count too large", header(3, 0, 1<<62).b, "more than the remaining 0 bytes"},
		{"kv count vs bytes", header(3, 0, 2).str("k").u32(0).u8(1).b, "header claims 2 metadata"},
		{"key length past end", header(3, 0, 1).u64(1 << 50).zeros(20).b, "metadata key 0: length 1125899906842624 exceeds the 20 bytes left"},
		{"empty key", header(3, 0, 1).str("").u32(0).u8(1).zeros(10).b, "metadata key 0 is empty"},
		{"key too long", header(3, 0, 1).str(strings.Repeat("k", 1<<16)).u32(0).u8(1).b, "metadata key 0 is 65536 bytes long, at most 65535"},
		{"long key clipped", header(3, 0, 1).str(strings.Repeat("k", 1000)).u32(99).u8(1).b, `key "` + strings.Repeat("k", 64) + `"... (1000 bytes): unknown value type 99`},
		{"duplicate key", header(3, 0, 2).str("k").u32(0).u8(1).str("k").u32(0).u8(2).b, `key "k": appears twice`},
		{"unknown value type", header(3, 0, 1).str("k").u32(13).zeros(8).b, `key "k": unknown value type 13`},
		{"truncated u64", header(3, 0, 1).str("k").u32(uint32(typeUint64)).zeros(3).b, `key "k": uint64 value: needs 8 bytes`},
		{"string value past end", header(3, 0, 1).str("k").u32(uint32(typeString)).u64(100).zeros(5).b, `key "k": string: length 100 exceeds the 5 bytes left`},
		{"bool not 0/1", header(3, 0, 1).str("k").u32(uint32(typeBool)).u8(2).b, `key "k": bool value 2 is neither 0 nor 1`},
		{"bool array not 0/1", header(3, 0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeBool)).u64(2).u8(1).u8(7).b, `key "k": element 1: bool value 7`},
		{"array of unknown type", header(3, 0, 1).str("k").u32(uint32(typeArray)).u32(99).u64(0).b, "array of unknown value type 99"},
		{"array too long", header(3, 0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeUint32)).u64(1 << 61).zeros(8).b, `key "k": array of 2305843009213693952 uint32 values`},
		{"string array too long", header(3, 0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeString)).u64(3).u64(0).u64(0).b, "array of 3 string values"},
		{"string array element past end", header(3, 0, 1).str("vocab").u32(uint32(typeArray)).u32(uint32(typeString)).u64(2).str("ok").u64(9).zeros(3).b, `key "vocab": string 1: length 9 exceeds`},
		{"nested too deep", nested(9).b, "arrays nested deeper than 8"},
		{"alignment not uint32", header(3, 0, 1).str(AlignmentKey).u32(uint32(typeInt32)).u32(64).b, `"general.alignment": must be uint32, is int32`},
		{"alignment zero", header(3, 0, 1).str(AlignmentKey).u32(uint32(typeUint32)).u32(0).b, "alignment 0 is not a power of two"},
		{"alignment 48", header(3, 0, 1).str(AlignmentKey).u32(uint32(typeUint32)).u32(48).b, "alignment 48 is not a power of two"},
		{"tensor name past end", header(3, 1, 0).u64(1000).zeros(30).b, "tensor 0 name: length 1000 exceeds"},
		{"empty tensor name", header(3, 1, 0).tensorInfo("", []uint64{1}, TypeF32, 0).b, "tensor 0 has an empty name"},
		{"tensor name too long", header(3, 1, 0).tensorInfo(strings.Repeat("x", 65), []uint64{1}, TypeF32, 0).b, "name is 65 bytes, at most 64"},
		{"duplicate tensor", header(3, 2, 0).tensorInfo("w", []uint64{1}, TypeF32, 0).tensorInfo("w", []uint64{1}, TypeF32, 32).pad(32).zeros(64).b, `tensor "w": appears twice`},
		{"5 dims", header(3, 1, 0).tensorInfo("w", []uint64{1, 1, 1, 1, 1}, TypeF32, 0).b, `tensor "w": 5 dimensions, at most 4`},
		{"dims truncated", header(3, 1, 0).str("w").u32(2).u64(4).zeros(4).b, `tensor "w": dimension: needs 8 bytes at offset 45, only 4 left`},
		{"removed type", header(3, 1, 0).tensorInfo("w", []uint64{32}, Type(4), 0).zeros(64).b, `tensor "w": unknown tensor type 4`},
		{"unknown type", header(3, 1, 0).tensorInfo("w", []uint64{32}, Type(1000), 0).zeros(64).b, "unknown tensor type 1000"},
		{"row not multiple of block", header(3, 1, 0).tensorInfo("w", []uint64{33, 2}, TypeQ8_0, 0).zeros(200).b, `tensor "w": row length 33 is not a multiple of the Q8_0 block size 32`},
		{"dimension >= 2^63", header(3, 1, 0).tensorInfo("w", []uint64{1 << 63}, TypeF32, 0).b, "dimension 0 is 9223372036854775808, too large"},
		{"element count overflow", header(3, 1, 0).tensorInfo("w", []uint64{1 << 40, 1 << 30}, TypeF32, 0).b, "too many elements"},
		{"byte size overflow", header(3, 1, 0).tensorInfo("w", []uint64{1 << 62}, TypeF32, 0).b, "too large in bytes"},
		{"offset not aligned", header(3, 1, 0).tensorInfo("w", []uint64{1}, TypeF32, 16).pad(32).zeros(64).b, `tensor "w": data offset 16 is not a multiple of the alignment 32`},
		{"no data section", header(3, 1, 0).tensorInfo("w", []uint64{1}, TypeF32, 0).b, "data section would start at offset 64, past the end of the 57-byte file"},
		{"tensor past end", header(3, 1, 0).tensorInfo("w", []uint64{100}, TypeF32, 0).pad(32).zeros(399).b, `tensor "w": 400 bytes at data offset 0 run past the end of the file (399 data bytes; truncated?)`},
		{"offset past end", header(3, 1, 0).tensorInfo("w", []uint64{1}, TypeF32, 1<<60).pad(32).zeros(32).b, "at data offset 1152921504606846976 run past the end"},
		{"overlap", header(3, 2, 0).tensorInfo("a", []uint64{16}, TypeF32, 0).tensorInfo("b", []uint64{8}, TypeF32, 32).pad(32).zeros(128).b, `tensor "a" (data offset 0, 64 bytes) overlaps tensor "b" at data offset 32`},
		{"overlap across empty tensor", header(3, 3, 0).tensorInfo("a", []uint64{32}, TypeF32, 0).tensorInfo("e", []uint64{0}, TypeF32, 32).tensorInfo("c", []uint64{8}, TypeF32, 64).pad(32).zeros(256).b, `tensor "a" (data offset 0, 128 bytes) overlaps tensor "c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("accepted: %d KVs, %d tensors", len(f.KV), len(f.Tensors))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "gguf: ") || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line starting with \"gguf: \" containing %q", msg, tt.want)
			}
		})
	}
}

func TestAcceptEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"version 2", header(2, 0, 1).str("k").u32(uint32(typeUint8)).u8(1).b},
		{"no tensors no padding", header(3, 0, 0).b},
		{"alignment 1", header(3, 1, 1).str(AlignmentKey).u32(uint32(typeUint32)).u32(1).tensorInfo("w", []uint64{1}, TypeI8, 0).u8(5).b},
		{"missing final padding", header(3, 1, 0).tensorInfo("w", []uint64{3}, TypeF32, 0).pad(32).zeros(12).b},
		{"tensors out of order", header(3, 2, 0).tensorInfo("a", []uint64{8}, TypeF32, 32).tensorInfo("b", []uint64{8}, TypeF32, 0).pad(32).zeros(64).b},
		{"empty tensors share an offset", header(3, 2, 0).tensorInfo("a", []uint64{0}, TypeF32, 0).tensorInfo("b", []uint64{8}, TypeF32, 0).pad(32).zeros(32).b},
		{"name of 64 bytes", header(3, 1, 0).tensorInfo(strings.Repeat("x", 64), []uint64{1}, TypeF32, 0).pad(32).zeros(4).b},
		{"nested depth 8", header(3, 0, 1).str("deep").u32(uint32(typeArray)).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1).u32(uint32(typeUint8)).u64(0).b},
		{"trailing bytes", header(3, 1, 0).tensorInfo("w", []uint64{1}, TypeF32, 0).pad(32).zeros(100).b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, f, tt.data)
		})
	}
}

// checkInvariants asserts what every successfully parsed file guarantees.
func checkInvariants(t testing.TB, f *File, data []byte) {
	t.Helper()
	if f.Alignment <= 0 || f.Alignment&(f.Alignment-1) != 0 {
		t.Fatalf("alignment %d", f.Alignment)
	}
	for _, kv := range f.KV {
		if v, ok := f.Value(kv.Key); !ok || v == nil {
			t.Fatalf("key %q not found", kv.Key)
		}
	}
	for _, ti := range f.Tensors {
		info, b, ok := f.Tensor(ti.Name)
		if !ok || uint64(len(b)) != info.Size() || !info.Type.Known() || len(info.Dims) > 4 {
			t.Fatalf("tensor %q: ok=%v len=%d info=%+v", ti.Name, ok, len(b), info)
		}
		if info.Offset%uint64(f.Alignment) != 0 {
			t.Fatalf("tensor %q offset %d unaligned", ti.Name, info.Offset)
		}
		if len(b) > 0 {
			// The bytes lie inside data.
			start := f.dataStart + info.Offset
			if &data[start] != &b[0] {
				t.Fatalf("tensor %q does not alias the file", ti.Name)
			}
		}
	}
}

// writtenFile returns a writer-produced file with metadata of every kind
// and tensors of several types, and the offset where its last tensor's
// bytes end.
func writtenFile(t testing.TB, align int) ([]byte, int) {
	r := rand.New(rand.NewPCG(11, uint64(align)))
	w := NewWriter()
	for _, kv := range valueCases {
		w.Add(kv.Key, kv.Value)
	}
	if align != 0 {
		w.SetAlignment(align)
	}
	tensors, _ := sampleTensors(r)
	file := writeTensors(t, w, tensors)
	f, err := Parse(file)
	if err != nil {
		t.Fatal(err)
	}
	end := 0
	for _, ti := range f.Tensors {
		end = max(end, int(f.dataStart+ti.Offset+ti.Size()))
	}
	return file, end
}

func TestTruncated(t *testing.T) {
	for _, align := range []int{0, 1, 64} {
		file, end := writtenFile(t, align)
		for n := range len(file) {
			f, err := Parse(file[:n])
			if n < end {
				if err == nil {
					t.Fatalf("align %d: prefix of %d/%d bytes accepted", align, n, len(file))
				}
				continue
			}
			// Only the last tensor's padding is missing: still valid.
			if err != nil {
				t.Fatalf("align %d: prefix of %d bytes (data ends at %d): %v", align, n, end, err)
			}
			checkInvariants(t, f, file[:n])
		}
	}
}

func TestBitFlips(t *testing.T) {
	file, _ := writtenFile(t, 0)
	f0, _ := Parse(file)
	header := int(f0.dataStart)
	r := rand.New(rand.NewPCG(7, 7))
	var rejected, accepted int
	flip := func(pos int, bit uint) {
		c := bytes.Clone(file)
		c[pos] ^= 1 << bit
		f, err := Parse(c)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			rejected++
			return
		}
		accepted++
		checkInvariants(t, f, c)
	}
	for pos := range header { // every bit of the header
		for bit := range uint(8) {
			flip(pos, bit)
		}
	}
	for range 200 { // and some in the data
		flip(header+r.IntN(len(file)-header), uint(r.IntN(8)))
	}
	t.Logf("%d header bytes: %d flips rejected, %d accepted (values or data changed)", header, rejected, accepted)
	if rejected == 0 {
		t.Error("no bit flip was rejected")
	}
}
