//go:build arm64 && !purego

#include "textflag.h"
#include "neon_arm64.h"

// Integer GEMM kernels for Q8_0 weights (see q8gemm.go for the layouts and
// the arithmetic every kernel reproduces bit for bit). All three compute a
// 4x8 tile and keep its f32 accumulators in registers for the whole call:
// per block, the exact int32 sums s, then acc = fma(f32(s), dx*dw, acc)
// (SCVTF, FMUL, FMLA).
//
// An A block (40 bytes): 32 int8 q, f32 dx at +32 (the int32 at +36 is the
// VNNI kernels'). Arguments:
// nb+0, a+8, lda+16, b+24, c+32, ldc+40, pf+48, accum+56.

// PFLINE prefetches the cache line at R8 and moves R8 to the next one,
// unless R8 is nil: one line of the weights the next panel packs per block.
#define PFLINE \
	CBZ  R8, 3(PC); \
	PRFM (R8), PLDL1KEEP; \
	ADD  $64, R8, R8

// SETUP loads the arguments: R0 nb, R1..R4 the 4 A rows, R5 the panel,
// R6 C, R7 its row stride in bytes, R8 pf, R9 accum.
#define SETUP \
	MOVD  nb+0(FP), R0; \
	MOVD  a+8(FP), R1; \
	MOVD  lda+16(FP), R10; \
	MOVD  b+24(FP), R5; \
	MOVD  c+32(FP), R6; \
	MOVD  ldc+40(FP), R7; \
	MOVD  pf+48(FP), R8; \
	MOVBU accum+56(FP), R9; \
	LSL   $2, R7, R7; \
	ADD   R10, R1, R2; \
	ADD   R10, R2, R3; \
	ADD   R10, R3, R4

// ---------------------------------------------------------------------------
// q8gemmDot4x8: SDOT (FEAT_DotProd), q8Signed panels with nr = 8.
//
// V0..V7 int32 sums (row r: V(2r) columns 0-3, V(2r+1) columns 4-7),
// V8..V15 the f32 accumulators (same places + 8), V16..V23 the A rows
// (row r: quads 0-3 in V(16+2r), 4-7 in V(17+2r)), V24/V25 one quad of the
// panel (8 columns x 4 bytes); SDOT by element multiplies each column's 4
// weight bytes by the row's 4 activation bytes and adds them to one lane.

// func q8gemmDot4x8(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
TEXT ·q8gemmDot4x8(SB), NOSPLIT, $0-57
	SETUP
	CBZ  R9, dzero
	MOVD R6, R11
	VLD1 (R11), [V8.S4, V9.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V10.S4, V11.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V12.S4, V13.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V14.S4, V15.S4]
	ADD  R7, R11, R11
	B    dstart

dzero:
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16

dstart:
	CBZ  R0, dstore

