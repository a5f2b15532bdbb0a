package dtype

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

func TestQuantizeQ8_0Blocks(t *testing.T) {
	tests := []struct {
		name  string
		in    []float32
		wantD uint16
		wantQ map[int]int8 // checked entries; the rest must be 0
	}{
		{
			// amax 127 gives d = 1 and id = 1 exactly, so q = roundf(x):
			// ties round away from zero (RNE would give 2 for 2.5).
			name:  "unit scale, ties away from zero",
			in:    pad32(127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 0.49999997, 126.5, -126.5),
			wantD: 0x3c00,
			wantQ: map[int]int8{0: 127, 1: 3, 2: -3, 3: 1, 4: -1, 5: 2, 6: -2, 7: 0, 8: 127, 9: -127},
		},
		{
			// amax from a negative value; d = 3/127 stored as f16 0x260c:
			// 3/127 = 0.023622 = 2^-6 * 1.51181, mantissa 0.51181*1024 = 524.09 -> 524 = 0x20c.
			name:  "negative amax",
			in:    pad32(-3, 1, -1),
			wantD: 0x260c,
			wantQ: map[int]int8{0: -127, 1: 42, 2: -42}, // 127/3 = 42.33
		},
		{
			name:  "all zero gives d = 0 and q = 0",
			in:    make([]float32, 32),
			wantD: 0,
			wantQ: nil,
		},
		{
			// d = 1e-7/127 = 7.9e-10 is below half the smallest f16 subnormal
			// (2^-25 = 3e-8), so the stored scale is 0 even though q is not.
			name:  "scale underflows f16",
			in:    pad32(1e-7, -5e-8),
			wantD: 0,
			wantQ: map[int]int8{0: 127, 1: -64}, // -63.5 -> -64
		},
		{
			// d = 1e7/127 = 78740 overflows f16 to +inf.
			name:  "scale overflows f16",
			in:    pad32(1e7, 0),
			wantD: 0x7c00,
			wantQ: map[int]int8{0: 127},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, Q8_0BlockBytes)
			QuantizeQ8_0(out, tt.in)
			if d := binary.LittleEndian.Uint16(out); d != tt.wantD {
				t.Errorf("d = %#04x, want %#04x", d, tt.wantD)
			}
			for j := range Q8_0BlockSize {
				if got, want := int8(out[2+j]), tt.wantQ[j]; got != want {
					t.Errorf("q[%d] = %d, want %d (x = %g)", j, got, want, tt.in[j])
				}
			}
		})
	}
}

func pad32(v ...float32) []float32 {
	x := make([]float32, 32)
	copy(x, v)
	return x
}

