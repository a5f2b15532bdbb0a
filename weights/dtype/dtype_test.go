package dtype

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfValue is an independent definition of a finite half's value, used to
// check F16ToF32 and the rounding of F32ToF16.
func halfValue(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	if e == 0 {
		return s * math.Ldexp(m, -24)
	}
	return s * math.Ldexp(1024+m, e-25)
}

func isHalfNaN(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := F16ToF32(h)
		switch {
		case isHalfNaN(h):
			if f == f {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, f)
			}
			if math.Float32bits(f)>>31 != uint32(h>>15) {
				t.Fatalf("F16ToF32(%#04x) lost the NaN sign", h)
			}
		case h&0x7fff == 0x7c00:
			if !math.IsInf(float64(f), 0) || math.Signbit(float64(f)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) = %v, want signed inf", h, f)
			}
		default:
			if want := halfValue(h); float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
				t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, want)
			}
		}
	}
}

// F16ToF32 keeps a NaN's payload in the top of the float32 significand,
// as torch's .float() does.
func TestF16NaNPayload(t *testing.T) {
	if got := math.Float32bits(F16ToF32(0x7e01)); got != 0x7fc02000 {
		t.Errorf("F16ToF32(0x7e01) = %#x, want 0x7fc02000", got)
	}
}

// The half -> float -> half round trip is the identity on all 65536 bit
// patterns, NaN payloads included (numpy behaves the same way).
func TestF16RoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := F32ToF16(F16ToF32(h))
		if got != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, got)
		}
		if isHalfNaN(h) && !isHalfNaN(got) {
			t.Fatalf("NaN %#04x did not stay NaN: %#04x", h, got)
		}
	}
}

func TestF32ToF16Table(t *testing.T) {
	f := math.Float32frombits
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"zero", 0, 0x0000},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"one third", 1.0 / 3, 0x3555},
		{"0.1", 0.1, 0x2e66},
		{"max half", 65504, 0x7bff},
		{"just below overflow tie", f(0x477fefff), 0x7bff}, // 65519.996
		{"overflow tie 65520 goes to inf", 65520, 0x7c00},
		{"65536 overflows", 65536, 0x7c00},
		{"-1e6 overflows", -1e6, 0xfc00},
		{"max float32", math.MaxFloat32, 0x7c00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"quiet NaN", f(0x7fc00000), 0x7e00},
		{"negative quiet NaN", f(0xffc00000), 0xfe00},
		{"NaN payload kept", f(0x7f802000), 0x7c01},
		{"NaN low payload forced nonzero", f(0x7f800001), 0x7c01},
		{"NaN all payload", f(0x7fffffff), 0x7fff},
		// 1 + 2^-11 is halfway between 1 and 1+2^-10: ties to even (down).
		{"tie to even down", 1 + 1.0/2048, 0x3c00},
		// 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9: up.
		{"tie to even up", 1 + 3.0/2048, 0x3c02},
		{"just above tie", f(0x3f801001), 0x3c01},
		{"just below tie", f(0x3f800fff), 0x3c00},
		{"smallest normal", float32(math.Ldexp(1, -14)), 0x0400},
		{"largest subnormal", float32(math.Ldexp(1023, -24)), 0x03ff},
		{"subnormal rounds up to smallest normal", float32(math.Ldexp(2047, -25)), 0x0400},
		{"smallest subnormal", float32(math.Ldexp(1, -24)), 0x0001},
		{"2^-25 ties to zero", float32(math.Ldexp(1, -25)), 0x0000},
		{"-2^-25 ties to negative zero", -float32(math.Ldexp(1, -25)), 0x8000},
		{"just above 2^-25 rounds up", f(0x33000001), 0x0001},
		{"3*2^-25 ties to even 2", float32(math.Ldexp(3, -25)), 0x0002},
		{"5*2^-25 ties to even 2", float32(math.Ldexp(5, -25)), 0x0002},
		{"subnormal with low sticky bit", f(0x33c00001), 0x0002}, // 1.5*2^-24 + tiny
		{"2^-26 underflows", float32(math.Ldexp(1, -26)), 0x0000},
		{"float32 subnormal underflows", f(0x00000001), 0x0000},
		{"negative float32 subnormal", f(0x80000001), 0x8000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F32ToF16(tt.in); got != tt.want {
				t.Errorf("F32ToF16(%g = %#08x) = %#04x, want %#04x", tt.in, math.Float32bits(tt.in), got, tt.want)
			}
		})
	}
}