dblock:
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VLD1 (R1), [V16.S4, V17.S4]
	VLD1 (R2), [V18.S4, V19.S4]
	VLD1 (R3), [V20.S4, V21.S4]
	VLD1 (R4), [V22.S4, V23.S4]
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 16, 0)
	SDOTE(1, 25, 16, 0)
	SDOTE(2, 24, 18, 0)
	SDOTE(3, 25, 18, 0)
	SDOTE(4, 24, 20, 0)
	SDOTE(5, 25, 20, 0)
	SDOTE(6, 24, 22, 0)
	SDOTE(7, 25, 22, 0)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 16, 1)
	SDOTE(1, 25, 16, 1)
	SDOTE(2, 24, 18, 1)
	SDOTE(3, 25, 18, 1)
	SDOTE(4, 24, 20, 1)
	SDOTE(5, 25, 20, 1)
	SDOTE(6, 24, 22, 1)
	SDOTE(7, 25, 22, 1)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 16, 2)
	SDOTE(1, 25, 16, 2)
	SDOTE(2, 24, 18, 2)
	SDOTE(3, 25, 18, 2)
	SDOTE(4, 24, 20, 2)
	SDOTE(5, 25, 20, 2)
	SDOTE(6, 24, 22, 2)
	SDOTE(7, 25, 22, 2)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 16, 3)
	SDOTE(1, 25, 16, 3)
	SDOTE(2, 24, 18, 3)
	SDOTE(3, 25, 18, 3)
	SDOTE(4, 24, 20, 3)
	SDOTE(5, 25, 20, 3)
	SDOTE(6, 24, 22, 3)
	SDOTE(7, 25, 22, 3)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 17, 0)
	SDOTE(1, 25, 17, 0)
	SDOTE(2, 24, 19, 0)
	SDOTE(3, 25, 19, 0)
	SDOTE(4, 24, 21, 0)
	SDOTE(5, 25, 21, 0)
	SDOTE(6, 24, 23, 0)
	SDOTE(7, 25, 23, 0)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 17, 1)
	SDOTE(1, 25, 17, 1)
	SDOTE(2, 24, 19, 1)
	SDOTE(3, 25, 19, 1)
	SDOTE(4, 24, 21, 1)
	SDOTE(5, 25, 21, 1)
	SDOTE(6, 24, 23, 1)
	SDOTE(7, 25, 23, 1)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 17, 2)
	SDOTE(1, 25, 17, 2)
	SDOTE(2, 24, 19, 2)
	SDOTE(3, 25, 19, 2)
	SDOTE(4, 24, 21, 2)
	SDOTE(5, 25, 21, 2)
	SDOTE(6, 24, 23, 2)
	SDOTE(7, 25, 23, 2)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	SDOTE(0, 24, 17, 3)
	SDOTE(1, 25, 17, 3)
	SDOTE(2, 24, 19, 3)
	SDOTE(3, 25, 19, 3)
	SDOTE(4, 24, 21, 3)
	SDOTE(5, 25, 21, 3)
	SDOTE(6, 24, 23, 3)
	SDOTE(7, 25, 23, 3)
	VLD1.P 32(R5), [V26.S4, V27.S4]
	FMOVS 32(R1), F28
	FMULE(29, 26, 28, 0)
	SCVTF4S(30, 0)
	FMLA4S(8, 30, 29)
	FMULE(29, 27, 28, 0)
	SCVTF4S(30, 1)
	FMLA4S(9, 30, 29)
	FMOVS 32(R2), F28
	FMULE(29, 26, 28, 0)
	SCVTF4S(30, 2)
	FMLA4S(10, 30, 29)
	FMULE(29, 27, 28, 0)
	SCVTF4S(30, 3)
	FMLA4S(11, 30, 29)
	FMOVS 32(R3), F28
	FMULE(29, 26, 28, 0)
	SCVTF4S(30, 4)
	FMLA4S(12, 30, 29)
	FMULE(29, 27, 28, 0)
	SCVTF4S(30, 5)
	FMLA4S(13, 30, 29)
	FMOVS 32(R4), F28
	FMULE(29, 26, 28, 0)
	SCVTF4S(30, 6)
	FMLA4S(14, 30, 29)
	FMULE(29, 27, 28, 0)
	SCVTF4S(30, 7)
	FMLA4S(15, 30, 29)
	ADD  $40, R1, R1
	ADD  $40, R2, R2
	ADD  $40, R3, R3
	ADD  $40, R4, R4
	PFLINE
	SUBS $1, R0, R0
	BNE  dblock

dstore:
	VST1 [V8.S4, V9.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V10.S4, V11.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V12.S4, V13.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V14.S4, V15.S4], (R6)
	ADD  R7, R6, R6
	RET

// ---------------------------------------------------------------------------
// q8gemmNEON4x8: plain NEON (no dot product), q8Signed panels with nr = 8.
//
// Per pair of quads (q, q+1) and row: broadcast the row's two quads (V28,
// V29); per 4 columns, SMULL multiplies 2 columns' weight bytes of quad q by
// the activations into int16, SMLAL adds those of quad q+1 (|sum| <=
// 2*127*128 fits), and SADALP adds the int16 pairs into int32 lanes: each
// column has two lanes, in V(4r+2h) (columns 4h, 4h+1) and V(4r+2h+1)
// (columns 4h+2, 4h+3), which ADDP joins after the block. V16..V23 are the
// f32 accumulators (row r in V(16+2r), V(17+2r)), V24..V27 the two quads
// of the panel.

// func q8gemmNEON4x8(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
TEXT ·q8gemmNEON4x8(SB), NOSPLIT, $0-57
	SETUP
	CBZ  R9, nzero
	MOVD R6, R11
	VLD1 (R11), [V16.S4, V17.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V18.S4, V19.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V20.S4, V21.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V22.S4, V23.S4]
	ADD  R7, R11, R11
	B    nstart

nzero:
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16

nstart:
	CBZ  R0, nstore