// TestQuantizeQ8_0MatchesGGML compares against blocks produced by ggml's own
// quantize_row_q8_0_ref (llama.cpp's ggml-quants.c compiled with gcc -O2;
// see testdata/README.md): 288 blocks with scales from 1e-36 to 1e7,
// roundf ties, f16-subnormal and f16-overflowing scales.
func TestQuantizeQ8_0MatchesGGML(t *testing.T) {
	raw, err := os.ReadFile("testdata/q8_0_input.f32")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/q8_0_ggml.q8_0")
	if err != nil {
		t.Fatal(err)
	}
	src := make([]float32, len(raw)/4)
	for i := range src {
		src[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	if len(src)%Q8_0BlockSize != 0 || len(want) != len(src)/Q8_0BlockSize*Q8_0BlockBytes {
		t.Fatalf("golden sizes disagree: %d values, %d bytes", len(src), len(want))
	}
	got := make([]byte, len(want))
	QuantizeQ8_0(got, src)
	if !bytes.Equal(got, want) {
		for b := 0; b < len(want); b += Q8_0BlockBytes {
			if !bytes.Equal(got[b:b+Q8_0BlockBytes], want[b:b+Q8_0BlockBytes]) {
				t.Fatalf("block %d differs:\n got % x\nwant % x", b/Q8_0BlockBytes, got[b:b+Q8_0BlockBytes], want[b:b+Q8_0BlockBytes])
			}
		}
	}
	t.Logf("%d blocks bit-identical to ggml", len(want)/Q8_0BlockBytes)
}

// TestQ8_0ErrorBound checks the reconstruction error on random data.
//
// ggml rounds x/d with the float32 d but stores d as F16 (d16), so the
// element error is |x - q*d16| <= d/2 + |q|*|d - d16| (+ float rounding),
// not d/2 alone: with |d - d16| up to d*2^-11 the second term reaches
// 127*d/2048 = 0.062 d. Both the rounding step and the total are checked.
func TestQ8_0ErrorBound(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const nb = 2000
	src := make([]float32, nb*Q8_0BlockSize)
	for b := range nb {
		scale := math.Pow(10, r.Float64()*9-6) // 1e-6 .. 1e3: d is f16 subnormal or normal
		for j := range Q8_0BlockSize {
			src[b*Q8_0BlockSize+j] = float32(r.NormFloat64() * scale)
		}
	}
	q := make([]byte, nb*Q8_0BlockBytes)
	QuantizeQ8_0(q, src)
	deq := make([]float32, len(src))
	DequantizeQ8_0(deq, q)

	var worst float64 // worst |x-deq| / (d/2), over blocks with a normal f16 scale
	for b := range nb {
		x := src[b*Q8_0BlockSize : (b+1)*Q8_0BlockSize]
		var amax float64
		for _, v := range x {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		d := float64(float32(amax) / 127)
		d16 := float64(F16ToF32(binary.LittleEndian.Uint16(q[b*Q8_0BlockBytes:])))
		if d >= 0x1p-14 && math.Abs(d-d16) > d/2048 { // normal f16: relative error <= 2^-11
			t.Fatalf("block %d: f16 scale %g too far from %g", b, d16, d)
		}
		for j, v := range x {
			qj := float64(int8(q[b*Q8_0BlockBytes+2+j]))
			// The rounding step: q is the nearest integer to x/d.
			if e := math.Abs(float64(v)/d - qj); e > 0.5+1e-5 {
				t.Fatalf("block %d[%d]: x/d = %g rounded to %g", b, j, float64(v)/d, qj)
			}
			got := float64(deq[b*Q8_0BlockSize+j])
			if got != float64(float32(qj*d16)) {
				t.Fatalf("block %d[%d]: dequantized %g, want q*d16 = %g", b, j, got, qj*d16)
			}
			bound := d/2 + math.Abs(qj)*math.Abs(d-d16) + 4*d*1e-6
			e := math.Abs(float64(v) - got)
			if e > bound {
				t.Fatalf("block %d[%d]: |x-deq| = %g > bound %g (d = %g)", b, j, e, bound, d)
			}
			if d >= 0x1p-14 {
				worst = max(worst, e/(d/2))
			}
		}
	}
	t.Logf("worst |x-deq| = %.4f * d/2 over %d blocks", worst, nb)
}

func TestDequantizeQ8_0(t *testing.T) {
	blk := make([]byte, Q8_0BlockBytes)
	binary.LittleEndian.PutUint16(blk, 0x3800) // d = 0.5
	qs := []int8{-128, -127, -1, 0, 1, 127}
	for i, v := range qs {
		blk[2+i] = byte(v)
	}
	out := make([]float32, Q8_0BlockSize)
	DequantizeQ8_0(out, blk)
	want := []float32{-64, -63.5, -0.5, 0, 0.5, 63.5}
	for i, w := range want {
		if out[i] != w {
			t.Errorf("out[%d] = %g, want %g", i, out[i], w)
		}
	}
}

func TestQ8_0LengthPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"src not multiple of 32", func() { QuantizeQ8_0(make([]byte, 34), make([]float32, 31)) }},
		{"dst too small", func() { QuantizeQ8_0(make([]byte, 33), make([]float32, 32)) }},
		{"src bytes not multiple of 34", func() { DequantizeQ8_0(make([]float32, 32), make([]byte, 35)) }},
		{"dequant dst too small", func() { DequantizeQ8_0(make([]float32, 31), make([]byte, 34)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.f()
		})
	}
}

func BenchmarkQuantizeQ8_0(b *testing.B) {
	src := make([]float32, 1<<16)
	for i := range src {
		src[i] = float32(math.Sin(float64(i)))
	}
	dst := make([]byte, len(src)/32*34)
	b.SetBytes(int64(len(src) * 4))
	for b.Loop() {
		QuantizeQ8_0(dst, src)
	}
}
