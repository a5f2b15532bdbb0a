//go:build amd64 && !purego

#include "textflag.h"

// Integer GEMM kernels for Q8_0 weights (see q8gemm.go for the layouts and
// the arithmetic every kernel reproduces bit for bit).
//
// An A block (40 bytes): 32 int8 q, f32 dx at +32, int32 -128*sum(q) at +36.
// A packed weight block (36*nr bytes): quad q (k = 4q..4q+3) of column c at
// 4*(q*nr + c), then the nr f32 scales dw at 32*nr.

// PFLINE prefetches the cache line at R11 and moves R11 to the next one,
// unless R11 is nil: each block iteration of a kernel fetches one line of
// the weights the next panel will pack (see gemmQ8).
#define PFLINE \
	TESTQ      R11, R11; \
	JZ         3(PC); \
	PREFETCHT0 (R11); \
	ADDQ       $64, R11

// ---------------------------------------------------------------------------
// q8gemmVNNI6x32: AVX-512 VNNI, a 6x32 tile.
//
// Z0..Z11 are the f32 accumulators (row r in Z(2r), Z(2r+1)), Z12..Z23 the
// int32 block sums. Per block the int32 sums start at the row's correction,
// then per quad: load 2x16 columns of unsigned weight bytes (Z24, Z25),
// broadcast each row's 4 activation bytes (Z26) and VPDPBUSD. After 8 quads
// the int32 sums are exact; convert, scale by dx*dw (Z30, Z31) and FMA.

#define VINIT(aaddr, i0, i1) \
	VPBROADCASTD aaddr, i0; \
	VPBROADCASTD aaddr, i1

#define VROW(aaddr, i0, i1) \
	VPBROADCASTD aaddr, Z26; \
	VPDPBUSD     Z26, Z24, i0; \
	VPDPBUSD     Z26, Z25, i1

#define VQUAD(ao, bo) \
	VMOVDQU32 bo(BX), Z24; \
	VMOVDQU32 bo+64(BX), Z25; \
	VROW(ao(SI), Z12, Z13); \
	VROW(ao(SI)(R8*1), Z14, Z15); \
	VROW(ao(SI)(R8*2), Z16, Z17); \
	VROW(ao(DI), Z18, Z19); \
	VROW(ao(DI)(R8*1), Z20, Z21); \
	VROW(ao(DI)(R8*2), Z22, Z23)

#define VEPI(aaddr, i0, i1, c0, c1) \
	VCVTDQ2PS   i0, i0; \
	VCVTDQ2PS   i1, i1; \
	VMULPS.BCST aaddr, Z28, Z30; \
	VMULPS.BCST aaddr, Z29, Z31; \
	VFMADD231PS Z30, i0, c0; \
	VFMADD231PS Z31, i1, c1

// func q8gemmVNNI6x32(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
TEXT ·q8gemmVNNI6x32(SB), NOSPLIT, $0-57
	MOVQ nb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R8*2), DI
	ADDQ R8, DI            // A rows 3-5
	LEAQ (DX)(R9*2), R10
	ADDQ R9, R10           // C rows 3-5
	MOVQ    pf+48(FP), R11
	MOVBLZX accum+56(FP), AX
	TESTL   AX, AX
	JNZ     vload
	VPXORD  Z0, Z0, Z0
	VMOVAPS Z0, Z1
	VMOVAPS Z0, Z2
	VMOVAPS Z0, Z3
	VMOVAPS Z0, Z4
	VMOVAPS Z0, Z5
	VMOVAPS Z0, Z6
	VMOVAPS Z0, Z7
	VMOVAPS Z0, Z8
	VMOVAPS Z0, Z9
	VMOVAPS Z0, Z10
	VMOVAPS Z0, Z11
	JMP     vstart

