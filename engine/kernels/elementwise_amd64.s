//go:build amd64 && !purego

#include "textflag.h"

// Element-wise AVX2 kernels. Every routine handles n % 8 == 0 elements;
// the Go caller does the tail.

// Constants, each a full ymm vector so instructions can take them as
// memory operands (folded loads, no registers held across the loops).
// log2(e)
DATA log2e<>+0(SB)/4, $0x3fb8aa3b
DATA log2e<>+4(SB)/4, $0x3fb8aa3b
DATA log2e<>+8(SB)/4, $0x3fb8aa3b
DATA log2e<>+12(SB)/4, $0x3fb8aa3b
DATA log2e<>+16(SB)/4, $0x3fb8aa3b
DATA log2e<>+20(SB)/4, $0x3fb8aa3b
DATA log2e<>+24(SB)/4, $0x3fb8aa3b
DATA log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $32

// ln2 high part 0.693359375
DATA ln2hi<>+0(SB)/4, $0x3f318000
DATA ln2hi<>+4(SB)/4, $0x3f318000
DATA ln2hi<>+8(SB)/4, $0x3f318000
DATA ln2hi<>+12(SB)/4, $0x3f318000
DATA ln2hi<>+16(SB)/4, $0x3f318000
DATA ln2hi<>+20(SB)/4, $0x3f318000
DATA ln2hi<>+24(SB)/4, $0x3f318000
DATA ln2hi<>+28(SB)/4, $0x3f318000
GLOBL ln2hi<>(SB), RODATA|NOPTR, $32

// ln2 low part -2.12194440e-4
DATA ln2lo<>+0(SB)/4, $0xb95e8083
DATA ln2lo<>+4(SB)/4, $0xb95e8083
DATA ln2lo<>+8(SB)/4, $0xb95e8083
DATA ln2lo<>+12(SB)/4, $0xb95e8083
DATA ln2lo<>+16(SB)/4, $0xb95e8083
DATA ln2lo<>+20(SB)/4, $0xb95e8083
DATA ln2lo<>+24(SB)/4, $0xb95e8083
DATA ln2lo<>+28(SB)/4, $0xb95e8083
GLOBL ln2lo<>(SB), RODATA|NOPTR, $32

// exp polynomial 1.9875691500e-4
DATA p0<>+0(SB)/4, $0x39506967
DATA p0<>+4(SB)/4, $0x39506967
DATA p0<>+8(SB)/4, $0x39506967
DATA p0<>+12(SB)/4, $0x39506967
DATA p0<>+16(SB)/4, $0x39506967
DATA p0<>+20(SB)/4, $0x39506967
DATA p0<>+24(SB)/4, $0x39506967
DATA p0<>+28(SB)/4, $0x39506967
GLOBL p0<>(SB), RODATA|NOPTR, $32

// 1.3981999507e-3
DATA p1<>+0(SB)/4, $0x3ab743ce
DATA p1<>+4(SB)/4, $0x3ab743ce
DATA p1<>+8(SB)/4, $0x3ab743ce
DATA p1<>+12(SB)/4, $0x3ab743ce
DATA p1<>+16(SB)/4, $0x3ab743ce
DATA p1<>+20(SB)/4, $0x3ab743ce
DATA p1<>+24(SB)/4, $0x3ab743ce
DATA p1<>+28(SB)/4, $0x3ab743ce
GLOBL p1<>(SB), RODATA|NOPTR, $32

// 8.3334519073e-3
DATA p2<>+0(SB)/4, $0x3c088908
DATA p2<>+4(SB)/4, $0x3c088908
DATA p2<>+8(SB)/4, $0x3c088908
DATA p2<>+12(SB)/4, $0x3c088908
DATA p2<>+16(SB)/4, $0x3c088908
DATA p2<>+20(SB)/4, $0x3c088908
DATA p2<>+24(SB)/4, $0x3c088908
DATA p2<>+28(SB)/4, $0x3c088908
GLOBL p2<>(SB), RODATA|NOPTR, $32

