package safetensors

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"

	"github.com/blip2chat/blip2chat/weights/dtype"
)

func sameFloat(got float32, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(float64(got))
	}
	return float64(got) == want && math.Signbit(float64(got)) == math.Signbit(want)
}

// TestHalfConversionsExhaustive: every F16 and BF16 bit pattern widens to
// exactly weights/dtype's float32 (whose own tests check it against the
// formats' definitions), NaN payloads included.
func TestHalfConversionsExhaustive(t *testing.T) {
	data := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(i))
	}
	for _, c := range []struct {
		dtype DType
		want  func(uint16) float32
	}{{F16, dtype.F16ToF32}, {BF16, dtype.BF16ToF32}} {
		got, err := Tensor{Name: "all", DType: c.dtype, Shape: []int{1 << 16}, Data: data}.Float32()
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got {
			if w := c.want(uint16(i)); math.Float32bits(g) != math.Float32bits(w) {
				t.Fatalf("%s %#04x: got %#08x, want %#08x", c.dtype, i, math.Float32bits(g), math.Float32bits(w))
			}
		}
	}
	// NaN payloads survive, as torch's .float() keeps them.
	got, _ := Tensor{Name: "nan", DType: F16, Shape: []int{1}, Data: []byte{0x01, 0x7e}}.Float32()
	if bits := math.Float32bits(got[0]); bits != 0x7fc02000 {
		t.Errorf("f16 NaN payload: got %#x", bits)
	}
}

func TestF8Conversions(t *testing.T) {
	tests := []struct {
		dtype DType
		b     uint8
		want  float64
	}{
		{F8E4M3, 0x00, 0}, {F8E4M3, 0x80, math.Copysign(0, -1)}, {F8E4M3, 0x38, 1}, {F8E4M3, 0xb8, -1},
		{F8E4M3, 0x7e, 448}, {F8E4M3, 0x01, math.Ldexp(1, -9)}, {F8E4M3, 0x07, 7 * math.Ldexp(1, -9)},
		{F8E4M3, 0x08, math.Ldexp(1, -6)}, {F8E4M3, 0x7f, math.NaN()}, {F8E4M3, 0xff, math.NaN()},
		{F8E4M3, 0x78, 256}, // exponent 15 with mantissa < 7 is a number in the fn variant
		{F8E5M2, 0x3c, 1}, {F8E5M2, 0x7b, 57344}, {F8E5M2, 0x7c, math.Inf(1)}, {F8E5M2, 0xfc, math.Inf(-1)},
		{F8E5M2, 0x7d, math.NaN()}, {F8E5M2, 0x01, math.Ldexp(1, -16)},
	}
	for _, tc := range tests {
		got, err := Tensor{Name: "x", DType: tc.dtype, Shape: []int{1}, Data: []byte{tc.b}}.Float32()
		if err != nil {
			t.Fatal(err)
		}
		if !sameFloat(got[0], tc.want) {
			t.Errorf("%s %#02x: got %v, want %v", tc.dtype, tc.b, got[0], tc.want)
		}
	}
}

func le(v ...any) []byte {
	var b []byte
	for _, x := range v {
		b, _ = binary.Append(b, binary.LittleEndian, x)
	}
	return b
}

func TestConversions(t *testing.T) {
	tests := []struct {
		dtype   DType
		data    []byte
		f32     []float32
		i64     []int64 // nil: Int64 must fail
		i64Fail bool
	}{
		{F32, le(float32(1.5), float32(-2), float32(math.Inf(1))), []float32{1.5, -2, float32(math.Inf(1))}, nil, true},
		{F16, le(uint16(0x3c00), uint16(0xc000), uint16(0x7bff), uint16(0x0001)), []float32{1, -2, 65504, float32(math.Ldexp(1, -24))}, nil, true},
		{BF16, le(uint16(0x3f80), uint16(0xc0a0), uint16(0x7f7f)), []float32{1, -5, float32(math.Ldexp(255, 120))}, nil, true},
		{F64, le(0.1, -3.0), []float32{0.1, -3}, nil, true},
		{I64, le(int64(-1), int64(1)<<40, int64(7)), []float32{-1, float32(int64(1) << 40), 7}, []int64{-1, 1 << 40, 7}, false},
		{U64, le(uint64(5)), []float32{5}, []int64{5}, false},
		{U64, le(uint64(math.MaxUint64)), []float32{float32(math.MaxUint64)}, nil, true},
		{I32, le(int32(-7), int32(math.MaxInt32)), []float32{-7, math.MaxInt32}, []int64{-7, math.MaxInt32}, false},
		{U32, le(uint32(math.MaxUint32)), []float32{math.MaxUint32}, []int64{math.MaxUint32}, false},
		{I16, le(int16(-300)), []float32{-300}, []int64{-300}, false},
		{U16, le(uint16(65535)), []float32{65535}, []int64{65535}, false},
		{U8, []byte{0, 128, 255}, []float32{0, 128, 255}, []int64{0, 128, 255}, false},
		{I8, []byte{0x80, 0xff, 0x7f}, []float32{-128, -1, 127}, []int64{-128, -1, 127}, false},
		{BOOL, []byte{0, 1, 2}, []float32{0, 1, 1}, []int64{0, 1, 1}, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.dtype), func(t *testing.T) {
			tt := Tensor{Name: "x", DType: tc.dtype, Shape: []int{len(tc.f32)}, Data: tc.data}
			got, err := tt.Float32()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.f32) {
				t.Errorf("Float32: got %v, want %v", got, tc.f32)
			}
			gi, err := tt.Int64()
			if tc.i64Fail {
				if err == nil {
					t.Errorf("Int64 succeeded on %s: %v", tc.dtype, gi)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(gi, tc.i64) {
				t.Errorf("Int64: got %v, want %v", gi, tc.i64)
			}
		})
	}
}

func TestConversionRejectsInconsistentTensor(t *testing.T) {
	tests := []Tensor{
		{Name: "short", DType: F32, Shape: []int{2}, Data: make([]byte, 7)},
		{Name: "long", DType: F16, Shape: []int{2}, Data: make([]byte, 6)},
		{Name: "dtype", DType: "F33", Shape: []int{1}, Data: make([]byte, 4)},
		{Name: "negative", DType: U8, Shape: []int{-1}, Data: nil},
		{Name: "overflow", DType: U8, Shape: []int{1 << 40, 1 << 40}, Data: nil},
	}
	for _, tt := range tests {
		if _, err := tt.Float32(); err == nil {
			t.Errorf("%s: Float32 accepted an inconsistent tensor", tt.Name)
		}
		if _, err := tt.Int64(); err == nil {
			t.Errorf("%s: Int64 accepted an inconsistent tensor", tt.Name)
		}
	}
	// A scalar has one element; an empty dimension none.
	if n := (Tensor{Shape: []int{}}).NumElements(); n != 1 {
		t.Errorf("scalar NumElements = %d", n)
	}
	v, err := Tensor{DType: F32, Shape: []int{3, 0}}.Float32()
	if err != nil || len(v) != 0 {
		t.Errorf("empty tensor: %v, %v", v, err)
	}
}