vload:
	VMOVUPS (DX), Z0
	VMOVUPS 64(DX), Z1
	VMOVUPS (DX)(R9*1), Z2
	VMOVUPS 64(DX)(R9*1), Z3
	VMOVUPS (DX)(R9*2), Z4
	VMOVUPS 64(DX)(R9*2), Z5
	VMOVUPS (R10), Z6
	VMOVUPS 64(R10), Z7
	VMOVUPS (R10)(R9*1), Z8
	VMOVUPS 64(R10)(R9*1), Z9
	VMOVUPS (R10)(R9*2), Z10
	VMOVUPS 64(R10)(R9*2), Z11

vstart:
	TESTQ CX, CX
	JZ    vstore

vblock:
	VINIT(36(SI), Z12, Z13)
	VINIT(36(SI)(R8*1), Z14, Z15)
	VINIT(36(SI)(R8*2), Z16, Z17)
	VINIT(36(DI), Z18, Z19)
	VINIT(36(DI)(R8*1), Z20, Z21)
	VINIT(36(DI)(R8*2), Z22, Z23)
	VQUAD(0, 0)
	VQUAD(4, 128)
	VQUAD(8, 256)
	VQUAD(12, 384)
	VQUAD(16, 512)
	VQUAD(20, 640)
	VQUAD(24, 768)
	VQUAD(28, 896)
	VMOVUPS 1024(BX), Z28
	VMOVUPS 1088(BX), Z29
	VEPI(32(SI), Z12, Z13, Z0, Z1)
	VEPI(32(SI)(R8*1), Z14, Z15, Z2, Z3)
	VEPI(32(SI)(R8*2), Z16, Z17, Z4, Z5)
	VEPI(32(DI), Z18, Z19, Z6, Z7)
	VEPI(32(DI)(R8*1), Z20, Z21, Z8, Z9)
	VEPI(32(DI)(R8*2), Z22, Z23, Z10, Z11)
	ADDQ $40, SI
	ADDQ $40, DI
	ADDQ $1152, BX
	PFLINE
	DECQ CX
	JNZ  vblock

vstore:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, (DX)(R9*1)
	VMOVUPS Z3, 64(DX)(R9*1)
	VMOVUPS Z4, (DX)(R9*2)
	VMOVUPS Z5, 64(DX)(R9*2)
	VMOVUPS Z6, (R10)
	VMOVUPS Z7, 64(R10)
	VMOVUPS Z8, (R10)(R9*1)
	VMOVUPS Z9, 64(R10)(R9*1)
	VMOVUPS Z10, (R10)(R9*2)
	VMOVUPS Z11, 64(R10)(R9*2)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// q8gemmAVXVNNI6x16: AVX-VNNI (VEX-encoded VPDPBUSD on ymm: Alder Lake and
// later cores without AVX-512), a 6x16 tile.
//
// Y0..Y11 are the int32 block sums (row r in Y(2r), Y(2r+1)), started at the
// row's correction; the f32 accumulators live in C (an L1-resident tile).
// Per quad: unsigned weight bytes of 2x8 columns in Y12, Y13, each row's 4
// activation bytes broadcast in Y14. The Go assembler only knows the EVEX
// form of VPDPBUSD (AVX512_VNNI + VL), so the VEX form is spelled in bytes:
// VEX.256.66.0F38.W0 50 /r, dst in ModRM.reg, u8 source in VEX.vvvv, s8
// source in ModRM.rm (registers Y0..Y15 only).

#define VNNIY(d, u, s) \
	BYTE $0xC4; \
	BYTE $((((d>>3)^1)<<7) | 0x40 | (((s>>3)^1)<<5) | 0x02); \
	BYTE $(((u^15)<<3) | 0x05); \
	BYTE $0x50; \
	BYTE $(0xC0 | ((d&7)<<3) | (s&7))

#define YINIT(aaddr, i0, i1) \
	VPBROADCASTD aaddr, i0; \
	VPBROADCASTD aaddr, i1