// 4.1665795894e-2
DATA p3<>+0(SB)/4, $0x3d2aa9c1
DATA p3<>+4(SB)/4, $0x3d2aa9c1
DATA p3<>+8(SB)/4, $0x3d2aa9c1
DATA p3<>+12(SB)/4, $0x3d2aa9c1
DATA p3<>+16(SB)/4, $0x3d2aa9c1
DATA p3<>+20(SB)/4, $0x3d2aa9c1
DATA p3<>+24(SB)/4, $0x3d2aa9c1
DATA p3<>+28(SB)/4, $0x3d2aa9c1
GLOBL p3<>(SB), RODATA|NOPTR, $32

// 1.6666665459e-1
DATA p4<>+0(SB)/4, $0x3e2aaaaa
DATA p4<>+4(SB)/4, $0x3e2aaaaa
DATA p4<>+8(SB)/4, $0x3e2aaaaa
DATA p4<>+12(SB)/4, $0x3e2aaaaa
DATA p4<>+16(SB)/4, $0x3e2aaaaa
DATA p4<>+20(SB)/4, $0x3e2aaaaa
DATA p4<>+24(SB)/4, $0x3e2aaaaa
DATA p4<>+28(SB)/4, $0x3e2aaaaa
GLOBL p4<>(SB), RODATA|NOPTR, $32

// 0.5
DATA half<>+0(SB)/4, $0x3f000000
DATA half<>+4(SB)/4, $0x3f000000
DATA half<>+8(SB)/4, $0x3f000000
DATA half<>+12(SB)/4, $0x3f000000
DATA half<>+16(SB)/4, $0x3f000000
DATA half<>+20(SB)/4, $0x3f000000
DATA half<>+24(SB)/4, $0x3f000000
DATA half<>+28(SB)/4, $0x3f000000
GLOBL half<>(SB), RODATA|NOPTR, $32

// 1.0
DATA one<>+0(SB)/4, $0x3f800000
DATA one<>+4(SB)/4, $0x3f800000
DATA one<>+8(SB)/4, $0x3f800000
DATA one<>+12(SB)/4, $0x3f800000
DATA one<>+16(SB)/4, $0x3f800000
DATA one<>+20(SB)/4, $0x3f800000
DATA one<>+24(SB)/4, $0x3f800000
DATA one<>+28(SB)/4, $0x3f800000
GLOBL one<>(SB), RODATA|NOPTR, $32

// -87.33654: exp input floor (the result stays normal)
DATA expmin<>+0(SB)/4, $0xc2aeac4f
DATA expmin<>+4(SB)/4, $0xc2aeac4f
DATA expmin<>+8(SB)/4, $0xc2aeac4f
DATA expmin<>+12(SB)/4, $0xc2aeac4f
DATA expmin<>+16(SB)/4, $0xc2aeac4f
DATA expmin<>+20(SB)/4, $0xc2aeac4f
DATA expmin<>+24(SB)/4, $0xc2aeac4f
DATA expmin<>+28(SB)/4, $0xc2aeac4f
GLOBL expmin<>(SB), RODATA|NOPTR, $32

// 1/sqrt(2)
DATA rsqrt2<>+0(SB)/4, $0x3f3504f3
DATA rsqrt2<>+4(SB)/4, $0x3f3504f3
DATA rsqrt2<>+8(SB)/4, $0x3f3504f3
DATA rsqrt2<>+12(SB)/4, $0x3f3504f3
DATA rsqrt2<>+16(SB)/4, $0x3f3504f3
DATA rsqrt2<>+20(SB)/4, $0x3f3504f3
DATA rsqrt2<>+24(SB)/4, $0x3f3504f3
DATA rsqrt2<>+28(SB)/4, $0x3f3504f3
GLOBL rsqrt2<>(SB), RODATA|NOPTR, $32

// A&S 7.1.26 p 0.3275911
DATA asp<>+0(SB)/4, $0x3ea7ba05
DATA asp<>+4(SB)/4, $0x3ea7ba05
DATA asp<>+8(SB)/4, $0x3ea7ba05
DATA asp<>+12(SB)/4, $0x3ea7ba05
DATA asp<>+16(SB)/4, $0x3ea7ba05
DATA asp<>+20(SB)/4, $0x3ea7ba05
DATA asp<>+24(SB)/4, $0x3ea7ba05
DATA asp<>+28(SB)/4, $0x3ea7ba05
GLOBL asp<>(SB), RODATA|NOPTR, $32

