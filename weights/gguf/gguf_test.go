package gguf

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/dtype"
)

// valueCases covers every GGUF value type and the array shapes the Writer
// can produce. Each value must come back with the identical Go type.
var valueCases = []KV{
	{"u8", uint8(200)},
	{"i8", int8(-100)},
	{"u16", uint16(60000)},
	{"i16", int16(-30000)},
	{"u32", uint32(4_000_000_000)},
	{"i32", int32(-2_000_000_000)},
	{"f32", float32(3.25)},
	{"f32.negzero", float32(math.Copysign(0, -1))},
	{"bool.true", true},
	{"bool.false", false},
	{"str", "héllo, wörld"},
	{"str.empty", ""},
	{"str.nul", "a\x00b"},
	{"u64", uint64(math.MaxUint64)},
	{"i64", int64(math.MinInt64)},
	{"f64", -1e300},
	{"arr.u8", []uint8{0, 1, 255}},
	{"arr.u8.empty", []uint8{}},
	{"arr.i8", []int8{-128, 0, 127}},
	{"arr.u16", []uint16{1, 65535}},
	{"arr.i16", []int16{-32768, 32767}},
	{"arr.u32", []uint32{7, 1 << 31}},
	{"arr.i32", []int32{-1, 2, -3}},
	{"arr.i32.empty", []int32{}},
	{"arr.f32", []float32{0.5, -1e-30, float32(math.Inf(1))}},
	{"arr.bool", []bool{true, false, true}},
	{"arr.str", []string{"a", "", "ü", "<0x0A>"}},
	{"arr.str.empty", []string{}},
	{"arr.u64", []uint64{0, math.MaxUint64}},
	{"arr.i64", []int64{math.MinInt64, 5}},
	{"arr.f64", []float64{math.Pi, -0.0}},
	{"arr.nested", []any{[]uint32{1, 2}, []string{"x"}, []any{[]int8{-1}, []bool{}}}},
	{"arr.nested.empty", []any{}},
	{"arr.nested.emptyinner", []any{[]float32{}, []any{}}},
}

