package quant_test

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/engine/model/modeltest"
	"github.com/blip2chat/blip2chat/weights/dtype"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/gguf/quant"
)

// Hand-made blocks with known values.
func TestBlocks(t *testing.T) {
	one := dtype.F32ToF16(1)
	half := dtype.F32ToF16(0.5)
	put16 := func(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }

	// Q4_0: d=0.5, byte j holds (j%16) low and 15-(j%16) high: x=(q-8)*d.
	q40 := make([]byte, 18)
	put16(q40, half)
	for j := range 16 {
		q40[2+j] = byte(j) | byte(15-j)<<4
	}
	want40 := make([]float32, 32)
	for j := range 16 {
		want40[j] = float32(j-8) * 0.5
		want40[16+j] = float32(15-j-8) * 0.5
	}

	// Q5_0: nibbles 0, high bits all set: q = 16 -> 0; d=1.
	q50 := make([]byte, 22)
	put16(q50, one)
	binary.LittleEndian.PutUint32(q50[2:], 0xFFFFFFFF)
	want50 := make([]float32, 32)

	// Q4_1: d=1, m=0.5, nibbles 3 (low) and 5 (high).
	q41 := make([]byte, 20)
	put16(q41, one)
	put16(q41[2:], half)
	for j := range 16 {
		q41[4+j] = 3 | 5<<4
	}
	want41 := make([]float32, 32)
	for j := range 16 {
		want41[j], want41[16+j] = 3.5, 5.5
	}

	// Q6_K: d=1, all scales 2, ql=0, qh=0 -> q = -32 -> -64 everywhere.
	q6 := make([]byte, 210)
	for j := range 16 {
		q6[192+j] = 2
	}
	put16(q6[208:], one)
	want6 := make([]float32, 256)
	for j := range want6 {
		want6[j] = -64
	}

	// Q4_K: d=1, dmin=1, scale j<4 = 1 & min = 2 (bytes 0..7); scales 4..7
	// from bytes 8..11 low/high nibbles: sc=3, m=0; nibbles all 2.
	q4k := make([]byte, 144)
	put16(q4k, one)
	put16(q4k[2:], one)
	for j := range 4 {
		q4k[4+j] = 1
		q4k[8+j] = 2
		q4k[12+j] = 3
	}
	for j := range 128 {
		q4k[16+j] = 2 | 2<<4
	}
	want4k := make([]float32, 256)
	for j := range want4k {
		if j < 128 {
			want4k[j] = 1*2 - 2
		} else {
			want4k[j] = 3*2 - 0
		}
	}

	cases := []struct {
		typ  gguf.Type
		src  []byte
		want []float32
	}{
		{gguf.TypeQ4_0, q40, want40},
		{gguf.TypeQ5_0, q50, want50},
		{gguf.TypeQ4_1, q41, want41},
		{gguf.TypeQ6_K, q6, want6},
		{gguf.TypeQ4_K, q4k, want4k},
	}
	for _, c := range cases {
		got := make([]float32, len(c.want))
		if err := quant.Dequantize(c.typ, got, c.src); err != nil {
			t.Fatalf("%v: %v", c.typ, err)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%v value %d = %v, want %v", c.typ, i, got[i], c.want[i])
				break
			}
		}
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		typ gguf.Type
		n   int
		src int
	}{
		{gguf.TypeQ4_K, 100, 144}, // not a whole block
		{gguf.TypeQ4_K, 256, 143}, // short
		{gguf.TypeQ8_0, 32, 35},   // long
		{gguf.TypeIQ2_XS, 256, 74},
		{gguf.Type(999), 1, 1},
	}
	for _, c := range cases {
		if err := quant.Dequantize(c.typ, make([]float32, c.n), make([]byte, c.src)); err == nil {
			t.Errorf("Dequantize(%v, %d values, %d bytes) did not fail", c.typ, c.n, c.src)
		}
	}
}

// Any bytes of the right length decode without panicking.
func FuzzDequantize(f *testing.F) {
	f.Add(uint8(12), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, ti uint8, data []byte) {
		types := quant.Types()
		typ := types[int(ti)%len(types)]
		nb := len(data) / typ.BlockBytes()
		dst := make([]float32, nb*typ.BlockSize())
		if err := quant.Dequantize(typ, dst, data[:nb*typ.BlockBytes()]); err != nil {
			t.Fatal(err)
		}
		if len(data)%typ.BlockBytes() != 0 {
			if err := quant.Dequantize(typ, make([]float32, (nb+1)*typ.BlockSize()), data); err == nil {
				t.Fatal("a partial block was accepted")
			}
		}
	})
}