// a1 0.254829592
DATA a1<>+0(SB)/4, $0x3e827906
DATA a1<>+4(SB)/4, $0x3e827906
DATA a1<>+8(SB)/4, $0x3e827906
DATA a1<>+12(SB)/4, $0x3e827906
DATA a1<>+16(SB)/4, $0x3e827906
DATA a1<>+20(SB)/4, $0x3e827906
DATA a1<>+24(SB)/4, $0x3e827906
DATA a1<>+28(SB)/4, $0x3e827906
GLOBL a1<>(SB), RODATA|NOPTR, $32

// a2 -0.284496736
DATA a2<>+0(SB)/4, $0xbe91a98e
DATA a2<>+4(SB)/4, $0xbe91a98e
DATA a2<>+8(SB)/4, $0xbe91a98e
DATA a2<>+12(SB)/4, $0xbe91a98e
DATA a2<>+16(SB)/4, $0xbe91a98e
DATA a2<>+20(SB)/4, $0xbe91a98e
DATA a2<>+24(SB)/4, $0xbe91a98e
DATA a2<>+28(SB)/4, $0xbe91a98e
GLOBL a2<>(SB), RODATA|NOPTR, $32

// a3 1.421413741
DATA a3<>+0(SB)/4, $0x3fb5f0e3
DATA a3<>+4(SB)/4, $0x3fb5f0e3
DATA a3<>+8(SB)/4, $0x3fb5f0e3
DATA a3<>+12(SB)/4, $0x3fb5f0e3
DATA a3<>+16(SB)/4, $0x3fb5f0e3
DATA a3<>+20(SB)/4, $0x3fb5f0e3
DATA a3<>+24(SB)/4, $0x3fb5f0e3
DATA a3<>+28(SB)/4, $0x3fb5f0e3
GLOBL a3<>(SB), RODATA|NOPTR, $32

// a4 -1.453152027
DATA a4<>+0(SB)/4, $0xbfba00e3
DATA a4<>+4(SB)/4, $0xbfba00e3
DATA a4<>+8(SB)/4, $0xbfba00e3
DATA a4<>+12(SB)/4, $0xbfba00e3
DATA a4<>+16(SB)/4, $0xbfba00e3
DATA a4<>+20(SB)/4, $0xbfba00e3
DATA a4<>+24(SB)/4, $0xbfba00e3
DATA a4<>+28(SB)/4, $0xbfba00e3
GLOBL a4<>(SB), RODATA|NOPTR, $32

// a5 1.061405429
DATA a5<>+0(SB)/4, $0x3f87dc22
DATA a5<>+4(SB)/4, $0x3f87dc22
DATA a5<>+8(SB)/4, $0x3f87dc22
DATA a5<>+12(SB)/4, $0x3f87dc22
DATA a5<>+16(SB)/4, $0x3f87dc22
DATA a5<>+20(SB)/4, $0x3f87dc22
DATA a5<>+24(SB)/4, $0x3f87dc22
DATA a5<>+28(SB)/4, $0x3f87dc22
GLOBL a5<>(SB), RODATA|NOPTR, $32

// clears the sign
DATA absmask<>+0(SB)/4, $0x7fffffff
DATA absmask<>+4(SB)/4, $0x7fffffff
DATA absmask<>+8(SB)/4, $0x7fffffff
DATA absmask<>+12(SB)/4, $0x7fffffff
DATA absmask<>+16(SB)/4, $0x7fffffff
DATA absmask<>+20(SB)/4, $0x7fffffff
DATA absmask<>+24(SB)/4, $0x7fffffff
DATA absmask<>+28(SB)/4, $0x7fffffff
GLOBL absmask<>(SB), RODATA|NOPTR, $32

// 2.0
DATA two<>+0(SB)/4, $0x40000000
DATA two<>+4(SB)/4, $0x40000000
DATA two<>+8(SB)/4, $0x40000000
DATA two<>+12(SB)/4, $0x40000000
DATA two<>+16(SB)/4, $0x40000000
DATA two<>+20(SB)/4, $0x40000000
DATA two<>+24(SB)/4, $0x40000000
DATA two<>+28(SB)/4, $0x40000000
GLOBL two<>(SB), RODATA|NOPTR, $32