#define YROW(aaddr, n0, n1) \
	VPBROADCASTD aaddr, Y14; \
	VNNIY(n0, 12, 14); \
	VNNIY(n1, 13, 14)

#define YQUAD(ao, bo) \
	VMOVDQU bo(BX), Y12; \
	VMOVDQU bo+32(BX), Y13; \
	YROW(ao(SI), 0, 1); \
	YROW(ao(SI)(R8*1), 2, 3); \
	YROW(ao(SI)(R8*2), 4, 5); \
	YROW(ao(DI), 6, 7); \
	YROW(ao(DI)(R8*1), 8, 9); \
	YROW(ao(DI)(R8*2), 10, 11)

// YEPI: C row += f32(sums) * (dx*dw).
#define YEPI(aaddr, caddr0, caddr1, i0, i1) \
	VBROADCASTSS aaddr, Y14; \
	VMULPS       512(BX), Y14, Y15; \
	VCVTDQ2PS    i0, i0; \
	VFMADD213PS  caddr0, Y15, i0; \
	VMOVUPS      i0, caddr0; \
	VMULPS       544(BX), Y14, Y15; \
	VCVTDQ2PS    i1, i1; \
	VFMADD213PS  caddr1, Y15, i1; \
	VMOVUPS      i1, caddr1

// func q8gemmAVXVNNI6x16(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
TEXT ·q8gemmAVXVNNI6x16(SB), NOSPLIT, $0-57
	MOVQ nb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R8*2), DI
	ADDQ R8, DI            // A rows 3-5
	LEAQ (DX)(R9*2), R10
	ADDQ R9, R10           // C rows 3-5
	MOVQ    pf+48(FP), R11
	MOVBLZX accum+56(FP), AX
	TESTL   AX, AX
	JNZ     ystart
	VXORPS  Y0, Y0, Y0
	VMOVUPS Y0, (DX)
	VMOVUPS Y0, 32(DX)
	VMOVUPS Y0, (DX)(R9*1)
	VMOVUPS Y0, 32(DX)(R9*1)
	VMOVUPS Y0, (DX)(R9*2)
	VMOVUPS Y0, 32(DX)(R9*2)
	VMOVUPS Y0, (R10)
	VMOVUPS Y0, 32(R10)
	VMOVUPS Y0, (R10)(R9*1)
	VMOVUPS Y0, 32(R10)(R9*1)
	VMOVUPS Y0, (R10)(R9*2)
	VMOVUPS Y0, 32(R10)(R9*2)

ystart:
	TESTQ CX, CX
	JZ    ydone

yblock:
	YINIT(36(SI), Y0, Y1)
	YINIT(36(SI)(R8*1), Y2, Y3)
	YINIT(36(SI)(R8*2), Y4, Y5)
	YINIT(36(DI), Y6, Y7)
	YINIT(36(DI)(R8*1), Y8, Y9)
	YINIT(36(DI)(R8*2), Y10, Y11)
	YQUAD(0, 0)
	YQUAD(4, 64)
	YQUAD(8, 128)
	YQUAD(12, 192)
	YQUAD(16, 256)
	YQUAD(20, 320)
	YQUAD(24, 384)
	YQUAD(28, 448)
	YEPI(32(SI), (DX), 32(DX), Y0, Y1)
	YEPI(32(SI)(R8*1), (DX)(R9*1), 32(DX)(R9*1), Y2, Y3)
	YEPI(32(SI)(R8*2), (DX)(R9*2), 32(DX)(R9*2), Y4, Y5)
	YEPI(32(DI), (R10), 32(R10), Y6, Y7)
	YEPI(32(DI)(R8*1), (R10)(R9*1), 32(R10)(R9*1), Y8, Y9)
	YEPI(32(DI)(R8*2), (R10)(R9*2), 32(R10)(R9*2), Y10, Y11)
	ADDQ $40, SI
	ADDQ $40, DI
	ADDQ $576, BX
	PFLINE
	DECQ CX
	JNZ  yblock

