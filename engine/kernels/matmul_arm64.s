//go:build arm64 && !purego

#include "textflag.h"
#include "neon_arm64.h"

// ---------------------------------------------------------------------------
// sgemm8x8: the f32 micro-kernel.
//
// V16..V31 hold the 8x8 tile of C (row r in V(16+2r), V(17+2r)). Each pass
// takes 4 depth steps: it loads 4 consecutive A values of each row (V0..V7,
// rows from R4..R11) and 4 packed rows of B (V8..V15), then issues 64 FMLAs
// by element (A row r lane q times B row q). Depths not a multiple of 4
// finish one step at a time with lane 0.

#define STEP(q) \
	FMLAE(16, 8+2*(q), 0, q); \
	FMLAE(17, 9+2*(q), 0, q); \
	FMLAE(18, 8+2*(q), 1, q); \
	FMLAE(19, 9+2*(q), 1, q); \
	FMLAE(20, 8+2*(q), 2, q); \
	FMLAE(21, 9+2*(q), 2, q); \
	FMLAE(22, 8+2*(q), 3, q); \
	FMLAE(23, 9+2*(q), 3, q); \
	FMLAE(24, 8+2*(q), 4, q); \
	FMLAE(25, 9+2*(q), 4, q); \
	FMLAE(26, 8+2*(q), 5, q); \
	FMLAE(27, 9+2*(q), 5, q); \
	FMLAE(28, 8+2*(q), 6, q); \
	FMLAE(29, 9+2*(q), 6, q); \
	FMLAE(30, 8+2*(q), 7, q); \
	FMLAE(31, 9+2*(q), 7, q);

// func sgemm8x8(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)
TEXT ·sgemm8x8(SB), NOSPLIT, $0-73
	MOVD kc+0(FP), R0
	MOVD a+8(FP), R4
	MOVD lda+16(FP), R3
	MOVD b+24(FP), R2
	MOVD pf+48(FP), R12
	MOVD pfld+56(FP), R13
	MOVD pfn+64(FP), R14
	CBNZ R12, 2(PC)
	MOVD ZR, R14
	LSL  $2, R3, R3
	ADD  R3, R4, R5
	ADD  R3, R5, R6
	ADD  R3, R6, R7
	ADD  R3, R7, R8
	ADD  R3, R8, R9
	ADD  R3, R9, R10
	ADD  R3, R10, R11
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	LSR  $2, R0, R15
	CBZ  R15, tail

loop4:
	CBZ  R14, nopf
	PRFM (R12), PLDL2KEEP
	ADD  R12, R13, R19
	PRFM (R19), PLDL2KEEP
	ADD  $64, R12, R12
	SUB  $1, R14, R14

nopf:
	VLD1.P 16(R4), [V0.S4]
	VLD1.P 16(R5), [V1.S4]
	VLD1.P 16(R6), [V2.S4]
	VLD1.P 16(R7), [V3.S4]
	VLD1.P 16(R8), [V4.S4]
	VLD1.P 16(R9), [V5.S4]
	VLD1.P 16(R10), [V6.S4]
	VLD1.P 16(R11), [V7.S4]
	VLD1.P 64(R2), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1.P 64(R2), [V12.S4, V13.S4, V14.S4, V15.S4]
	STEP(0)
	STEP(1)
	STEP(2)
	STEP(3)
	SUBS $1, R15, R15
	BNE  loop4

tail:
	AND $3, R0, R15
	CBZ R15, done

loop1:
	FMOVS.P 4(R4), F0
	FMOVS.P 4(R5), F1
	FMOVS.P 4(R6), F2
	FMOVS.P 4(R7), F3
	FMOVS.P 4(R8), F4
	FMOVS.P 4(R9), F5
	FMOVS.P 4(R10), F6
	FMOVS.P 4(R11), F7
	VLD1.P 32(R2), [V8.S4, V9.S4]
	STEP(0)
	SUBS $1, R15, R15
	BNE  loop1

