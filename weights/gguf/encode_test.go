package gguf

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/dtype"
)

// TestEncode decodes what Encode writes with weights/dtype's readers and
// checks the size against the type's layout.
func TestEncode(t *testing.T) {
	vals := make([]float32, 64)
	for i := range vals {
		vals[i] = float32(i-31) * 0.37
	}
	vals[3] = 65504.5 // rounds to F16's largest finite value
	vals[5] = -1e-8   // below F16's subnormals: -0
	le := binary.LittleEndian
	tests := []struct {
		typ    Type
		decode func(b []byte) []float32
		want   func(v float32) float32 // the value after the round trip
	}{
		{TypeF32, func(b []byte) []float32 {
			out := make([]float32, len(b)/4)
			for i := range out {
				out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
			}
			return out
		}, func(v float32) float32 { return v }},
		{TypeF16, func(b []byte) []float32 {
			out := make([]float32, len(b)/2)
			for i := range out {
				out[i] = dtype.F16ToF32(le.Uint16(b[2*i:]))
			}
			return out
		}, func(v float32) float32 { return dtype.F16ToF32(dtype.F32ToF16(v)) }},
		{TypeBF16, func(b []byte) []float32 {
			out := make([]float32, len(b)/2)
			for i := range out {
				out[i] = dtype.BF16ToF32(le.Uint16(b[2*i:]))
			}
			return out
		}, func(v float32) float32 { return dtype.BF16ToF32(dtype.F32ToBF16(v)) }},
		{TypeQ8_0, func(b []byte) []float32 {
			out := make([]float32, len(b)/dtype.Q8_0BlockBytes*dtype.Q8_0BlockSize)
			dtype.DequantizeQ8_0(out, b)
			return out
		}, nil},
	}
	for _, tt := range tests {
		b, err := Encode(tt.typ, vals)
		if err != nil {
			t.Fatalf("%v: %v", tt.typ, err)
		}
		if want, _ := tt.typ.RowBytes(len(vals)); len(b) != want {
			t.Fatalf("%v: %d bytes, want %d", tt.typ, len(b), want)
		}
		got := tt.decode(b)
		if tt.typ == TypeQ8_0 {
			q := make([]byte, len(b))
			dtype.QuantizeQ8_0(q, vals)
			if string(q) != string(b) {
				t.Errorf("Q8_0 bytes differ from dtype.QuantizeQ8_0")
			}
			continue
		}
		for i, v := range vals {
			if w := tt.want(v); math.Float32bits(got[i]) != math.Float32bits(w) {
				t.Errorf("%v: value %d: %v encodes to %v, want %v", tt.typ, i, v, got[i], w)
			}
		}
	}
	if got := mustDecodeF16(t, vals[3]); got != 65504 {
		t.Errorf("F16 of 65504.5 = %v, want 65504", got)
	}
}

func mustDecodeF16(t *testing.T, v float32) float32 {
	b, err := Encode(TypeF16, []float32{v})
	if err != nil {
		t.Fatal(err)
	}
	return dtype.F16ToF32(binary.LittleEndian.Uint16(b))
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		typ  Type
		n    int
		want string
	}{
		{TypeQ8_0, 33, "q8_0 needs a multiple of 32 values, have 33"},
		{TypeQ4_K, 256, "cannot encode type Q4_K"},
		{Type(99), 4, "cannot encode type Type(99)"},
	}
	for _, tt := range tests {
		_, err := Encode(tt.typ, make([]float32, tt.n))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Encode(%v, %d values) = %v, want %q", tt.typ, tt.n, err, tt.want)
		}
	}
}