ydone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// q8gemmAVX2x5x16: AVX2 without VNNI, a 5x16 tile, weights in the split
// layout (see q8gemm.go): per quad the unsigned |w| bytes of the 16 columns,
// then their sign masks m (0xff where w < 0), and per block the f32 scales
// and the int32 corrections sum(|w| where w < 0).
//
// x*w = |w| * (x XOR m) + |w|*[w < 0], and the pair sums of VPMADDUBSW
// (unsigned |w| <= 128 times signed x XOR m in [-128, 127]) lie in
// [-32768, 32512]: they never saturate. Per quad and row: broadcast the
// row's 4 activation bytes (Y13), XOR them with the masks (memory
// operands), VPMADDUBSW by |w| (Y10, Y11), widen-add the int16 pairs to
// int32 (VPMADDWD by int16 ones, Y12) and add: four instructions per 32
// multiply-adds, none of them the slow VPSIGNB (Zen 2/3 run it on the
// multiply pipes). Y0..Y9 are the int32 block sums (row r in Y(2r),
// Y(2r+1)), started at the corrections by the first quad; the f32
// accumulators live in C (an L1-resident tile). Zen 3 runs this at the
// rate it issues vector instructions (removing any of them speeds it up
// about in proportion, whichever pipe it uses), so the tile is as tall as
// the registers allow: 5 rows share each quad's weight loads, and the
// masks need no registers (measured: 4% faster than a 4x16 tile with the
// masks in registers).

#define XPROD(aaddr, bo) \
	VPBROADCASTD aaddr, Y13; \
	VPXOR        bo+64(BX), Y13, Y14; \
	VPXOR        bo+96(BX), Y13, Y15; \
	VPMADDUBSW   Y14, Y10, Y14; \
	VPMADDUBSW   Y15, Y11, Y15; \
	VPMADDWD     Y12, Y14, Y14; \
	VPMADDWD     Y12, Y15, Y15

#define XROW(aaddr, bo, i0, i1) \
	XPROD(aaddr, bo); \
	VPADDD Y14, i0, i0; \
	VPADDD Y15, i1, i1

// XROW0 is XROW for the first quad: the sums start at the corrections.
#define XROW0(aaddr, i0, i1) \
	XPROD(aaddr, 0); \
	VPADDD 1088(BX), Y14, i0; \
	VPADDD 1120(BX), Y15, i1

#define XQUAD0 \
	VMOVDQU (BX), Y10; \
	VMOVDQU 32(BX), Y11; \
	XROW0((SI), Y0, Y1); \
	XROW0((SI)(R8*1), Y2, Y3); \
	XROW0((SI)(R8*2), Y4, Y5); \
	XROW0((DI), Y6, Y7); \
	XROW0((DI)(R8*1), Y8, Y9)

#define XQUAD(ao, bo) \
	VMOVDQU bo(BX), Y10; \
	VMOVDQU bo+32(BX), Y11; \
	XROW(ao(SI), bo, Y0, Y1); \
	XROW(ao(SI)(R8*1), bo, Y2, Y3); \
	XROW(ao(SI)(R8*2), bo, Y4, Y5); \
	XROW(ao(DI), bo, Y6, Y7); \
	XROW(ao(DI)(R8*1), bo, Y8, Y9)

// XEPI: C row += f32(sums) * (dx*dw).
#define XEPI(aaddr, caddr0, caddr1, i0, i1) \
	VBROADCASTSS aaddr, Y13; \
	VCVTDQ2PS    i0, i0; \
	VCVTDQ2PS    i1, i1; \
	VMULPS       1024(BX), Y13, Y14; \
	VMULPS       1056(BX), Y13, Y15; \
	VFMADD213PS  caddr0, Y14, i0; \
	VFMADD213PS  caddr1, Y15, i1; \
	VMOVUPS      i0, caddr0; \
	VMOVUPS      i1, caddr1