done:
	MOVD  c+32(FP), R19
	MOVD  ldc+40(FP), R17
	LSL   $2, R17, R17
	MOVBU accum+72(FP), R15
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(16, 16, 0)
	FADD4S(17, 17, 1)
	VST1  [V16.S4, V17.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(18, 18, 0)
	FADD4S(19, 19, 1)
	VST1  [V18.S4, V19.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(20, 20, 0)
	FADD4S(21, 21, 1)
	VST1  [V20.S4, V21.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(22, 22, 0)
	FADD4S(23, 23, 1)
	VST1  [V22.S4, V23.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(24, 24, 0)
	FADD4S(25, 25, 1)
	VST1  [V24.S4, V25.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(26, 26, 0)
	FADD4S(27, 27, 1)
	VST1  [V26.S4, V27.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(28, 28, 0)
	FADD4S(29, 29, 1)
	VST1  [V28.S4, V29.S4], (R19)
	ADD   R17, R19, R19
	CBZ   R15, 4(PC)
	VLD1  (R19), [V0.S4, V1.S4]
	FADD4S(30, 30, 0)
	FADD4S(31, 31, 1)
	VST1  [V30.S4, V31.S4], (R19)
	ADD   R17, R19, R19
	RET

// ---------------------------------------------------------------------------
// func cvtF16Asm(dst *float32, src *byte, n int)   // n % 8 == 0
TEXT ·cvtF16Asm(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	CBZ  R2, cvtdone

cvtloop:
	VLD1.P 16(R1), [V0.H8]
	FCVTL(1, 0)
	FCVTL2(2, 0)
	VST1.P [V1.S4, V2.S4], 32(R0)
	SUBS   $1, R2, R2
	BNE    cvtloop

cvtdone:
	RET

// HSUM reduces V4 and V5 to the sum of their 8 lanes in F4.
#define HSUM \
	FADD4S(4, 4, 5); \
	FADDP4S(4, 4, 4); \
	FADDP4S(4, 4, 4)

// func sdotAsm(x *float32, w *float32, n int) float32   // n % 8 == 0
TEXT ·sdotAsm(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	CBZ  R2, sddone

sdloop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	FMLA4S(4, 0, 2)
	FMLA4S(5, 1, 3)
	SUBS   $1, R2, R2
	BNE    sdloop

sddone:
	HSUM
	FMOVS F4, ret+24(FP)
	RET

// func hdotAsm(x *float32, w *byte, n int) float32   // n % 8 == 0
TEXT ·hdotAsm(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD n+16(FP), R2
	LSR  $3, R2, R2
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	CBZ  R2, hddone

hdloop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P 16(R1), [V6.H8]
	FCVTL(2, 6)
	FCVTL2(3, 6)
	FMLA4S(4, 0, 2)
	FMLA4S(5, 1, 3)
	SUBS   $1, R2, R2
	BNE    hdloop

hddone:
	HSUM
	FMOVS F4, ret+24(FP)
	RET

// func prefetchAsm(p *byte, n int)
// PRFM every 64-byte line of [p, p+n).
TEXT ·prefetchAsm(SB), NOSPLIT, $0-16
	MOVD p+0(FP), R0
	MOVD n+8(FP), R1
	ADD  R0, R1, R1
	AND  $~63, R0, R0

pfloop:
	CMP  R1, R0
	BHS  pfdone
	PRFM (R0), PLDL1KEEP
	ADD  $64, R0, R0
	B    pfloop

pfdone:
	RET

// ---------------------------------------------------------------------------
// func packNT8(dst *float32, src *float32, ld int, kc4 int)
// Transposes 8 rows of src (stride ld elements) over depth kc4 (a multiple
// of 4) into dst as kc4 groups of 8: per 4 depth steps, two 4x4 blocks
// (rows 0-3 and 4-7) by TRN1/TRN2 of lanes, then of 64-bit halves.
TEXT ·packNT8(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R4
	MOVD ld+16(FP), R3
	MOVD kc4+24(FP), R1
	LSL  $2, R3, R3
	ADD  R3, R4, R5
	ADD  R3, R5, R6
	ADD  R3, R6, R7
	ADD  R3, R7, R8
	ADD  R3, R8, R9
	ADD  R3, R9, R10
	ADD  R3, R10, R11
	LSR  $2, R1, R1
	CBZ  R1, pntdone

pntloop:
	VLD1.P 16(R4), [V0.S4]
	VLD1.P 16(R5), [V1.S4]
	VLD1.P 16(R6), [V2.S4]
	VLD1.P 16(R7), [V3.S4]
	VLD1.P 16(R8), [V4.S4]
	VLD1.P 16(R9), [V5.S4]
	VLD1.P 16(R10), [V6.S4]
	VLD1.P 16(R11), [V7.S4]
	VTRN1  V1.S4, V0.S4, V8.S4
	VTRN2  V1.S4, V0.S4, V9.S4
	VTRN1  V3.S4, V2.S4, V10.S4
	VTRN2  V3.S4, V2.S4, V11.S4
	VTRN1  V5.S4, V4.S4, V12.S4
	VTRN2  V5.S4, V4.S4, V13.S4
	VTRN1  V7.S4, V6.S4, V14.S4
	VTRN2  V7.S4, V6.S4, V15.S4
	VTRN1  V10.D2, V8.D2, V16.D2
	VTRN1  V14.D2, V12.D2, V17.D2
	VTRN1  V11.D2, V9.D2, V18.D2
	VTRN1  V15.D2, V13.D2, V19.D2
	VTRN2  V10.D2, V8.D2, V20.D2
	VTRN2  V14.D2, V12.D2, V21.D2
	VTRN2  V11.D2, V9.D2, V22.D2
	VTRN2  V15.D2, V13.D2, V23.D2
	VST1.P [V16.S4, V17.S4, V18.S4, V19.S4], 64(R0)
	VST1.P [V20.S4, V21.S4, V22.S4, V23.S4], 64(R0)
	SUBS   $1, R1, R1
	BNE    pntloop

pntdone:
	RET