// TestAgainstLlamaCpp quantizes a token embedding table with llama.cpp to
// each type, has llama.cpp turn the result back into F32 (requantizing to
// all-F32 dequantizes with ggml's own to_float), and requires Dequantize to
// give the same values bit for bit. It also bounds the quantization error
// against the original F32 table, so that a decoder and a quantizer wrong
// in the same way cannot pass.
func TestAgainstLlamaCpp(t *testing.T) {
	lib := modeltest.Lib(t)
	dir := t.TempDir()
	tiny := modeltest.DefaultTinyLlama()
	tiny.NVocab = 300
	tiny.NLayer = 1
	orig, err := tiny.Write(filepath.Join(dir, "f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	// Largest error relative to the block's largest value that each type
	// allows (loose: 2x the quantization step).
	types := []struct {
		typ    gguf.Type
		relErr float64
	}{
		{gguf.TypeF16, 1e-3}, {gguf.TypeBF16, 1e-2}, {gguf.TypeQ8_0, 1e-2},
		{gguf.TypeQ4_0, 0.15}, {gguf.TypeQ4_1, 0.15}, {gguf.TypeQ5_0, 0.07}, {gguf.TypeQ5_1, 0.07},
		{gguf.TypeQ2_K, 0.7}, {gguf.TypeQ3_K, 0.35}, {gguf.TypeQ4_K, 0.15}, {gguf.TypeQ5_K, 0.07}, {gguf.TypeQ6_K, 0.04},
	}
	rows := []int{0, 1, 7, 100, 299}
	for _, tc := range types {
		t.Run(tc.typ.String(), func(t *testing.T) {
			q := filepath.Join(dir, tc.typ.String()+".gguf")
			p := lib.DefaultQuantizeParams()
			p.FType = 7 // MOSTLY_Q8_0; only token_embd matters here
			p.TokenEmbeddingType = int32(tc.typ)
			p.NThread = 1
			if err := lib.Quantize(filepath.Join(dir, "f32.gguf"), q, p); err != nil {
				t.Fatal(err)
			}
			back := filepath.Join(dir, tc.typ.String()+"-f32.gguf")
			p = lib.DefaultQuantizeParams()
			p.FType = 0 // ALL_F32
			p.AllowRequantize = true
			p.NThread = 1
			if err := lib.Quantize(q, back, p); err != nil {
				t.Fatal(err)
			}
			qt, qdata := tokenEmbd(t, q)
			if qt.Type != tc.typ {
				t.Fatalf("llama.cpp stored token_embd as %v, asked %v", qt.Type, tc.typ)
			}
			bt, bdata := tokenEmbd(t, back)
			if bt.Type != gguf.TypeF32 {
				t.Fatalf("requantized token_embd is %v, want F32", bt.Type)
			}
			n := int(qt.Dims[0])
			rb, _ := qt.Type.RowBytes(n)
			got := make([]float32, n)
			var worst float64
			for _, r := range rows {
				if err := quant.Dequantize(qt.Type, got, qdata[r*rb:(r+1)*rb]); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					ref := math.Float32frombits(binary.LittleEndian.Uint32(bdata[4*(r*n+i):]))
					if math.Float32bits(got[i]) != math.Float32bits(ref) {
						t.Fatalf("row %d value %d: %v, llama.cpp %v", r, i, got[i], ref)
					}
				}
				o := orig[r*n : (r+1)*n]
				var amax float64
				for _, v := range o {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				worst = math.Max(worst, modeltest.MaxAbsDiff(got, o)/amax)
			}
			t.Logf("%v: bit-exact with llama.cpp; max error / row max %.4f", tc.typ, worst)
			if worst > tc.relErr {
				t.Errorf("%v: error %.4f of the row's largest value, more than %.4f", tc.typ, worst, tc.relErr)
			}
		})
	}
}

func tokenEmbd(t *testing.T, path string) (gguf.TensorInfo, []byte) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	info, data, ok := f.Tensor("token_embd.weight")
	if !ok {
		t.Fatalf("%s: no token_embd.weight", path)
	}
	return info, data
}