// func q8gemmAVX2x5x16(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)
TEXT ·q8gemmAVX2x5x16(SB), NOSPLIT, $0-57
	MOVQ nb+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), BX
	MOVQ c+32(FP), DX
	MOVQ ldc+40(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R8*2), DI
	ADDQ R8, DI            // A row 3
	LEAQ (DX)(R9*2), R10
	ADDQ R9, R10           // C row 3
	MOVQ    pf+48(FP), R11
	MOVBLZX accum+56(FP), AX
	TESTL   AX, AX
	JNZ     ystart
	VXORPS  Y0, Y0, Y0
	VMOVUPS Y0, (DX)
	VMOVUPS Y0, 32(DX)
	VMOVUPS Y0, (DX)(R9*1)
	VMOVUPS Y0, 32(DX)(R9*1)
	VMOVUPS Y0, (DX)(R9*2)
	VMOVUPS Y0, 32(DX)(R9*2)
	VMOVUPS Y0, (R10)
	VMOVUPS Y0, 32(R10)
	VMOVUPS Y0, (R10)(R9*1)
	VMOVUPS Y0, 32(R10)(R9*1)

ystart:
	VPCMPEQW Y12, Y12, Y12
	VPSRLW   $15, Y12, Y12 // int16 ones
	TESTQ    CX, CX
	JZ       ydone

yblock:
	XQUAD0
	XQUAD(4, 128)
	XQUAD(8, 256)
	XQUAD(12, 384)
	XQUAD(16, 512)
	XQUAD(20, 640)
	XQUAD(24, 768)
	XQUAD(28, 896)
	XEPI(32(SI), (DX), 32(DX), Y0, Y1)
	XEPI(32(SI)(R8*1), (DX)(R9*1), 32(DX)(R9*1), Y2, Y3)
	XEPI(32(SI)(R8*2), (DX)(R9*2), 32(DX)(R9*2), Y4, Y5)
	XEPI(32(DI), (R10), 32(R10), Y6, Y7)
	XEPI(32(DI)(R8*1), (R10)(R9*1), 32(R10)(R9*1), Y8, Y9)
	ADDQ $40, SI
	ADDQ $40, DI
	ADDQ $1152, BX
	PFLINE
	DECQ CX
	JNZ  yblock

ydone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// packQ8Asm: nr (a multiple of 8) weight rows x kb blocks into a panel.
//
// Per 8 rows and block: load the 8 rows' 32 quantized bytes as 8x8 dwords,
// transpose (column q of the 8x8 block in Y(8+q): quad q of the 8 columns),
// flip the bytes and store each quad row; then gather the 8 f16 scales,
// widen them and store.

#define QTRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8; \
	VUNPCKHPS  Y1, Y0, Y9; \
	VUNPCKLPS  Y3, Y2, Y10; \
	VUNPCKHPS  Y3, Y2, Y11; \
	VUNPCKLPS  Y5, Y4, Y12; \
	VUNPCKHPS  Y5, Y4, Y13; \
	VUNPCKLPS  Y7, Y6, Y14; \
	VUNPCKHPS  Y7, Y6, Y15; \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8; \
	VPERM2F128 $0x20, Y5, Y1, Y9; \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// func packQ8Asm(dst *byte, src *byte, rb int, kb int, nr int, flip uint32)
TEXT ·packQ8Asm(SB), NOSPLIT, $0-44
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rb+16(FP), R8
	MOVQ nr+32(FP), R9
	SHLQ $2, R9            // bytes per quad row of the panel
	LEAQ (R9)(R9*8), R10   // bytes per packed block: 36*nr
	LEAQ (R8)(R8*2), R11   // 3 source rows
	MOVQ nr+32(FP), BX
	SHRQ $3, BX            // groups of 8 columns
	JZ   pdone
	CMPQ kb+24(FP), $0
	JLE  pdone