// checkNearest asserts that h = F32ToF16(x) is the correctly rounded half of
// x: no representable half is closer, ties go to the even significand, and
// values at or beyond 65520 become infinity.
func checkNearest(t *testing.T, x float32) {
	t.Helper()
	h := F32ToF16(x)
	if x != x {
		if !isHalfNaN(h) {
			t.Fatalf("F32ToF16(NaN %#08x) = %#04x, not NaN", math.Float32bits(x), h)
		}
		return
	}
	if math.Signbit(float64(x)) != (h&0x8000 != 0) {
		t.Fatalf("F32ToF16(%g) = %#04x: sign lost", x, h)
	}
	ax := math.Abs(float64(x))
	if ax >= 65520 {
		if h&0x7fff != 0x7c00 {
			t.Fatalf("F32ToF16(%g) = %#04x, want inf", x, h)
		}
		return
	}
	mag := h & 0x7fff
	if mag >= 0x7c00 {
		t.Fatalf("F32ToF16(%g) = %#04x, want finite", x, h)
	}
	err := math.Abs(ax - halfValue(mag))
	for _, n := range []uint16{mag - 1, mag + 1} {
		if n > 0x7bff { // mag-1 wrapped or beyond max finite
			continue
		}
		e := math.Abs(ax - halfValue(n))
		if e < err || (e == err && n&1 == 0) {
			t.Fatalf("F32ToF16(%g = %#08x) = %#04x, but %#04x is nearer or the even tie", x, math.Float32bits(x), h, n)
		}
	}
}

// Every midpoint between adjacent halves and its two float32 neighbours
// exercises each rounding boundary, in the normal and subnormal range.
func TestF32ToF16AllBoundaries(t *testing.T) {
	for h := uint16(0); h < 0x7bff; h++ {
		a, b := halfValue(h), halfValue(h+1)
		mid := float32((a + b) / 2) // exact: needs at most 12 significant bits
		if float64(mid) != (a+b)/2 {
			t.Fatalf("midpoint of %#04x not exact", h)
		}
		for _, x := range []float32{mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9), float32(a), float32(b)} {
			checkNearest(t, x)
			checkNearest(t, -x)
		}
	}
}

func TestF32ToF16Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 2_000_000
	if testing.Short() {
		n = 100_000
	}
	for range n {
		checkNearest(t, math.Float32frombits(r.Uint32()))
		// Concentrate on the half range, where rounding matters.
		checkNearest(t, float32(r.NormFloat64()*1000))
	}
}

func TestBF16Table(t *testing.T) {
	f := math.Float32frombits
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"minus zero", float32(math.Copysign(0, -1)), 0x8000},
		{"pi", math.Pi, 0x4049},
		{"tie to even down", f(0x3f808000), 0x3f80},
		{"tie to even up", f(0x3f818000), 0x3f82},
		{"above tie", f(0x3f808001), 0x3f81},
		{"below tie", f(0x3f807fff), 0x3f80},
		{"max float32 overflows to inf", math.MaxFloat32, 0x7f80},
		{"largest bf16 stays", f(0x7f7f0000), 0x7f7f},
		{"+inf", float32(math.Inf(1)), 0x7f80},
		{"-inf", float32(math.Inf(-1)), 0xff80},
		{"quiet NaN", f(0x7fc00000), 0x7fc0},
		{"NaN that would round to inf stays NaN", f(0x7f800001), 0x7fc0},
		{"NaN all ones does not wrap to sign", f(0x7fffffff), 0x7fff},
		{"negative NaN keeps sign and payload", f(0xff812345), 0xffc1},
		{"subnormal rounds", f(0x00018000), 0x0002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := F32ToBF16(tt.in); got != tt.want {
				t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(tt.in), got, tt.want)
			}
		})
	}
}

func TestBF16RoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		b := uint16(i)
		f := BF16ToF32(b)
		if math.Float32bits(f) != uint32(b)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", b, math.Float32bits(f))
		}
		got := F32ToBF16(f)
		if f != f {
			// Quiet NaNs are unchanged; signalling ones are quieted.
			if got != b|0x40 {
				t.Fatalf("F32ToBF16(NaN %#04x) = %#04x", b, got)
			}
			continue
		}
		if got != b {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", b, got)
		}
	}
}

func TestF32ToBF16Nearest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		x := math.Float32frombits(r.Uint32())
		b := F32ToBF16(x)
		if x != x {
			if y := BF16ToF32(b); y == y {
				t.Fatalf("NaN %#08x became %#04x", math.Float32bits(x), b)
			}
			continue
		}
		// Compare with the two bf16 neighbours by truncation.
		lo := uint16(math.Float32bits(x) >> 16)
		hi := lo + 1
		dl := math.Abs(float64(x) - bf16Next(lo))
		dh := math.Abs(float64(x) - bf16Next(hi))
		want := lo
		if dh < dl || (dh == dl && lo&1 == 1) {
			want = hi
		}
		if lo&0x7f80 == 0x7f80 { // x is ±inf: exact
			want = lo
		}
		if b != want {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", math.Float32bits(x), b, want)
		}
	}
}

// bf16Next is the value of bf16 bits b, except that infinity counts as
// 2^128, the next value after the largest finite one, as IEEE rounding does.
func bf16Next(b uint16) float64 {
	if b&0x7fff == 0x7f80 {
		return math.Copysign(math.Ldexp(1, 128), float64(BF16ToF32(b)))
	}
	return float64(BF16ToF32(b))
}

func BenchmarkF32ToF16(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i) * 0.37
	}
	var s uint16
	for b.Loop() {
		for _, v := range x {
			s += F32ToF16(v)
		}
	}
	_ = s
}

func BenchmarkF16ToF32(b *testing.B) {
	var s float32
	for b.Loop() {
		for i := range 4096 {
			s += F16ToF32(uint16(i * 13))
		}
	}
	_ = s
}