nblock:
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	VLD1R.P 4(R1), [V28.S4]
	VLD1R.P 4(R1), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(0, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(1, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(2, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(3, 31)
	VLD1R.P 4(R2), [V28.S4]
	VLD1R.P 4(R2), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(4, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(5, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(6, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(7, 31)
	VLD1R.P 4(R3), [V28.S4]
	VLD1R.P 4(R3), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(8, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(9, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(10, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(11, 31)
	VLD1R.P 4(R4), [V28.S4]
	VLD1R.P 4(R4), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(12, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(13, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(14, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(15, 31)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	VLD1R.P 4(R1), [V28.S4]
	VLD1R.P 4(R1), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(0, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(1, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(2, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(3, 31)
	VLD1R.P 4(R2), [V28.S4]
	VLD1R.P 4(R2), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(4, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(5, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(6, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(7, 31)
	VLD1R.P 4(R3), [V28.S4]
	VLD1R.P 4(R3), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(8, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(9, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(10, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(11, 31)
	VLD1R.P 4(R4), [V28.S4]
	VLD1R.P 4(R4), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(12, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(13, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(14, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(15, 31)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	VLD1R.P 4(R1), [V28.S4]
	VLD1R.P 4(R1), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(0, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(1, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(2, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(3, 31)
	VLD1R.P 4(R2), [V28.S4]
	VLD1R.P 4(R2), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(4, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(5, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(6, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(7, 31)
	VLD1R.P 4(R3), [V28.S4]
	VLD1R.P 4(R3), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(8, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(9, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(10, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(11, 31)
	VLD1R.P 4(R4), [V28.S4]
	VLD1R.P 4(R4), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(12, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(13, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(14, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(15, 31)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	VLD1R.P 4(R1), [V28.S4]
	VLD1R.P 4(R1), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(0, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(1, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(2, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(3, 31)
	VLD1R.P 4(R2), [V28.S4]
	VLD1R.P 4(R2), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(4, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(5, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(6, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(7, 31)
	VLD1R.P 4(R3), [V28.S4]
	VLD1R.P 4(R3), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(8, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(9, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(10, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(11, 31)
	VLD1R.P 4(R4), [V28.S4]
	VLD1R.P 4(R4), [V29.S4]
	SMULL(30, 24, 28)
	SMLAL(30, 26, 29)
	SADALP8H(12, 30)
	SMULL2(31, 24, 28)
	SMLAL2(31, 26, 29)
	SADALP8H(13, 31)
	SMULL(30, 25, 28)
	SMLAL(30, 27, 29)
	SADALP8H(14, 30)
	SMULL2(31, 25, 28)
	SMLAL2(31, 27, 29)
	SADALP8H(15, 31)
	VLD1.P 32(R5), [V24.S4, V25.S4]
	FMOVS (R1), F28
	VADDP V1.S4, V0.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 24, 28, 0)
	FMLA4S(16, 30, 31)
	VADDP V3.S4, V2.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 25, 28, 0)
	FMLA4S(17, 30, 31)
	FMOVS (R2), F28
	VADDP V5.S4, V4.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 24, 28, 0)
	FMLA4S(18, 30, 31)
	VADDP V7.S4, V6.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 25, 28, 0)
	FMLA4S(19, 30, 31)
	FMOVS (R3), F28
	VADDP V9.S4, V8.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 24, 28, 0)
	FMLA4S(20, 30, 31)
	VADDP V11.S4, V10.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 25, 28, 0)
	FMLA4S(21, 30, 31)
	FMOVS (R4), F28
	VADDP V13.S4, V12.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 24, 28, 0)
	FMLA4S(22, 30, 31)
	VADDP V15.S4, V14.S4, V30.S4
	SCVTF4S(30, 30)
	FMULE(31, 25, 28, 0)
	FMLA4S(23, 30, 31)
	ADD  $8, R1, R1
	ADD  $8, R2, R2
	ADD  $8, R3, R3
	ADD  $8, R4, R4
	PFLINE
	SUBS $1, R0, R0
	BNE  nblock

nstore:
	VST1 [V16.S4, V17.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V18.S4, V19.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V20.S4, V21.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V22.S4, V23.S4], (R6)
	ADD  R7, R6, R6
	RET

// ---------------------------------------------------------------------------
// q8gemmI8MM4x8: SMMLA (FEAT_I8MM), q8Pairs panels with nr = 8.
//
// SMMLA multiplies a 2x8 matrix of int8 (two rows' 8 bytes of depth) by
// the transpose of another (two columns' 8 bytes) and adds the 2x2 int32
// products [r0c0, r0c1, r1c0, r1c1] to its destination. V0..V7 are those
// sums (row pair p, column pair j in V(4p+j)), V8..V15 the f32
// accumulators in the same 2x2 order, V16..V23 the A operands (row pair p,
// 8-byte group g in V(16+4p+g): the two rows' bytes side by side, loaded a
// half at a time), V24..V27 one group of the panel (4 column pairs). The
// scales: dx of the row pair as [dx0, dx0, dx1, dx1] (V30), the panel's
// [dw0, dw1, dw0, dw1] per column pair. C is read and written through the
// 2x2 order with ZIP1/ZIP2 of 64-bit halves.

// func q8gemmI8MM4x8(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
TEXT ·q8gemmI8MM4x8(SB), NOSPLIT, $0-57
	SETUP
	CBZ  R9, izero
	MOVD R6, R11
	VLD1 (R11), [V16.S4, V17.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V18.S4, V19.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V20.S4, V21.S4]
	ADD  R7, R11, R11
	VLD1 (R11), [V22.S4, V23.S4]
	ADD  R7, R11, R11
	VZIP1 V18.D2, V16.D2, V8.D2
	VZIP2 V18.D2, V16.D2, V9.D2
	VZIP1 V19.D2, V17.D2, V10.D2
	VZIP2 V19.D2, V17.D2, V11.D2
	VZIP1 V22.D2, V20.D2, V12.D2
	VZIP2 V22.D2, V20.D2, V13.D2
	VZIP1 V23.D2, V21.D2, V14.D2
	VZIP2 V23.D2, V21.D2, V15.D2
	B    istart

izero:
	VEOR V8.B16, V8.B16, V8.B16
	VEOR V9.B16, V9.B16, V9.B16
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
	VEOR V12.B16, V12.B16, V12.B16
	VEOR V13.B16, V13.B16, V13.B16
	VEOR V14.B16, V14.B16, V14.B16
	VEOR V15.B16, V15.B16, V15.B16

istart:
	CBZ  R0, istore

iblock:
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VLD1.P 8(R1), V16.D[0]
	VLD1.P 8(R2), V16.D[1]
	VLD1.P 8(R1), V17.D[0]
	VLD1.P 8(R2), V17.D[1]
	VLD1.P 8(R1), V18.D[0]
	VLD1.P 8(R2), V18.D[1]
	VLD1.P 8(R1), V19.D[0]
	VLD1.P 8(R2), V19.D[1]
	VLD1.P 8(R3), V20.D[0]
	VLD1.P 8(R4), V20.D[1]
	VLD1.P 8(R3), V21.D[0]
	VLD1.P 8(R4), V21.D[1]
	VLD1.P 8(R3), V22.D[0]
	VLD1.P 8(R4), V22.D[1]
	VLD1.P 8(R3), V23.D[0]
	VLD1.P 8(R4), V23.D[1]
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	SMMLA(0, 16, 24)
	SMMLA(1, 16, 25)
	SMMLA(2, 16, 26)
	SMMLA(3, 16, 27)
	SMMLA(4, 20, 24)
	SMMLA(5, 20, 25)
	SMMLA(6, 20, 26)
	SMMLA(7, 20, 27)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	SMMLA(0, 17, 24)
	SMMLA(1, 17, 25)
	SMMLA(2, 17, 26)
	SMMLA(3, 17, 27)
	SMMLA(4, 21, 24)
	SMMLA(5, 21, 25)
	SMMLA(6, 21, 26)
	SMMLA(7, 21, 27)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	SMMLA(0, 18, 24)
	SMMLA(1, 18, 25)
	SMMLA(2, 18, 26)
	SMMLA(3, 18, 27)
	SMMLA(4, 22, 24)
	SMMLA(5, 22, 25)
	SMMLA(6, 22, 26)
	SMMLA(7, 22, 27)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	SMMLA(0, 19, 24)
	SMMLA(1, 19, 25)
	SMMLA(2, 19, 26)
	SMMLA(3, 19, 27)
	SMMLA(4, 23, 24)
	SMMLA(5, 23, 25)
	SMMLA(6, 23, 26)
	SMMLA(7, 23, 27)
	VLD1.P 64(R5), [V24.S4, V25.S4, V26.S4, V27.S4]
	VLD1R (R1), [V28.S4]
	VLD1R (R2), [V29.S4]
	VZIP1 V29.D2, V28.D2, V30.D2
	FMUL4S(31, 30, 24)
	SCVTF4S(28, 0)
	FMLA4S(8, 28, 31)
	FMUL4S(31, 30, 25)
	SCVTF4S(28, 1)
	FMLA4S(9, 28, 31)
	FMUL4S(31, 30, 26)
	SCVTF4S(28, 2)
	FMLA4S(10, 28, 31)
	FMUL4S(31, 30, 27)
	SCVTF4S(28, 3)
	FMLA4S(11, 28, 31)
	VLD1R (R3), [V28.S4]
	VLD1R (R4), [V29.S4]
	VZIP1 V29.D2, V28.D2, V30.D2
	FMUL4S(31, 30, 24)
	SCVTF4S(28, 4)
	FMLA4S(12, 28, 31)
	FMUL4S(31, 30, 25)
	SCVTF4S(28, 5)
	FMLA4S(13, 28, 31)
	FMUL4S(31, 30, 26)
	SCVTF4S(28, 6)
	FMLA4S(14, 28, 31)
	FMUL4S(31, 30, 27)
	SCVTF4S(28, 7)
	FMLA4S(15, 28, 31)
	ADD  $8, R1, R1
	ADD  $8, R2, R2
	ADD  $8, R3, R3
	ADD  $8, R4, R4
	PFLINE
	SUBS $1, R0, R0
	BNE  iblock

istore:
	VZIP1 V9.D2, V8.D2, V16.D2
	VZIP1 V11.D2, V10.D2, V17.D2
	VZIP2 V9.D2, V8.D2, V18.D2
	VZIP2 V11.D2, V10.D2, V19.D2
	VST1 [V16.S4, V17.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V18.S4, V19.S4], (R6)
	ADD  R7, R6, R6
	VZIP1 V13.D2, V12.D2, V16.D2
	VZIP1 V15.D2, V14.D2, V17.D2
	VZIP2 V13.D2, V12.D2, V18.D2
	VZIP2 V15.D2, V14.D2, V19.D2
	VST1 [V16.S4, V17.S4], (R6)
	ADD  R7, R6, R6
	VST1 [V18.S4, V19.S4], (R6)
	ADD  R7, R6, R6
	RET

// ---------------------------------------------------------------------------
// quantQ8Asm: nb blocks of 32 floats into A blocks, exactly as quantBlockQ8:
// amax of |x| (FMAX: NaN wins, as with Go's max), d = amax/127 and
// id = 1/d (0 when d = 0) by true divisions, q = x*id rounded half away
// from zero (FCVTAS; NaN gives 0, overflow saturates) and clamped to
// [-127, 127], packed to bytes in order; -128*sum(q).

// func quantQ8Asm(dst *byte, x *float32, nb int)
TEXT ·quantQ8Asm(SB), NOSPLIT, $0-24
	MOVD  dst+0(FP), R0
	MOVD  x+8(FP), R1
	MOVD  nb+16(FP), R2
	MOVW  $127, R3
	VDUP  R3, V20.S4
	MOVW  $-127, R3
	VDUP  R3, V21.S4
	MOVW  $0x42fe0000, R3
	FMOVS R3, F22           // 127.0
	FMOVS $1.0, F23
	VEOR  V24.B16, V24.B16, V24.B16
	CBZ   R2, qdone

qloop:
	VLD1.P 64(R1), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R1), [V4.S4, V5.S4, V6.S4, V7.S4]
	FABS4S(8, 0)
	FABS4S(9, 1)
	FABS4S(10, 2)
	FABS4S(11, 3)
	FABS4S(12, 4)
	FABS4S(13, 5)
	FABS4S(14, 6)
	FABS4S(15, 7)
	FMAX4S(8, 8, 9)
	FMAX4S(10, 10, 11)
	FMAX4S(12, 12, 13)
	FMAX4S(14, 14, 15)
	FMAX4S(8, 8, 10)
	FMAX4S(12, 12, 14)
	FMAX4S(8, 8, 12)
	FMAXP4S(8, 8, 8)
	FMAXP4S(8, 8, 8)        // amax in lane 0
	FDIVS  F22, F8, F9      // d = amax / 127
	FMOVS  F9, 32(R0)
	FDIVS  F9, F23, F10     // 1/d
	FCMPS  F24, F9
	FCSELS EQ, F24, F10, F10 // 0 when d == 0
	FMULE(0, 0, 10, 0)
	FMULE(1, 1, 10, 0)
	FMULE(2, 2, 10, 0)
	FMULE(3, 3, 10, 0)
	FMULE(4, 4, 10, 0)
	FMULE(5, 5, 10, 0)
	FMULE(6, 6, 10, 0)
	FMULE(7, 7, 10, 0)
	FCVTAS4S(0, 0)
	FCVTAS4S(1, 1)
	FCVTAS4S(2, 2)
	FCVTAS4S(3, 3)
	FCVTAS4S(4, 4)
	FCVTAS4S(5, 5)
	FCVTAS4S(6, 6)
	FCVTAS4S(7, 7)
	SMIN4S(0, 0, 20)
	SMAX4S(0, 0, 21)
	SMIN4S(1, 1, 20)
	SMAX4S(1, 1, 21)
	SMIN4S(2, 2, 20)
	SMAX4S(2, 2, 21)
	SMIN4S(3, 3, 20)
	SMAX4S(3, 3, 21)
	SMIN4S(4, 4, 20)
	SMAX4S(4, 4, 21)
	SMIN4S(5, 5, 20)
	SMAX4S(5, 5, 21)
	SMIN4S(6, 6, 20)
	SMAX4S(6, 6, 21)
	SMIN4S(7, 7, 20)
	SMAX4S(7, 7, 21)
	VADD   V1.S4, V0.S4, V16.S4
	VADD   V3.S4, V2.S4, V17.S4
	VADD   V5.S4, V4.S4, V18.S4
	VADD   V7.S4, V6.S4, V19.S4
	VADD   V17.S4, V16.S4, V16.S4
	VADD   V19.S4, V18.S4, V18.S4
	VADD   V18.S4, V16.S4, V16.S4
	VADDV  V16.S4, V16
	VMOV   V16.S[0], R3
	NEG    R3, R3
	LSL    $7, R3, R3
	MOVW   R3, 36(R0)
	XTN4H(16, 0)
	XTN2_8H(16, 1)
	XTN4H(17, 2)
	XTN2_8H(17, 3)
	XTN4H(18, 4)
	XTN2_8H(18, 5)
	XTN4H(19, 6)
	XTN2_8H(19, 7)
	XTN8B(25, 16)
	XTN2_16B(25, 17)
	XTN8B(26, 18)
	XTN2_16B(26, 19)
	VST1   [V25.B16, V26.B16], (R0)
	ADD    $40, R0, R0
	SUBS   $1, R2, R2
	BNE    qloop

qdone:
	RET

// ---------------------------------------------------------------------------
// q8dotAsm: dotQ8's arithmetic: per block the exact int32 sum of each quad
// l (SMULL to int16, SADDLP and ADDP to int32), acc[l] += f32(s)*d rounded
// then added (FMUL, FADD: not fused), and the lanes summed as
// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).

// func q8dotAsm(xq *int8, xd *float32, w *byte, nb int) float32
TEXT ·q8dotAsm(SB), NOSPLIT, $0-36
	MOVD xq+0(FP), R0
	MOVD xd+8(FP), R1
	MOVD w+16(FP), R2
	MOVD nb+24(FP), R3
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	CBZ  R3, q8ddone

q8dloop:
	VLD1.P  32(R0), [V0.B16, V1.B16]
	VLD1    (R2), V2.H[0]
	ADD     $2, R2, R6
	VLD1    (R6), [V4.B16, V5.B16]
	ADD     $34, R2, R2
	FCVTSH(3, 2)
	FMOVS.P 4(R1), F6
	FMULS   F3, F6, F7      // d = dx * dw
	SMULL(8, 0, 4)
	SMULL2(9, 0, 4)
	SMULL(10, 1, 5)
	SMULL2(11, 1, 5)
	SADDLP8H(12, 8)
	SADDLP8H(13, 9)
	SADDLP8H(15, 10)
	SADDLP8H(16, 11)
	VADDP   V13.S4, V12.S4, V14.S4
	VADDP   V16.S4, V15.S4, V17.S4
	SCVTF4S(14, 14)
	SCVTF4S(17, 17)
	FMULE(14, 14, 7, 0)
	FMULE(17, 17, 7, 0)
	FADD4S(20, 20, 14)
	FADD4S(21, 21, 17)
	SUBS    $1, R3, R3
	BNE     q8dloop

q8ddone:
	FADD4S(22, 20, 21)
	VEXT    $8, V22.B16, V22.B16, V23.B16
	FADD4S(23, 22, 23)
	FADDP4S(23, 23, 23)
	FMOVS   F23, ret+32(FP)
	RET