pgroup:
	MOVQ SI, R12           // block b of the group's first row
	MOVQ DI, DX            // its place in the panel
	MOVQ kb+24(FP), CX

pblock:
	LEAQ         (R12)(R11*1), R13
	LEAQ         (R13)(R11*1), R14
	VMOVDQU      2(R12), Y0
	VMOVDQU      2(R12)(R8*1), Y1
	VMOVDQU      2(R12)(R8*2), Y2
	VMOVDQU      2(R13), Y3
	VMOVDQU      2(R13)(R8*1), Y4
	VMOVDQU      2(R13)(R8*2), Y5
	VMOVDQU      2(R14), Y6
	VMOVDQU      2(R14)(R8*1), Y7
	QTRANSPOSE8
	MOVL         flip+40(FP), AX
	VMOVD        AX, X0
	VPBROADCASTD X0, Y0
	VPXOR        Y0, Y8, Y8
	VPXOR        Y0, Y9, Y9
	VPXOR        Y0, Y10, Y10
	VPXOR        Y0, Y11, Y11
	VPXOR        Y0, Y12, Y12
	VPXOR        Y0, Y13, Y13
	VPXOR        Y0, Y14, Y14
	VPXOR        Y0, Y15, Y15
	VMOVDQU      Y8, (DX)
	VMOVDQU      Y9, (DX)(R9*1)
	VMOVDQU      Y10, (DX)(R9*2)
	LEAQ         (DX)(R9*2), AX
	ADDQ         R9, AX
	VMOVDQU      Y11, (AX)
	VMOVDQU      Y12, (AX)(R9*1)
	VMOVDQU      Y13, (AX)(R9*2)
	LEAQ         (AX)(R9*2), AX
	ADDQ         R9, AX
	VMOVDQU      Y14, (AX)
	VMOVDQU      Y15, (AX)(R9*1)
	VPINSRW      $0, (R12), X0, X0
	VPINSRW      $1, (R12)(R8*1), X0, X0
	VPINSRW      $2, (R12)(R8*2), X0, X0
	VPINSRW      $3, (R13), X0, X0
	VPINSRW      $4, (R13)(R8*1), X0, X0
	VPINSRW      $5, (R13)(R8*2), X0, X0
	VPINSRW      $6, (R14), X0, X0
	VPINSRW      $7, (R14)(R8*1), X0, X0
	VCVTPH2PS    X0, Y0
	VMOVUPS      Y0, (DX)(R9*8)
	ADDQ         $34, R12
	ADDQ         R10, DX
	DECQ         CX
	JNZ          pblock
	LEAQ         (SI)(R8*8), SI
	ADDQ         $32, DI
	DECQ         BX
	JNZ          pgroup

pdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// packQ8SplitAsm: nr (a multiple of 8) weight rows x kb blocks into a panel
// of the split layout: per 8 rows and block, transpose as packQ8Asm does,
// then store each quad's |w| and sign masks, the sum of |w| over the
// negative weights of each column (VPMADDUBSW by byte ones, VPMADDWD by
// int16 ones) and the 8 widened scales.

// SPLIT stores |w| and the sign masks of one quad (in q) at AX and AX+R9,
// adds sum(|w| where w < 0) per column to Y3, and moves AX to the next quad.
#define SPLIT(q) \
	VPABSB     q, Y4; \
	VPCMPGTB   q, Y0, Y5; \
	VMOVDQU    Y4, (AX); \
	VMOVDQU    Y5, (AX)(R9*1); \
	VPAND      Y5, Y4, Y6; \
	VPMADDUBSW Y1, Y6, Y6; \
	VPMADDWD   Y2, Y6, Y6; \
	VPADDD     Y6, Y3, Y3; \
	LEAQ       (AX)(R9*2), AX

