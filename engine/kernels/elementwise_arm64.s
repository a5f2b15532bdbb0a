//go:build arm64 && !purego

#include "textflag.h"
#include "neon_arm64.h"

// Element-wise NEON kernels. Every routine handles n % 8 == 0 elements, two
// vectors a pass; the Go caller does the tail. The arithmetic follows
// elementwise_amd64.s operation for operation (same exp and erf, fused
// where the AVX2 code fuses).

// HSUM2 reduces V4 and V5 to the sum of their 8 lanes in F4.
#define HSUM2 \
	FADD4S(4, 4, 5); \
	FADDP4S(4, 4, 4); \
	FADDP4S(4, 4, 4)

// func sumAsm(x *float32, n int) float32
TEXT ·sumAsm(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	LSR  $3, R1, R1
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	CBZ  R1, sumdone

sumloop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	FADD4S(4, 4, 0)
	FADD4S(5, 5, 1)
	SUBS   $1, R1, R1
	BNE    sumloop

sumdone:
	HSUM2
	FMOVS F4, ret+16(FP)
	RET

// func sqDiffAsm(x *float32, n int, mean float32) float32   // sum (x-mean)^2
TEXT ·sqDiffAsm(SB), NOSPLIT, $0-28
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R1
	FMOVS mean+16(FP), F2
	VDUP  V2.S[0], V2.S4
	LSR   $3, R1, R1
	VEOR  V4.B16, V4.B16, V4.B16
	VEOR  V5.B16, V5.B16, V5.B16
	CBZ   R1, sqdone

sqloop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	FSUB4S(0, 0, 2)
	FSUB4S(1, 1, 2)
	FMLA4S(4, 0, 0)
	FMLA4S(5, 1, 1)
	SUBS   $1, R1, R1
	BNE    sqloop

sqdone:
	HSUM2
	FMOVS F4, ret+24(FP)
	RET

// func normAsm(dst, x *float32, n int, mean, rstd float32)   // dst = (x-mean)*rstd
TEXT ·normAsm(SB), NOSPLIT, $0-32
	MOVD  dst+0(FP), R0
	MOVD  x+8(FP), R1
	MOVD  n+16(FP), R2
	FMOVS mean+24(FP), F2
	FMOVS rstd+28(FP), F3
	VDUP  V2.S[0], V2.S4
	VDUP  V3.S[0], V3.S4
	LSR   $3, R2, R2
	CBZ   R2, normdone

normloop:
	VLD1.P 32(R1), [V0.S4, V1.S4]
	FSUB4S(0, 0, 2)
	FSUB4S(1, 1, 2)
	FMUL4S(0, 0, 3)
	FMUL4S(1, 1, 3)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R2, R2
	BNE    normloop

normdone:
	RET

// func mulAddAsm(dst, gamma, beta *float32, n int)   // dst = dst*gamma + beta (fused)
TEXT ·mulAddAsm(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD gamma+8(FP), R1
	MOVD beta+16(FP), R2
	MOVD n+24(FP), R3
	LSR  $3, R3, R3
	CBZ  R3, madone

maloop:
	VLD1   (R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	VLD1.P 32(R2), [V4.S4, V5.S4]
	FMLA4S(4, 0, 2)
	FMLA4S(5, 1, 3)
	VST1.P [V4.S4, V5.S4], 32(R0)
	SUBS   $1, R3, R3
	BNE    maloop

madone:
	RET

// func mulAsm(dst, gamma *float32, n int)   // dst *= gamma
TEXT ·mulAsm(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD gamma+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	CBZ  R2, muldone

mulloop:
	VLD1   (R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	FMUL4S(0, 0, 2)
	FMUL4S(1, 1, 3)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R2, R2
	BNE    mulloop

muldone:
	RET

// func addAsm(dst, a, b *float32, n int)   // dst = a + b
TEXT ·addAsm(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD n+24(FP), R3
	LSR  $3, R3, R3
	CBZ  R3, adddone

addloop:
	VLD1.P 32(R1), [V0.S4, V1.S4]
	VLD1.P 32(R2), [V2.S4, V3.S4]
	FADD4S(0, 0, 2)
	FADD4S(1, 1, 3)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R3, R3
	BNE    addloop

adddone:
	RET

// func scaleAsm(x *float32, n int, s float32)
TEXT ·scaleAsm(SB), NOSPLIT, $0-20
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R1
	FMOVS s+16(FP), F2
	LSR   $3, R1, R1
	CBZ   R1, scdone

scloop:
	VLD1   (R0), [V0.S4, V1.S4]
	FMULE(0, 0, 2, 0)
	FMULE(1, 1, 2, 0)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R1, R1
	BNE    scloop

scdone:
	RET

// func reluAsm(x *float32, n int)   // NaN becomes 0 (FMAXNM), as the Go tail
TEXT ·reluAsm(SB), NOSPLIT, $0-16
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	VEOR V2.B16, V2.B16, V2.B16
	LSR  $3, R1, R1
	CBZ  R1, reludone

reluloop:
	VLD1   (R0), [V0.S4, V1.S4]
	FMAXNM4S(0, 0, 2)
	FMAXNM4S(1, 1, 2)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R1, R1
	BNE    reluloop

reludone:
	RET

// func maxAsm(x *float32, n int) float32   // n >= 8
TEXT ·maxAsm(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	LSR  $3, R1, R1
	VLD1 (R0), [V4.S4, V5.S4]

maxloop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	FMAX4S(4, 4, 0)
	FMAX4S(5, 5, 1)
	SUBS   $1, R1, R1
	BNE    maxloop
	FMAX4S(4, 4, 5)
	FMAXP4S(4, 4, 4)
	FMAXP4S(4, 4, 4)
	FMOVS  F4, ret+16(FP)
	RET

// EXPCONST loads the constants of EXP: V16 expmin, V17 log2e, V18 ln2hi,
// V19 ln2lo, V20..V24 p0..p4, V25 0.5, V26 1.0, V27 int32 127.
#define EXPCONST \
	MOVW $0xc2aeac4f, R9; VDUP R9, V16.S4; \
	MOVW $0x3fb8aa3b, R9; VDUP R9, V17.S4; \
	MOVW $0x3f318000, R9; VDUP R9, V18.S4; \
	MOVW $0xb95e8083, R9; VDUP R9, V19.S4; \
	MOVW $0x39506967, R9; VDUP R9, V20.S4; \
	MOVW $0x3ab743ce, R9; VDUP R9, V21.S4; \
	MOVW $0x3c088908, R9; VDUP R9, V22.S4; \
	MOVW $0x3d2aa9c1, R9; VDUP R9, V23.S4; \
	MOVW $0x3e2aaaaa, R9; VDUP R9, V24.S4; \
	MOVW $0x3f000000, R9; VDUP R9, V25.S4; \
	MOVW $0x3f800000, R9; VDUP R9, V26.S4; \
	MOVW $127, R9; VDUP R9, V27.S4

// EXP replaces Vx (<= 0; larger inputs are not clamped) by exp(Vx), as
// EXPNEG of elementwise_amd64.s: n = round(x log2 e), r = x - n ln2 (in two
// parts), a degree-6 polynomial, times 2^n built in the exponent field.
// Clobbers Vt1, Vt2, Vt3.
#define EXP(x, t1, t2, t3) \
	FMAX4S(x, x, 16); \
	FMUL4S(t1, x, 17); \
	FRINTN4S(t1, t1); \
	FMLS4S(x, t1, 18); \
	FMLS4S(x, t1, 19); \
	MOV16B(t2, 21); \
	FMLA4S(t2, 20, x); \
	MOV16B(t3, 22); \
	FMLA4S(t3, t2, x); \
	MOV16B(t2, 23); \
	FMLA4S(t2, t3, x); \
	MOV16B(t3, 24); \
	FMLA4S(t3, t2, x); \
	MOV16B(t2, 25); \
	FMLA4S(t2, t3, x); \
	FMUL4S(t3, x, x); \
	FMLA4S(x, t3, t2); \
	FADD4S(x, x, 26); \
	FCVTNS4S(t1, t1); \
	ADD4S(t1, t1, 27); \
	SHL23_4S(t1, t1); \
	FMUL4S(x, x, t1)

// func expSubAsm(x *float32, n int, m float32) float32
// x = exp(x - m) in place; returns the sum.
TEXT ·expSubAsm(SB), NOSPLIT, $0-28
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R1
	FMOVS m+16(FP), F8
	VDUP  V8.S[0], V8.S4
	EXPCONST
	VEOR  V4.B16, V4.B16, V4.B16
	VEOR  V5.B16, V5.B16, V5.B16
	LSR   $3, R1, R1
	CBZ   R1, esdone

esloop:
	VLD1   (R0), [V0.S4, V1.S4]
	FSUB4S(0, 0, 8)
	FSUB4S(1, 1, 8)
	EXP(0, 9, 10, 11)
	EXP(1, 12, 13, 14)
	FADD4S(4, 4, 0)
	FADD4S(5, 5, 1)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R1, R1
	BNE    esloop

esdone:
	HSUM2
	FMOVS F4, ret+24(FP)
	RET

// GELU1 computes gelu of Vx in place, as geluAsm of elementwise_amd64.s:
// z = |x|/sqrt2, t = 1/(1+p z), q = t*(a1 + t*(a2 + ... a5 t)) * exp(-z^2)
// = 1 - erf(z) (A&S 7.1.26); 1 + erf(x/sqrt2) is q where x's sign bit is
// set and 2 - q elsewhere. Constants: V28 1/sqrt2, V29 p, a1..a5 in V30,
// V2, V3, V6, V7, V31 2.0. Clobbers V8..V12.
#define GELU1(x) \
	FABS4S(8, x); \
	FMUL4S(8, 8, 28); \
	MOV16B(9, 26); \
	FMLA4S(9, 29, 8); \
	FDIV4S(9, 26, 9); \
	MOV16B(10, 6); \
	FMLA4S(10, 7, 9); \
	MOV16B(11, 3); \
	FMLA4S(11, 10, 9); \
	MOV16B(10, 2); \
	FMLA4S(10, 11, 9); \
	MOV16B(11, 30); \
	FMLA4S(11, 10, 9); \
	FMUL4S(11, 11, 9); \
	FMUL4S(8, 8, 8); \
	FNEG4S(8, 8); \
	EXP(8, 9, 10, 12); \
	FMUL4S(11, 11, 8); \
	FSUB4S(10, 31, 11); \
	SIGNMASK4S(9, x); \
	BSL16B(9, 11, 10); \
	FMUL4S(x, x, 25); \
	FMUL4S(x, x, 9)

// func geluAsm(x *float32, n int)
TEXT ·geluAsm(SB), NOSPLIT, $0-16
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	EXPCONST
	MOVW $0x3f3504f3, R9; VDUP R9, V28.S4
	MOVW $0x3ea7ba05, R9; VDUP R9, V29.S4
	MOVW $0x3e827906, R9; VDUP R9, V30.S4
	MOVW $0xbe91a98e, R9; VDUP R9, V2.S4
	MOVW $0x3fb5f0e3, R9; VDUP R9, V3.S4
	MOVW $0xbfba00e3, R9; VDUP R9, V6.S4
	MOVW $0x3f87dc22, R9; VDUP R9, V7.S4
	MOVW $0x40000000, R9; VDUP R9, V31.S4
	LSR  $3, R1, R1
	CBZ  R1, geludone

geluloop:
	VLD1   (R0), [V0.S4, V1.S4]
	GELU1(0)
	GELU1(1)
	VST1.P [V0.S4, V1.S4], 32(R0)
	SUBS   $1, R1, R1
	BNE    geluloop

geludone:
	RET