// exponent bias 127 (int32)
DATA bias<>+0(SB)/4, $0x0000007f
DATA bias<>+4(SB)/4, $0x0000007f
DATA bias<>+8(SB)/4, $0x0000007f
DATA bias<>+12(SB)/4, $0x0000007f
DATA bias<>+16(SB)/4, $0x0000007f
DATA bias<>+20(SB)/4, $0x0000007f
DATA bias<>+24(SB)/4, $0x0000007f
DATA bias<>+28(SB)/4, $0x0000007f
GLOBL bias<>(SB), RODATA|NOPTR, $32

// EXPNEG replaces Y0 (<= 0; larger inputs are not clamped) by exp(Y0):
// n = round(x log2 e), r = x - n ln2 (in two parts), exp(r) by a degree-6
// (Cephes) polynomial, times 2^n built in the exponent field; ~1 ulp.
// Inputs below -87.3 give ~1.2e-38 rather than 0. Clobbers Y1, Y2, Y3.
#define EXPNEG \
	VMAXPS       expmin<>(SB), Y0, Y0; \
	VMULPS       log2e<>(SB), Y0, Y1; \
	VROUNDPS     $0, Y1, Y1; \
	VFNMADD231PS ln2hi<>(SB), Y1, Y0; \
	VFNMADD231PS ln2lo<>(SB), Y1, Y0; \
	VMOVUPS      p0<>(SB), Y2; \
	VFMADD213PS  p1<>(SB), Y0, Y2; \
	VFMADD213PS  p2<>(SB), Y0, Y2; \
	VFMADD213PS  p3<>(SB), Y0, Y2; \
	VFMADD213PS  p4<>(SB), Y0, Y2; \
	VFMADD213PS  half<>(SB), Y0, Y2; \
	VMULPS       Y0, Y0, Y3; \
	VFMADD213PS  Y0, Y3, Y2; \
	VADDPS       one<>(SB), Y2, Y2; \
	VCVTPS2DQ    Y1, Y1; \
	VPADDD       bias<>(SB), Y1, Y1; \
	VPSLLD       $23, Y1, Y1; \
	VMULPS       Y1, Y2, Y0

// HSUM8 reduces Y0 to its lane sum in X0. Clobbers X1.
#define HSUM8 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// func sumAsm(x *float32, n int) float32
TEXT ·sumAsm(SB), NOSPLIT, $0-20
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	SHRQ   $3, CX
	VXORPS Y0, Y0, Y0
	TESTQ  CX, CX
	JZ     sumdone