// func packQ8SplitAsm(dst *byte, src *byte, rb int, kb int, nr int)
TEXT ·packQ8SplitAsm(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ rb+16(FP), R8
	MOVQ nr+32(FP), R9
	SHLQ $2, R9            // bytes of one quad's |w| (or masks) of the panel
	LEAQ (R9)(R9*8), R10
	SHLQ $1, R10           // bytes per packed block: 72*nr
	LEAQ (R8)(R8*2), R11   // 3 source rows
	MOVQ nr+32(FP), BX
	SHRQ $3, BX            // groups of 8 columns
	JZ   sdone
	CMPQ kb+24(FP), $0
	JLE  sdone

sgroup:
	MOVQ SI, R12           // block b of the group's first row
	MOVQ DI, DX            // its place in the panel
	MOVQ kb+24(FP), CX

sblock:
	LEAQ     (R12)(R11*1), R13
	LEAQ     (R13)(R11*1), R14
	VMOVDQU  2(R12), Y0
	VMOVDQU  2(R12)(R8*1), Y1
	VMOVDQU  2(R12)(R8*2), Y2
	VMOVDQU  2(R13), Y3
	VMOVDQU  2(R13)(R8*1), Y4
	VMOVDQU  2(R13)(R8*2), Y5
	VMOVDQU  2(R14), Y6
	VMOVDQU  2(R14)(R8*1), Y7
	QTRANSPOSE8
	VPXOR    Y0, Y0, Y0    // zero
	VPCMPEQB Y1, Y1, Y1
	VPSRLW   $15, Y1, Y2   // int16 ones
	VPABSB   Y1, Y1        // byte ones
	VPXOR    Y3, Y3, Y3    // corrections
	MOVQ     DX, AX
	SPLIT(Y8)
	SPLIT(Y9)
	SPLIT(Y10)
	SPLIT(Y11)
	SPLIT(Y12)
	SPLIT(Y13)
	SPLIT(Y14)
	SPLIT(Y15)
	VMOVDQU   Y3, (AX)(R9*1) // AX is past the quads: the scales, then the corrections
	VPINSRW   $0, (R12), X0, X0
	VPINSRW   $1, (R12)(R8*1), X0, X0
	VPINSRW   $2, (R12)(R8*2), X0, X0
	VPINSRW   $3, (R13), X0, X0
	VPINSRW   $4, (R13)(R8*1), X0, X0
	VPINSRW   $5, (R13)(R8*2), X0, X0
	VPINSRW   $6, (R14), X0, X0
	VPINSRW   $7, (R14)(R8*1), X0, X0
	VCVTPH2PS X0, Y0
	VMOVUPS   Y0, (AX)
	ADDQ      $34, R12
	ADDQ      R10, DX
	DECQ      CX
	JNZ       sblock
	LEAQ      (SI)(R8*8), SI
	ADDQ      $32, DI
	DECQ      BX
	JNZ       sgroup

sdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// quantQ8Asm: nb blocks of 32 floats into A blocks, exactly as quantBlockQ8.
//
// amax by an unsigned integer max of |x|'s bits (ordered like the floats,
// and NaN wins, as with Go's max); d = amax/127 and id = 1/d (0 when d = 0)
// by true divisions; q = round half away from zero of x*id, computed as
// t = trunc(v), t += copysign(1, v) when |v - t| >= 0.5 (exact), NaN -> 0,
// clamped to [-127, 127]; packed to bytes in order; -128*sum(q).

DATA q8perm<>+0(SB)/4, $0
DATA q8perm<>+4(SB)/4, $4
DATA q8perm<>+8(SB)/4, $1
DATA q8perm<>+12(SB)/4, $5
DATA q8perm<>+16(SB)/4, $2
DATA q8perm<>+20(SB)/4, $6
DATA q8perm<>+24(SB)/4, $3
DATA q8perm<>+28(SB)/4, $7
GLOBL q8perm<>(SB), RODATA|NOPTR, $32

#define QROUND(v, t) \
	VROUNDPS   $3, v, t; \
	VSUBPS     t, v, Y8; \
	VANDPS     Y15, Y8, Y8; \
	VCMPPS     $0x1D, Y14, Y8, Y8; \
	VANDPS     Y13, Y8, Y8; \
	VANDPS     Y11, v, Y9; \
	VORPS      Y9, Y8, Y8; \
	VADDPS     Y8, t, t; \
	VCMPPS     $7, t, t, Y8; \
	VANDPS     Y8, t, t; \
	VMINPS     Y12, t, t; \
	VMAXPS     Y10, t, t; \
	VCVTTPS2DQ t, t

// func quantQ8Asm(dst *byte, x *float32, nb int)
TEXT ·quantQ8Asm(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         nb+16(FP), CX
	VPCMPEQD     Y15, Y15, Y15
	VPSLLD       $31, Y15, Y11 // sign bits
	VPSRLD       $1, Y15, Y15  // |x| mask
	MOVL         $0x3f000000, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14      // 0.5
	MOVL         $0x3f800000, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13      // 1
	MOVL         $0x42fe0000, AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12      // 127
	VXORPS       Y11, Y12, Y10 // -127
	TESTQ        CX, CX
	JZ           qdone

qloop:
	VMOVUPS      (SI), Y0
	VMOVUPS      32(SI), Y1
	VMOVUPS      64(SI), Y2
	VMOVUPS      96(SI), Y3
	VANDPS       Y15, Y0, Y4
	VANDPS       Y15, Y1, Y5
	VANDPS       Y15, Y2, Y6
	VANDPS       Y15, Y3, Y7
	VPMAXUD      Y5, Y4, Y4
	VPMAXUD      Y7, Y6, Y6
	VPMAXUD      Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPMAXUD      X5, X4, X4
	VPSHUFD      $0x4E, X4, X5
	VPMAXUD      X5, X4, X4
	VPSHUFD      $0xB1, X4, X5
	VPMAXUD      X5, X4, X4    // amax in every lane
	VDIVSS       X12, X4, X5   // d = amax / 127
	VMOVSS       X5, 32(DI)
	VDIVSS       X5, X13, X6   // 1/d
	VXORPS       X7, X7, X7
	VCMPSS       $4, X7, X5, X7 // d != 0 (or NaN)
	VANDPS       X7, X6, X6
	VBROADCASTSS X6, Y6        // id
	VMULPS       Y6, Y0, Y0
	VMULPS       Y6, Y1, Y1
	VMULPS       Y6, Y2, Y2
	VMULPS       Y6, Y3, Y3
	QROUND(Y0, Y4)
	QROUND(Y1, Y5)
	QROUND(Y2, Y6)
	QROUND(Y3, Y7)
	VPADDD       Y5, Y4, Y8
	VPADDD       Y7, Y6, Y9
	VPADDD       Y9, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0x4E, X8, X9
	VPADDD       X9, X8, X8
	VPSHUFD      $0xB1, X8, X9
	VPADDD       X9, X8, X8
	VMOVD        X8, AX
	NEGL         AX
	SHLL         $7, AX
	MOVL         AX, 36(DI)
	VPACKSSDW    Y5, Y4, Y4
	VPACKSSDW    Y7, Y6, Y6
	VPACKSSWB    Y6, Y4, Y4
	VMOVDQU      q8perm<>(SB), Y8
	VPERMD       Y4, Y8, Y4
	VMOVDQU      Y4, (DI)
	ADDQ         $128, SI
	ADDQ         $40, DI
	DECQ         CX
	JNZ          qloop

qdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func prefetchAsm(p *byte, n int)
// PREFETCHT0 every 64-byte line of [p, p+n).
TEXT ·prefetchAsm(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ADDQ SI, CX
	ANDQ $-64, SI

pfloop:
	CMPQ       SI, CX
	JAE        pfdone
	PREFETCHT0 (SI)
	ADDQ       $64, SI
	JMP        pfloop

pfdone:
	RET