func TestValueRoundTrip(t *testing.T) {
	w := NewWriter()
	for _, kv := range valueCases {
		w.Add(kv.Key, kv.Value)
	}
	f, err := Parse(writeTensors(t, w, nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != len(valueCases) {
		t.Fatalf("%d KVs, want %d", len(f.KV), len(valueCases))
	}
	for i, want := range valueCases {
		t.Run(want.Key, func(t *testing.T) {
			if f.KV[i].Key != want.Key {
				t.Fatalf("KV %d is %q, want %q (insertion order)", i, f.KV[i].Key, want.Key)
			}
			got, ok := f.Value(want.Key)
			if !ok {
				t.Fatal("missing")
			}
			if !reflect.DeepEqual(got, want.Value) {
				t.Fatalf("got %T %#v, want %T %#v", got, got, want.Value, want.Value)
			}
		})
	}
	// Signed zero survives (DeepEqual treats -0 == 0).
	if v, _ := f.Float32("f32.negzero"); !math.Signbit(float64(v)) {
		t.Error("float32 -0 lost its sign")
	}
}

func TestNaNValueBits(t *testing.T) {
	nan32 := math.Float32frombits(0x7fc01234)
	nan64 := math.Float64frombits(0xfff8000000000abc)
	w := NewWriter()
	w.Add("a", nan32)
	w.Add("b", []float64{nan64})
	f, err := Parse(writeTensors(t, w, nil))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Value("a"); math.Float32bits(v.(float32)) != 0x7fc01234 {
		t.Errorf("float32 NaN bits changed: %#x", math.Float32bits(v.(float32)))
	}
	if v, _ := f.Value("b"); math.Float64bits(v.([]float64)[0]) != 0xfff8000000000abc {
		t.Error("float64 NaN bits changed")
	}
}

func TestAddReplacesKeepsPosition(t *testing.T) {
	w := NewWriter()
	w.Add("a", uint32(1))
	w.Add("b", "x")
	w.Add("a", "replaced")
	f, err := Parse(writeTensors(t, w, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []KV{{"a", "replaced"}, {"b", "x"}}
	if !reflect.DeepEqual(f.KV, want) {
		t.Errorf("KV = %v, want %v", f.KV, want)
	}
}

func TestAddSnapshotsSlices(t *testing.T) {
	s := []string{"a", "b"}
	w := NewWriter()
	w.Add("s", s)
	s[0] = "changed"
	f, err := Parse(writeTensors(t, w, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Strings("s"); got[0] != "a" {
		t.Errorf("value changed after Add: %v", got)
	}
}

func TestAccessors(t *testing.T) {
	w := NewWriter()
	w.Add("u8", uint8(7))
	w.Add("i64.neg", int64(-5))
	w.Add("u64.big", uint64(1<<40))
	w.Add("f32", float32(0.5))
	w.Add("f64", 0.25)
	w.Add("b", true)
	w.Add("s", "str")
	w.Add("ss", []string{"a"})
	w.Add("fs", []float32{1, 2})
	w.Add("i32s", []int32{-1, 3})
	w.Add("u32s", []uint32{1, 2})
	w.Add("u32s.big", []uint32{1 << 31})
	f, err := Parse(writeTensors(t, w, nil))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		v  any
		ok bool
	}
	r := func(v any, ok bool) result { return result{v, ok} }
	tests := []struct {
		name string
		got  result
		want result
	}{
		{"Int u8", r(f.Int("u8")), result{7, true}},
		{"Int negative", r(f.Int("i64.neg")), result{-5, true}},
		{"Int of float fails", r(f.Int("f32")), result{0, false}},
		{"Int missing", r(f.Int("nope")), result{0, false}},
		{"Uint32 u8", r(f.Uint32("u8")), result{uint32(7), true}},
		{"Uint32 negative fails", r(f.Uint32("i64.neg")), result{uint32(0), false}},
		{"Uint32 too big fails", r(f.Uint32("u64.big")), result{uint32(0), false}},
		{"Float32", r(f.Float32("f32")), result{float32(0.5), true}},
		{"Float32 of float64", r(f.Float32("f64")), result{float32(0.25), true}},
		{"Float32 of string fails", r(f.Float32("s")), result{float32(0), false}},
		{"Bool", r(f.Bool("b")), result{true, true}},
		{"Bool of int fails", r(f.Bool("u8")), result{false, false}},
		{"String", r(f.String("s")), result{"str", true}},
		{"String of array fails", r(f.String("ss")), result{"", false}},
		{"Strings", r(f.Strings("ss")), result{[]string{"a"}, true}},
		{"Float32s", r(f.Float32s("fs")), result{[]float32{1, 2}, true}},
		{"Int32s", r(f.Int32s("i32s")), result{[]int32{-1, 3}, true}},
		{"Int32s of uint32s", r(f.Int32s("u32s")), result{[]int32{1, 2}, true}},
		{"Int32s out of range fails", r(f.Int32s("u32s.big")), result{[]int32(nil), false}},
		{"Int32s of floats fails", r(f.Int32s("fs")), result{[]int32(nil), false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

// sampleTensors returns tensors of several types with real encoded data:
// F32, F16, BF16 and Q8_0 through weights/dtype, Q4_K as opaque blocks.
func sampleTensors(r *rand.Rand) (tensors []testTensor, floats map[string][]float32) {
	floats = map[string][]float32{}
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	f32 := vals(15)
	floats["f32"] = f32
	b := make([]byte, 0, 60)
	for _, v := range f32 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	tensors = append(tensors, testTensor{"f32", TypeF32, []uint64{5, 3}, b})

	f16 := vals(7)
	floats["f16"] = f16
	b = nil
	for _, v := range f16 {
		b = binary.LittleEndian.AppendUint16(b, dtype.F32ToF16(v))
	}
	tensors = append(tensors, testTensor{"f16", TypeF16, []uint64{7}, b})

	bf := vals(12)
	floats["bf16"] = bf
	b = nil
	for _, v := range bf {
		b = binary.LittleEndian.AppendUint16(b, dtype.F32ToBF16(v))
	}
	tensors = append(tensors, testTensor{"bf16", TypeBF16, []uint64{3, 2, 2}, b})

	q := vals(64 * 3)
	floats["q8_0"] = q
	b = make([]byte, len(q)/32*34)
	dtype.QuantizeQ8_0(b, q)
	tensors = append(tensors, testTensor{"blk.0.attn_q.weight", TypeQ8_0, []uint64{64, 3}, b})

	tensors = append(tensors,
		testTensor{"q4_k", TypeQ4_K, []uint64{512, 2}, randomBytes(r, 2*2*144)},
		testTensor{"empty", TypeF32, []uint64{0, 4}, nil},
		testTensor{"scalar", TypeF32, nil, randomBytes(r, 4)},
		testTensor{"i32.4d", TypeI32, []uint64{2, 1, 3, 1}, randomBytes(r, 24)},
		testTensor{strings.Repeat("n", 63), TypeI8, []uint64{1}, []byte{42}},
	)
	return tensors, floats
}

func TestTensorRoundTrip(t *testing.T) {
	for _, align := range []int{0, 1, 8, 32, 64, 4096} { // 0: default, no key
		t.Run("align"+itoa(align), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(align), 1))
			tensors, floats := sampleTensors(r)
			w := NewWriter()
			w.Add("general.architecture", "test")
			if align != 0 {
				w.SetAlignment(align)
			}
			file := writeTensors(t, w, tensors)
			f, err := Parse(file)
			if err != nil {
				t.Fatal(err)
			}
			wantAlign := align
			if align == 0 {
				wantAlign = DefaultAlignment
				if _, ok := f.Value(AlignmentKey); ok {
					t.Error("general.alignment written without SetAlignment")
				}
			}
			if f.Alignment != wantAlign || f.Version != 3 {
				t.Fatalf("alignment %d version %d", f.Alignment, f.Version)
			}
			if f.dataStart%uint64(wantAlign) != 0 {
				t.Errorf("data section at %d not aligned", f.dataStart)
			}
			if len(file)%wantAlign != 0 {
				t.Errorf("file length %d not padded to %d", len(file), wantAlign)
			}
			if len(f.Tensors) != len(tensors) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
			}
			var next uint64
			for i, want := range tensors {
				info, data, ok := f.Tensor(want.name)
				if !ok {
					t.Fatalf("tensor %q missing", want.name)
				}
				if f.Tensors[i].Name != want.name || info.Type != want.typ || !reflect.DeepEqual(info.Dims, append([]uint64{}, want.dims...)) {
					t.Errorf("tensor %d = %+v, want %s %v %v", i, info, want.name, want.typ, want.dims)
				}
				// Tensors are packed in order, like llama.cpp requires.
				if info.Offset != next || info.Offset%uint64(wantAlign) != 0 {
					t.Errorf("%s: offset %d, want %d", want.name, info.Offset, next)
				}
				next += (info.Size() + uint64(wantAlign) - 1) / uint64(wantAlign) * uint64(wantAlign)
				if !bytes.Equal(data, want.data) || uint64(len(data)) != info.Size() || cap(data) != len(data) {
					t.Errorf("%s: data differs (%d bytes, cap %d, want %d)", want.name, len(data), cap(data), len(want.data))
				}
			}
			// Decoded values match what went in, within each format's rounding.
			checkFloats(t, f, "f32", floats["f32"], 0, func(b []byte, i int) float32 {
				return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			})
			checkFloats(t, f, "f16", floats["f16"], 1.0/1024, func(b []byte, i int) float32 {
				return dtype.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
			})
			checkFloats(t, f, "bf16", floats["bf16"], 1.0/128, func(b []byte, i int) float32 {
				return dtype.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
			})
			_, qb, _ := f.Tensor("blk.0.attn_q.weight")
			deq := make([]float32, 64*3)
			dtype.DequantizeQ8_0(deq, qb)
			for i, v := range floats["q8_0"] {
				if math.Abs(float64(v-deq[i])) > 0.1 { // |x| < ~5, d = amax/127 < 0.04
					t.Fatalf("q8_0[%d] = %g, want ~%g", i, deq[i], v)
				}
			}
		})
	}
}

func checkFloats(t *testing.T, f *File, name string, want []float32, relTol float64, at func([]byte, int) float32) {
	t.Helper()
	_, b, _ := f.Tensor(name)
	for i, v := range want {
		got := at(b, i)
		if math.Abs(float64(got-v)) > relTol*math.Abs(float64(v))+1e-7 {
			t.Fatalf("%s[%d] = %g, want %g", name, i, got, v)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "default"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestTypes(t *testing.T) {
	tests := []struct {
		typ          Type
		name         string
		block, bytes int
	}{
		{TypeF32, "F32", 1, 4},
		{TypeF16, "F16", 1, 2},
		{TypeBF16, "BF16", 1, 2},
		{TypeQ8_0, "Q8_0", 32, 34},
		{TypeQ4_0, "Q4_0", 32, 18},
		{TypeQ4_K, "Q4_K", 256, 144},
		{TypeQ6_K, "Q6_K", 256, 210},
		{TypeQ8_1, "Q8_1", 32, 36},
		{TypeIQ4_XS, "IQ4_XS", 256, 136},
		{TypeMXFP4, "MXFP4", 32, 17},
		{Type(4), "Type(4)", 0, 0}, // removed Q4_2
		{Type(43), "Type(43)", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.typ.String() != tt.name || tt.typ.BlockSize() != tt.block || tt.typ.BlockBytes() != tt.bytes {
				t.Errorf("%d: %s %d %d, want %s %d %d", uint32(tt.typ), tt.typ, tt.typ.BlockSize(), tt.typ.BlockBytes(), tt.name, tt.block, tt.bytes)
			}
		})
	}
	row := []struct {
		typ     Type
		n, want int
		err     string
	}{
		{TypeF32, 10, 40, ""},
		{TypeQ8_0, 64, 68, ""},
		{TypeQ4_K, 512, 288, ""},
		{TypeQ8_0, 33, 0, "not a multiple of the Q8_0 block size 32"},
		{TypeF16, -1, 0, "negative"},
		{Type(5), 32, 0, "unknown tensor type 5"},
	}
	for _, tt := range row {
		got, err := tt.typ.RowBytes(tt.n)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s.RowBytes(%d) = %d, %v; want %d, %q", tt.typ, tt.n, got, err, tt.want, tt.err)
		}
	}
}

func TestWriteFileAndOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.gguf")
	r := rand.New(rand.NewPCG(9, 9))
	tensors, _ := sampleTensors(r)
	w := NewWriter()
	w.Add("general.name", "tiny")
	for _, tt := range tensors {
		if err := w.AddTensor(tt.name, tt.typ, tt.dims); err != nil {
			t.Fatal(err)
		}
	}
	err := WriteFile(path, w, func(i int, info TensorInfo, out io.Writer) error {
		_, err := out.Write(tensors[i].data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the file", len(entries))
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("general.name"); s != "tiny" {
		t.Errorf("general.name = %q", s)
	}
	for _, tt := range tensors {
		_, b, ok := f.Tensor(tt.name)
		if !ok || !bytes.Equal(b, tt.data) {
			t.Errorf("%s: data differs", tt.name)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, ok := f.Tensor(tensors[0].name); ok {
		t.Error("Tensor after Close succeeded")
	}
}

func TestOpenErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.gguf"), "no such file"},
		{"directory", dir, "not a regular file"},
		{"empty", write("empty.gguf", nil), "empty file"},
		{"safetensors", write("model.safetensors", []byte("\x10\x00\x00\x00\x00\x00\x00\x00{}")), "not a GGUF file"},
		{"v1", write("old.gguf", header(1, 0, 0).b), "version 1 is not supported"},
		{"bad key", write("bad.gguf", header(3, 0, 1).str("k").u32(7).u8(9).b), `key "k": bool value 9`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and say %q", err, tt.path, tt.want)
			}
		})
	}
}

// TestOpenBeyond4GB maps a sparse 5 GiB file whose only tensor sits past
// the 4 GiB mark, checking that offsets are 64-bit throughout.
func TestOpenBeyond4GB(t *testing.T) {
	if testing.Short() {
		t.Skip("sparse 5 GiB file")
	}
	const off = 5<<30 - 64
	h := header(3, 2, 0).
		tensorInfo("big", []uint64{off / 4}, TypeF32, 0).
		tensorInfo("tail", []uint64{16}, TypeF32, off).
		pad(32)
	path := filepath.Join(t.TempDir(), "sparse.gguf")
	fd, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tail := randomBytes(rand.New(rand.NewPCG(1, 1)), 64)
	_, err1 := fd.Write(h.b)
	err2 := fd.Truncate(int64(len(h.b)) + off + 64)
	_, err3 := fd.WriteAt(tail, int64(len(h.b))+off)
	fd.Close()
	if err1 != nil || err2 != nil || err3 != nil {
		t.Skipf("cannot make sparse file: %v %v %v", err1, err2, err3)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, b, ok := f.Tensor("tail")
	if !ok || info.Offset != off || !bytes.Equal(b, tail) {
		t.Fatalf("tail tensor: ok=%v offset=%d", ok, info.Offset)
	}
	if info, b, _ := f.Tensor("big"); uint64(len(b)) != info.Size() || info.Size() != off {
		t.Fatalf("big tensor: %d bytes", len(b))
	}
}