sumloop:
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNZ    sumloop
sumdone:
	HSUM8
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func sqDiffAsm(x *float32, n int, mean float32) float32   // sum (x-mean)^2
TEXT ·sqDiffAsm(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS mean+16(FP), Y2
	SHRQ         $3, CX
	VXORPS       Y0, Y0, Y0
	TESTQ        CX, CX
	JZ           sqdone
sqloop:
	VMOVUPS     (SI), Y1
	VSUBPS      Y2, Y1, Y1
	VFMADD231PS Y1, Y1, Y0
	ADDQ        $32, SI
	DECQ        CX
	JNZ         sqloop
sqdone:
	HSUM8
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func normAsm(dst, x *float32, n int, mean, rstd float32)   // dst = (x-mean)*rstd
TEXT ·normAsm(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS mean+24(FP), Y2
	VBROADCASTSS rstd+28(FP), Y3
	SHRQ         $3, CX
	JZ           normdone
normloop:
	VMOVUPS (SI), Y0
	VSUBPS  Y2, Y0, Y0
	VMULPS  Y3, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     normloop
normdone:
	VZEROUPPER
	RET

// func mulAddAsm(dst, gamma, beta *float32, n int)   // dst = dst*gamma + beta
TEXT ·mulAddAsm(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gamma+8(FP), SI
	MOVQ beta+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   madone
maloop:
	VMOVUPS     (DI), Y0
	VMOVUPS     (SI), Y1
	VFMADD213PS (DX), Y1, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, DI
	ADDQ        $32, SI
	ADDQ        $32, DX
	DECQ        CX
	JNZ         maloop
madone:
	VZEROUPPER
	RET

// func mulAsm(dst, gamma *float32, n int)   // dst *= gamma
TEXT ·mulAsm(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ gamma+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   muldone
mulloop:
	VMOVUPS (DI), Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    CX
	JNZ     mulloop
muldone:
	VZEROUPPER
	RET

// func addAsm(dst, a, b *float32, n int)   // dst = a + b
TEXT ·addAsm(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   adddone
addloop:
	VMOVUPS (SI), Y0
	VADDPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     addloop
adddone:
	VZEROUPPER
	RET

// func scaleAsm(x *float32, n int, s float32)
TEXT ·scaleAsm(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
	SHRQ         $3, CX
	JZ           scdone
scloop:
	VMULPS  (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     scloop
scdone:
	VZEROUPPER
	RET

// func reluAsm(x *float32, n int)   // NaN becomes 0, as the Go tail
TEXT ·reluAsm(SB), NOSPLIT, $0-16
	MOVQ   x+0(FP), DI
	MOVQ   n+8(FP), CX
	VXORPS Y1, Y1, Y1
	SHRQ   $3, CX
	JZ     reludone
reluloop:
	VMOVUPS (DI), Y0
	VMAXPS  Y1, Y0, Y0   // max(x, 0): returns 0 (the second source) for NaN x
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     reluloop
reludone:
	VZEROUPPER
	RET

// func maxAsm(x *float32, n int) float32   // n >= 8
TEXT ·maxAsm(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	SHRQ    $3, CX
	VMOVUPS (SI), Y0
maxloop:
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNZ    maxloop
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	MOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// func expSubAsm(x *float32, n int, m float32) float32
// x = exp(x - m) in place; returns the sum.
TEXT ·expSubAsm(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y5
	VXORPS       Y6, Y6, Y6
	SHRQ         $3, CX
	JZ           esdone
esloop:
	VMOVUPS (DI), Y0
	VSUBPS  Y5, Y0, Y0
	EXPNEG
	VADDPS  Y0, Y6, Y6
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     esloop
esdone:
	VMOVAPS Y6, Y0
	HSUM8
	MOVSS   X0, ret+24(FP)
	VZEROUPPER
	RET

// func geluAsm(x *float32, n int)
// gelu(x) = 0.5 x (1 + erf(x/sqrt2)). With z = |x|/sqrt2, t = 1/(1+p z),
// q = t*(a1 + t*(a2 + ... a5 t)) * exp(-z^2) = 1 - erf(z) (A&S 7.1.26);
// 1 + erf(x/sqrt2) is q for x < 0 and 2 - q otherwise.
TEXT ·geluAsm(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   geludone

geluloop:
	VMOVUPS     (DI), Y7          // x
	VANDPS      absmask<>(SB), Y7, Y5
	VMULPS      rsqrt2<>(SB), Y5, Y5  // z
	VMOVUPS     asp<>(SB), Y6
	VFMADD213PS one<>(SB), Y5, Y6     // 1 + p z
	VMOVUPS     one<>(SB), Y4
	VDIVPS      Y6, Y4, Y6            // t
	VMOVUPS     a5<>(SB), Y8
	VFMADD213PS a4<>(SB), Y6, Y8
	VFMADD213PS a3<>(SB), Y6, Y8
	VFMADD213PS a2<>(SB), Y6, Y8
	VFMADD213PS a1<>(SB), Y6, Y8
	VMULPS      Y6, Y8, Y8            // t * poly(t)
	VXORPS      Y0, Y0, Y0
	VFNMADD231PS Y5, Y5, Y0           // -z^2
	EXPNEG
	VMULPS      Y0, Y8, Y8            // q
	VMOVUPS     two<>(SB), Y9
	VSUBPS      Y8, Y9, Y9            // 2 - q
	VBLENDVPS   Y7, Y8, Y9, Y9        // x < 0 ? q : 2 - q
	VMULPS      half<>(SB), Y7, Y7
	VMULPS      Y9, Y7, Y7
	VMOVUPS     Y7, (DI)
	ADDQ        $32, DI
	DECQ        CX
	JNZ         geluloop

geludone:
	VZEROUPPER
	RET
