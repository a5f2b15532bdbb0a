//go:build amd64 && !purego

#include "textflag.h"

// ---------------------------------------------------------------------------
// sgemm6x16: the f32 micro-kernel.
//
// Y0..Y11 hold the 6x16 tile of C (row r in Y(2r), Y(2r+1)); each depth step
// loads one 16-wide row of the packed panel into Y12/Y13, broadcasts the six
// A values of that column (rows 0-2 from SI, rows 3-5 from DI = SI + 3*lda)
// and issues 12 FMAs. Unrolled 4x, prefetching like sgemm12x32.

#define FMA_ROW(aaddr, acc0, acc1, t) \
	VBROADCASTSS aaddr, t; \
	VFMADD231PS  Y12, t, acc0; \
	VFMADD231PS  Y13, t, acc1

#define STEP(ao, bo) \
	VMOVUPS bo(BX), Y12; \
	VMOVUPS bo+32(BX), Y13; \
	FMA_ROW(ao(SI), Y0, Y1, Y14); \
	FMA_ROW(ao(SI)(R8*1), Y2, Y3, Y15); \
	FMA_ROW(ao(SI)(R8*2), Y4, Y5, Y14); \
	FMA_ROW(ao(DI), Y6, Y7, Y15); \
	FMA_ROW(ao(DI)(R8*1), Y8, Y9, Y14); \
	FMA_ROW(ao(DI)(R8*2), Y10, Y11, Y15)

// func sgemm6x16(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)
TEXT ·sgemm6x16(SB), NOSPLIT, $0-73
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R8
	MOVQ b+24(FP), BX
	MOVQ pf+48(FP), R13
	MOVQ pfld+56(FP), R14
	MOVQ pfn+64(FP), DX
	TESTQ R13, R13
	JNZ  2(PC)
	XORL DX, DX
	SHLQ $2, R8
	LEAQ (SI)(R8*2), DI
	ADDQ R8, DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ CX, AX
	SHRQ $2, AX
	JZ   tail

loop4:
	TESTQ      DX, DX
	JZ         pfdone4
	PREFETCHT1 (R13)
	PREFETCHT1 (R13)(R14*1)
	ADDQ       $64, R13
	DECQ       DX

pfdone4:
	STEP(0, 0)
	STEP(4, 64)
	STEP(8, 128)
	STEP(12, 192)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $256, BX
	DECQ AX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   done

loop1:
	STEP(0, 0)
	ADDQ $4, SI
	ADDQ $4, DI
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

done:
	MOVQ    c+32(FP), DX
	MOVQ    ldc+40(FP), R9
	SHLQ    $2, R9
	LEAQ    (DX)(R9*2), DI
	ADDQ    R9, DI
	MOVBLZX accum+72(FP), AX
	TESTL   AX, AX
	JZ      store
	VADDPS  (DX), Y0, Y0
	VADDPS  32(DX), Y1, Y1
	VADDPS  (DX)(R9*1), Y2, Y2
	VADDPS  32(DX)(R9*1), Y3, Y3
	VADDPS  (DX)(R9*2), Y4, Y4
	VADDPS  32(DX)(R9*2), Y5, Y5
	VADDPS  (DI), Y6, Y6
	VADDPS  32(DI), Y7, Y7
	VADDPS  (DI)(R9*1), Y8, Y8
	VADDPS  32(DI)(R9*1), Y9, Y9
	VADDPS  (DI)(R9*2), Y10, Y10
	VADDPS  32(DI)(R9*2), Y11, Y11

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, (DX)(R9*1)
	VMOVUPS Y3, 32(DX)(R9*1)
	VMOVUPS Y4, (DX)(R9*2)
	VMOVUPS Y5, 32(DX)(R9*2)
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	VMOVUPS Y8, (DI)(R9*1)
	VMOVUPS Y9, 32(DI)(R9*1)
	VMOVUPS Y10, (DI)(R9*2)
	VMOVUPS Y11, 32(DI)(R9*2)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// packNTAsm: transpose a panel of rows into depth-major order.
//
// Per 8 columns and each group of 8 rows: load an 8x8 block into Y0..Y7,
// transpose it with unpack/shuffle/permute into Y8..Y15 (column q of the
// block in Y(8+q)) and store column q at packed step q (+32 bytes a group).

#define TRANSPOSE8 \
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

// LOAD8 loads 8 floats from each of 8 rows: base, base+ld, base+2ld from
// p0; base+3ld.. from p1; base+6ld, base+7ld from p2 (ld in R8).
#define LOAD8(p0, p1, p2) \
	VMOVUPS (p0), Y0; \
	VMOVUPS (p0)(R8*1), Y1; \
	VMOVUPS (p0)(R8*2), Y2; \
	VMOVUPS (p1), Y3; \
	VMOVUPS (p1)(R8*1), Y4; \
	VMOVUPS (p1)(R8*2), Y5; \
	VMOVUPS (p2), Y6; \
	VMOVUPS (p2)(R8*1), Y7

// func packNTAsm(dst *float32, src *float32, ld int, kc8 int, nr int)
// nr (a multiple of 8) rows of src (stride ld elements) over depth kc8 (a
// multiple of 8) into dst as kc8 groups of nr.
TEXT ·packNTAsm(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	MOVQ kc8+24(FP), CX
	MOVQ nr+32(FP), R9
	SHLQ $2, R8
	SHLQ $2, R9            // bytes per packed depth step
	LEAQ (R8)(R8*2), R10   // 3 source rows
	LEAQ (R9)(R9*2), R11   // 3 packed steps
	SHRQ $3, CX
	JZ   packdone

packloop:
	MOVQ SI, R12           // first source row of the group
	MOVQ DI, DX            // its place in the packed step
	MOVQ nr+32(FP), BX
	SHRQ $3, BX

packgroup:
	LEAQ    (R12)(R10*1), R13
	LEAQ    (R13)(R10*1), R14
	LOAD8(R12, R13, R14)
	TRANSPOSE8
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, (DX)(R9*1)
	VMOVUPS Y10, (DX)(R9*2)
	LEAQ    (DX)(R11*1), AX
	VMOVUPS Y11, (AX)
	VMOVUPS Y12, (AX)(R9*1)
	VMOVUPS Y13, (AX)(R9*2)
	ADDQ    R11, AX
	VMOVUPS Y14, (AX)
	VMOVUPS Y15, (AX)(R9*1)
	LEAQ    (R12)(R8*8), R12
	ADDQ    $32, DX
	DECQ    BX
	JNZ     packgroup
	ADDQ    $32, SI
	LEAQ    (DI)(R9*8), DI
	DECQ    CX
	JNZ     packloop

packdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func cvtF16Asm(dst *float32, src *byte, n int)   // n % 8 == 0
TEXT ·cvtF16Asm(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   cvtdone

cvtloop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       cvtloop

cvtdone:
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func dequantQ8Asm(dst *float32, src *byte, nb int)
// Per block: broadcast the f16 scale, widen it; sign-extend 4x8 int8 to
// int32, convert, multiply, store.
TEXT ·dequantQ8Asm(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX
	TESTQ CX, CX
	JZ   dqdone

dqloop:
	VPBROADCASTW (SI), X4
	VCVTPH2PS    X4, Y4
	VPMOVSXBD    2(SI), Y0
	VPMOVSXBD    10(SI), Y1
	VPMOVSXBD    18(SI), Y2
	VPMOVSXBD    26(SI), Y3
	VCVTDQ2PS    Y0, Y0
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VCVTDQ2PS    Y3, Y3
	VMULPS       Y4, Y0, Y0
	VMULPS       Y4, Y1, Y1
	VMULPS       Y4, Y2, Y2
	VMULPS       Y4, Y3, Y3
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $34, SI
	ADDQ         $128, DI
	DECQ         CX
	JNZ          dqloop

dqdone:
	VZEROUPPER
	RET

// HSUM8 reduces Y0 to its lane sum in X0:
// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)). Clobbers X1.
#define HSUM8 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// ---------------------------------------------------------------------------
// func sdotAsm(x *float32, w *float32, n int) float32   // n % 8 == 0
// Four accumulators over 32 elements hide the FMA latency.
TEXT ·sdotAsm(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   w+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, AX
	SHRQ   $5, AX
	JZ     sdot8

sdot32:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	DECQ        AX
	JNZ         sdot32

sdot8:
	ANDQ $31, CX
	SHRQ $3, CX
	JZ   sdotsum

sdot8loop:
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         sdot8loop

sdotsum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM8
	MOVSS  X0, ret+24(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func q8dotAsm(xq *int8, xd *float32, w *byte, nb int) float32
//
// Per block: |w| and x*sign(w) make VPMADDUBSW (unsigned x signed bytes)
// usable for a signed product; |w| <= 128 and |x| <= 127 keep the int16
// pair sums below 32767, so nothing saturates. VPMADDWD with ones gives 8
// exact int32 lane sums (bytes 4l..4l+3), converted and scaled by
// d = xd*wd and added (rounded multiply, then add: as the Go reference).
TEXT ·q8dotAsm(SB), NOSPLIT, $0-36
	MOVQ       xq+0(FP), SI
	MOVQ       xd+8(FP), DI
	MOVQ       w+16(FP), DX
	MOVQ       nb+24(FP), CX
	VPCMPEQW   Y15, Y15, Y15
	VPSRLW     $15, Y15, Y15   // int16 ones
	VXORPS     Y0, Y0, Y0
	TESTQ      CX, CX
	JZ         q8sum

q8loop:
	VMOVDQU      2(DX), Y1
	VMOVDQU      (SI), Y2
	VPSIGNB      Y1, Y1, Y3    // |w|
	VPSIGNB      Y1, Y2, Y2    // x * sign(w)
	VPMADDUBSW   Y2, Y3, Y2
	VPMADDWD     Y15, Y2, Y2
	VCVTDQ2PS    Y2, Y2
	VPBROADCASTW (DX), X4
	VCVTPH2PS    X4, Y4
	VBROADCASTSS (DI), Y5
	VMULPS       Y4, Y5, Y4    // d = xd * wd
	VMULPS       Y4, Y2, Y2
	VADDPS       Y2, Y0, Y0
	ADDQ         $34, DX
	ADDQ         $32, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          q8loop

q8sum:
	HSUM8
	MOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func q8dotRowsAsm(xq *int8, ldq int, xdt *float32, w *byte, nb int, rows int, out *float32)
//
// q8dotAsm for rows (2..8) activation rows (xq rows ldq bytes apart; their
// block scales interleaved, xdt[8b+r]) against one weight row, read once:
// the same arithmetic per row, so out[r] is bit-identical to q8dotAsm of
// row r. Per block, one multiply gives every row's d = xd*wd (spilled to
// the frame, broadcast per row); Y0..Y7 are the rows' lane sums; row r's
// activations are at xq + r*ldq, from the bases SI (rows 0-2), R9 (3-5)
// and R12 (6, 7). One loop per row count: no branch per row.
#define Q8ROW(xaddr, daddr, acc) \
	VMOVDQU      xaddr, Y11; \
	VPSIGNB      Y8, Y11, Y11; \
	VPMADDUBSW   Y11, Y9, Y11; \
	VPMADDWD     Y15, Y11, Y11; \
	VCVTDQ2PS    Y11, Y11; \
	VBROADCASTSS daddr, Y13; \
	VMULPS       Y13, Y11, Y11; \
	VADDPS       Y11, acc, acc

// Q8BLOCK loads a weight block: w in Y8, |w| in Y9, d of every row in the
// frame.
#define Q8BLOCK \
	VMOVDQU      2(DX), Y8; \
	VPABSB       Y8, Y9; \
	VPBROADCASTW (DX), X10; \
	VCVTPH2PS    X10, Y10; \
	VMULPS       (DI), Y10, Y12; \
	VMOVUPS      Y12, d-32(SP)

#define Q8NEXT \
	ADDQ $34, DX; \
	ADDQ $32, SI; \
	ADDQ $32, R9; \
	ADDQ $32, R12; \
	ADDQ $32, DI; \
	DECQ CX

// Q8OUT is HSUM8 of acc (its low half xacc) into out[off/4].
#define Q8OUT(acc, xacc, off) \
	VEXTRACTF128 $1, acc, X14; \
	VADDPS       X14, xacc, X14; \
	VMOVHLPS     X14, X14, X15; \
	VADDPS       X15, X14, X14; \
	VMOVSHDUP    X14, X15; \
	VADDSS       X15, X14, X14; \
	MOVSS        X14, off(R8)

TEXT ·q8dotRowsAsm(SB), NOSPLIT, $32-56
	MOVQ     xq+0(FP), SI
	MOVQ     ldq+8(FP), AX
	MOVQ     xdt+16(FP), DI
	MOVQ     w+24(FP), DX
	MOVQ     nb+32(FP), CX
	MOVQ     rows+40(FP), R11
	MOVQ     out+48(FP), R8
	LEAQ     (SI)(AX*2), R9
	ADDQ     AX, R9          // xq row 3
	LEAQ     (R9)(AX*2), R12
	ADDQ     AX, R12         // xq row 6
	VPCMPEQW Y15, Y15, Y15
	VPSRLW   $15, Y15, Y15   // int16 ones
	VXORPS   Y0, Y0, Y0
	VXORPS   Y1, Y1, Y1
	VXORPS   Y2, Y2, Y2
	VXORPS   Y3, Y3, Y3
	VXORPS   Y4, Y4, Y4
	VXORPS   Y5, Y5, Y5
	VXORPS   Y6, Y6, Y6
	VXORPS   Y7, Y7, Y7
	TESTQ    CX, CX
	JZ       q8rsum
	CMPQ     R11, $2
	JEQ      q8r2
	CMPQ     R11, $3
	JEQ      q8r3
	CMPQ     R11, $4
	JEQ      q8r4
	CMPQ     R11, $5
	JEQ      q8r5
	CMPQ     R11, $6
	JEQ      q8r6
	CMPQ     R11, $7
	JEQ      q8r7
	CMPQ     R11, $8
	JEQ      q8r8
	JMP      q8rsum

q8r2:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8NEXT
	JNZ q8r2
	JMP q8rsum

q8r3:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8ROW((SI)(AX*2), d-24(SP), Y2)
	Q8NEXT
	JNZ q8r3
	JMP q8rsum

q8r4:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8ROW((SI)(AX*2), d-24(SP), Y2)
	Q8ROW((R9), d-20(SP), Y3)
	Q8NEXT
	JNZ q8r4
	JMP q8rsum

q8r5:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8ROW((SI)(AX*2), d-24(SP), Y2)
	Q8ROW((R9), d-20(SP), Y3)
	Q8ROW((R9)(AX*1), d-16(SP), Y4)
	Q8NEXT
	JNZ q8r5
	JMP q8rsum

q8r6:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8ROW((SI)(AX*2), d-24(SP), Y2)
	Q8ROW((R9), d-20(SP), Y3)
	Q8ROW((R9)(AX*1), d-16(SP), Y4)
	Q8ROW((R9)(AX*2), d-12(SP), Y5)
	Q8NEXT
	JNZ q8r6
	JMP q8rsum

q8r7:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8ROW((SI)(AX*2), d-24(SP), Y2)
	Q8ROW((R9), d-20(SP), Y3)
	Q8ROW((R9)(AX*1), d-16(SP), Y4)
	Q8ROW((R9)(AX*2), d-12(SP), Y5)
	Q8ROW((R12), d-8(SP), Y6)
	Q8NEXT
	JNZ q8r7
	JMP q8rsum

q8r8:
	Q8BLOCK
	Q8ROW((SI), d-32(SP), Y0)
	Q8ROW((SI)(AX*1), d-28(SP), Y1)
	Q8ROW((SI)(AX*2), d-24(SP), Y2)
	Q8ROW((R9), d-20(SP), Y3)
	Q8ROW((R9)(AX*1), d-16(SP), Y4)
	Q8ROW((R9)(AX*2), d-12(SP), Y5)
	Q8ROW((R12), d-8(SP), Y6)
	Q8ROW((R12)(AX*1), d-4(SP), Y7)
	Q8NEXT
	JNZ q8r8
	JMP q8rsum

q8rsum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 16)
	Q8OUT(Y5, X5, 20)
	Q8OUT(Y6, X6, 24)
	Q8OUT(Y7, X7, 28)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// func hdotTileAsm(x *float32, ldx int, w *byte, ldw int, n int, rows int, cols int, out *float32)
//
// The f16 GEMV kernel: rows x cols dot products of rows of x (ldx bytes
// apart) with f16 weight rows (ldw bytes apart) over n (a multiple of 8)
// elements, into out[8r+c]. Each weight chunk of 8 is widened once for all
// rows, and each chunk of x is read from L2 once for all cols. Every
// product has one 8-lane accumulator (acc += x*w by FMA, chunk after
// chunk), then HSUM8: the same arithmetic whatever the tile, so a row's
// result does not depend on how many rows or columns are multiplied at
// once. rows*cols + cols <= 16 (accumulators and widened weights in
// registers); one loop per tile shape. Row r's elements are at x + r*ldx
// from the bases SI, R9, R12, column c's weights at w + c*ldw from DI,
// R10, R13.
TEXT ·hdotTileAsm(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ ldx+8(FP), AX
	MOVQ w+16(FP), DI
	MOVQ ldw+24(FP), BX
	MOVQ n+32(FP), CX
	SHRQ $3, CX
	MOVQ rows+40(FP), R11
	SHLQ $4, R11
	ADDQ cols+48(FP), R11  // 16*rows + cols
	MOVQ out+56(FP), R8
	LEAQ (SI)(AX*2), R9
	ADDQ AX, R9            // x row 3
	LEAQ (R9)(AX*2), R12
	ADDQ AX, R12           // x row 6
	LEAQ (DI)(BX*2), R10
	ADDQ BX, R10           // weight row 3
	LEAQ (R10)(BX*2), R13
	ADDQ BX, R13           // weight row 6
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	CMPQ R11, $17
	JEQ  ht1x1
	CMPQ R11, $18
	JEQ  ht1x2
	CMPQ R11, $19
	JEQ  ht1x3
	CMPQ R11, $20
	JEQ  ht1x4
	CMPQ R11, $21
	JEQ  ht1x5
	CMPQ R11, $22
	JEQ  ht1x6
	CMPQ R11, $23
	JEQ  ht1x7
	CMPQ R11, $24
	JEQ  ht1x8
	CMPQ R11, $33
	JEQ  ht2x1
	CMPQ R11, $34
	JEQ  ht2x2
	CMPQ R11, $35
	JEQ  ht2x3
	CMPQ R11, $36
	JEQ  ht2x4
	CMPQ R11, $37
	JEQ  ht2x5
	CMPQ R11, $49
	JEQ  ht3x1
	CMPQ R11, $50
	JEQ  ht3x2
	CMPQ R11, $51
	JEQ  ht3x3
	CMPQ R11, $52
	JEQ  ht3x4
	CMPQ R11, $65
	JEQ  ht4x1
	CMPQ R11, $66
	JEQ  ht4x2
	CMPQ R11, $67
	JEQ  ht4x3
	CMPQ R11, $81
	JEQ  ht5x1
	CMPQ R11, $82
	JEQ  ht5x2
	CMPQ R11, $97
	JEQ  ht6x1
	CMPQ R11, $98
	JEQ  ht6x2
	CMPQ R11, $113
	JEQ  ht7x1
	CMPQ R11, $114
	JEQ  ht7x2
	CMPQ R11, $129
	JEQ  ht8x1
	JMP  htdone

ht1x1:
	TESTQ CX, CX
	JZ    ht1x1sum

ht1x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x1loop

ht1x1sum:
	Q8OUT(Y0, X0, 0)
	JMP  htdone

ht1x2:
	TESTQ CX, CX
	JZ    ht1x2sum

ht1x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x2loop

ht1x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	JMP  htdone

ht1x3:
	TESTQ CX, CX
	JZ    ht1x3sum

ht1x3loop:
	VCVTPH2PS (DI), Y13
	VCVTPH2PS (DI)(BX*1), Y14
	VCVTPH2PS (DI)(BX*2), Y15
	VFMADD231PS (SI), Y13, Y0
	VFMADD231PS (SI), Y14, Y1
	VFMADD231PS (SI), Y15, Y2
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x3loop

ht1x3sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	JMP  htdone

ht1x4:
	TESTQ CX, CX
	JZ    ht1x4sum

ht1x4loop:
	VCVTPH2PS (DI), Y12
	VCVTPH2PS (DI)(BX*1), Y13
	VCVTPH2PS (DI)(BX*2), Y14
	VCVTPH2PS (R10), Y15
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS (SI), Y13, Y1
	VFMADD231PS (SI), Y14, Y2
	VFMADD231PS (SI), Y15, Y3
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x4loop

ht1x4sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	JMP  htdone

ht1x5:
	TESTQ CX, CX
	JZ    ht1x5sum

ht1x5loop:
	VCVTPH2PS (DI), Y11
	VCVTPH2PS (DI)(BX*1), Y12
	VCVTPH2PS (DI)(BX*2), Y13
	VCVTPH2PS (R10), Y14
	VCVTPH2PS (R10)(BX*1), Y15
	VFMADD231PS (SI), Y11, Y0
	VFMADD231PS (SI), Y12, Y1
	VFMADD231PS (SI), Y13, Y2
	VFMADD231PS (SI), Y14, Y3
	VFMADD231PS (SI), Y15, Y4
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x5loop

ht1x5sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 16)
	JMP  htdone

ht1x6:
	TESTQ CX, CX
	JZ    ht1x6sum

ht1x6loop:
	VCVTPH2PS (DI), Y10
	VCVTPH2PS (DI)(BX*1), Y11
	VCVTPH2PS (DI)(BX*2), Y12
	VCVTPH2PS (R10), Y13
	VCVTPH2PS (R10)(BX*1), Y14
	VCVTPH2PS (R10)(BX*2), Y15
	VFMADD231PS (SI), Y10, Y0
	VFMADD231PS (SI), Y11, Y1
	VFMADD231PS (SI), Y12, Y2
	VFMADD231PS (SI), Y13, Y3
	VFMADD231PS (SI), Y14, Y4
	VFMADD231PS (SI), Y15, Y5
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x6loop

ht1x6sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 16)
	Q8OUT(Y5, X5, 20)
	JMP  htdone

ht1x7:
	TESTQ CX, CX
	JZ    ht1x7sum

ht1x7loop:
	VCVTPH2PS (DI), Y9
	VCVTPH2PS (DI)(BX*1), Y10
	VCVTPH2PS (DI)(BX*2), Y11
	VCVTPH2PS (R10), Y12
	VCVTPH2PS (R10)(BX*1), Y13
	VCVTPH2PS (R10)(BX*2), Y14
	VCVTPH2PS (R13), Y15
	VFMADD231PS (SI), Y9, Y0
	VFMADD231PS (SI), Y10, Y1
	VFMADD231PS (SI), Y11, Y2
	VFMADD231PS (SI), Y12, Y3
	VFMADD231PS (SI), Y13, Y4
	VFMADD231PS (SI), Y14, Y5
	VFMADD231PS (SI), Y15, Y6
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x7loop

ht1x7sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 16)
	Q8OUT(Y5, X5, 20)
	Q8OUT(Y6, X6, 24)
	JMP  htdone

ht1x8:
	TESTQ CX, CX
	JZ    ht1x8sum

ht1x8loop:
	VCVTPH2PS (DI), Y8
	VCVTPH2PS (DI)(BX*1), Y9
	VCVTPH2PS (DI)(BX*2), Y10
	VCVTPH2PS (R10), Y11
	VCVTPH2PS (R10)(BX*1), Y12
	VCVTPH2PS (R10)(BX*2), Y13
	VCVTPH2PS (R13), Y14
	VCVTPH2PS (R13)(BX*1), Y15
	VFMADD231PS (SI), Y8, Y0
	VFMADD231PS (SI), Y9, Y1
	VFMADD231PS (SI), Y10, Y2
	VFMADD231PS (SI), Y11, Y3
	VFMADD231PS (SI), Y12, Y4
	VFMADD231PS (SI), Y13, Y5
	VFMADD231PS (SI), Y14, Y6
	VFMADD231PS (SI), Y15, Y7
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht1x8loop

ht1x8sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 16)
	Q8OUT(Y5, X5, 20)
	Q8OUT(Y6, X6, 24)
	Q8OUT(Y7, X7, 28)
	JMP  htdone

ht2x1:
	TESTQ CX, CX
	JZ    ht2x1sum

ht2x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht2x1loop

ht2x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	JMP  htdone

ht2x2:
	TESTQ CX, CX
	JZ    ht2x2sum

ht2x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	VFMADD231PS (SI)(AX*1), Y14, Y2
	VFMADD231PS (SI)(AX*1), Y15, Y3
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht2x2loop

ht2x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 32)
	Q8OUT(Y3, X3, 36)
	JMP  htdone

ht2x3:
	TESTQ CX, CX
	JZ    ht2x3sum

ht2x3loop:
	VCVTPH2PS (DI), Y13
	VCVTPH2PS (DI)(BX*1), Y14
	VCVTPH2PS (DI)(BX*2), Y15
	VFMADD231PS (SI), Y13, Y0
	VFMADD231PS (SI), Y14, Y1
	VFMADD231PS (SI), Y15, Y2
	VFMADD231PS (SI)(AX*1), Y13, Y3
	VFMADD231PS (SI)(AX*1), Y14, Y4
	VFMADD231PS (SI)(AX*1), Y15, Y5
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht2x3loop

ht2x3sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 32)
	Q8OUT(Y4, X4, 36)
	Q8OUT(Y5, X5, 40)
	JMP  htdone

ht2x4:
	TESTQ CX, CX
	JZ    ht2x4sum

ht2x4loop:
	VCVTPH2PS (DI), Y12
	VCVTPH2PS (DI)(BX*1), Y13
	VCVTPH2PS (DI)(BX*2), Y14
	VCVTPH2PS (R10), Y15
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS (SI), Y13, Y1
	VFMADD231PS (SI), Y14, Y2
	VFMADD231PS (SI), Y15, Y3
	VFMADD231PS (SI)(AX*1), Y12, Y4
	VFMADD231PS (SI)(AX*1), Y13, Y5
	VFMADD231PS (SI)(AX*1), Y14, Y6
	VFMADD231PS (SI)(AX*1), Y15, Y7
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht2x4loop

ht2x4sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 32)
	Q8OUT(Y5, X5, 36)
	Q8OUT(Y6, X6, 40)
	Q8OUT(Y7, X7, 44)
	JMP  htdone

ht2x5:
	TESTQ CX, CX
	JZ    ht2x5sum

ht2x5loop:
	VCVTPH2PS (DI), Y11
	VCVTPH2PS (DI)(BX*1), Y12
	VCVTPH2PS (DI)(BX*2), Y13
	VCVTPH2PS (R10), Y14
	VCVTPH2PS (R10)(BX*1), Y15
	VFMADD231PS (SI), Y11, Y0
	VFMADD231PS (SI), Y12, Y1
	VFMADD231PS (SI), Y13, Y2
	VFMADD231PS (SI), Y14, Y3
	VFMADD231PS (SI), Y15, Y4
	VFMADD231PS (SI)(AX*1), Y11, Y5
	VFMADD231PS (SI)(AX*1), Y12, Y6
	VFMADD231PS (SI)(AX*1), Y13, Y7
	VFMADD231PS (SI)(AX*1), Y14, Y8
	VFMADD231PS (SI)(AX*1), Y15, Y9
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht2x5loop

ht2x5sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 16)
	Q8OUT(Y5, X5, 32)
	Q8OUT(Y6, X6, 36)
	Q8OUT(Y7, X7, 40)
	Q8OUT(Y8, X8, 44)
	Q8OUT(Y9, X9, 48)
	JMP  htdone

ht3x1:
	TESTQ CX, CX
	JZ    ht3x1sum

ht3x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	VFMADD231PS (SI)(AX*2), Y15, Y2
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht3x1loop

ht3x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	Q8OUT(Y2, X2, 64)
	JMP  htdone

ht3x2:
	TESTQ CX, CX
	JZ    ht3x2sum

ht3x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	VFMADD231PS (SI)(AX*1), Y14, Y2
	VFMADD231PS (SI)(AX*1), Y15, Y3
	VFMADD231PS (SI)(AX*2), Y14, Y4
	VFMADD231PS (SI)(AX*2), Y15, Y5
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht3x2loop

ht3x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 32)
	Q8OUT(Y3, X3, 36)
	Q8OUT(Y4, X4, 64)
	Q8OUT(Y5, X5, 68)
	JMP  htdone

ht3x3:
	TESTQ CX, CX
	JZ    ht3x3sum

ht3x3loop:
	VCVTPH2PS (DI), Y13
	VCVTPH2PS (DI)(BX*1), Y14
	VCVTPH2PS (DI)(BX*2), Y15
	VFMADD231PS (SI), Y13, Y0
	VFMADD231PS (SI), Y14, Y1
	VFMADD231PS (SI), Y15, Y2
	VFMADD231PS (SI)(AX*1), Y13, Y3
	VFMADD231PS (SI)(AX*1), Y14, Y4
	VFMADD231PS (SI)(AX*1), Y15, Y5
	VFMADD231PS (SI)(AX*2), Y13, Y6
	VFMADD231PS (SI)(AX*2), Y14, Y7
	VFMADD231PS (SI)(AX*2), Y15, Y8
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht3x3loop

ht3x3sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 32)
	Q8OUT(Y4, X4, 36)
	Q8OUT(Y5, X5, 40)
	Q8OUT(Y6, X6, 64)
	Q8OUT(Y7, X7, 68)
	Q8OUT(Y8, X8, 72)
	JMP  htdone

ht3x4:
	TESTQ CX, CX
	JZ    ht3x4sum

ht3x4loop:
	VCVTPH2PS (DI), Y12
	VCVTPH2PS (DI)(BX*1), Y13
	VCVTPH2PS (DI)(BX*2), Y14
	VCVTPH2PS (R10), Y15
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS (SI), Y13, Y1
	VFMADD231PS (SI), Y14, Y2
	VFMADD231PS (SI), Y15, Y3
	VFMADD231PS (SI)(AX*1), Y12, Y4
	VFMADD231PS (SI)(AX*1), Y13, Y5
	VFMADD231PS (SI)(AX*1), Y14, Y6
	VFMADD231PS (SI)(AX*1), Y15, Y7
	VFMADD231PS (SI)(AX*2), Y12, Y8
	VFMADD231PS (SI)(AX*2), Y13, Y9
	VFMADD231PS (SI)(AX*2), Y14, Y10
	VFMADD231PS (SI)(AX*2), Y15, Y11
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht3x4loop

ht3x4sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 12)
	Q8OUT(Y4, X4, 32)
	Q8OUT(Y5, X5, 36)
	Q8OUT(Y6, X6, 40)
	Q8OUT(Y7, X7, 44)
	Q8OUT(Y8, X8, 64)
	Q8OUT(Y9, X9, 68)
	Q8OUT(Y10, X10, 72)
	Q8OUT(Y11, X11, 76)
	JMP  htdone

ht4x1:
	TESTQ CX, CX
	JZ    ht4x1sum

ht4x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	VFMADD231PS (SI)(AX*2), Y15, Y2
	VFMADD231PS (R9), Y15, Y3
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht4x1loop

ht4x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	Q8OUT(Y2, X2, 64)
	Q8OUT(Y3, X3, 96)
	JMP  htdone

ht4x2:
	TESTQ CX, CX
	JZ    ht4x2sum

ht4x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	VFMADD231PS (SI)(AX*1), Y14, Y2
	VFMADD231PS (SI)(AX*1), Y15, Y3
	VFMADD231PS (SI)(AX*2), Y14, Y4
	VFMADD231PS (SI)(AX*2), Y15, Y5
	VFMADD231PS (R9), Y14, Y6
	VFMADD231PS (R9), Y15, Y7
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht4x2loop

ht4x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 32)
	Q8OUT(Y3, X3, 36)
	Q8OUT(Y4, X4, 64)
	Q8OUT(Y5, X5, 68)
	Q8OUT(Y6, X6, 96)
	Q8OUT(Y7, X7, 100)
	JMP  htdone

ht4x3:
	TESTQ CX, CX
	JZ    ht4x3sum

ht4x3loop:
	VCVTPH2PS (DI), Y13
	VCVTPH2PS (DI)(BX*1), Y14
	VCVTPH2PS (DI)(BX*2), Y15
	VFMADD231PS (SI), Y13, Y0
	VFMADD231PS (SI), Y14, Y1
	VFMADD231PS (SI), Y15, Y2
	VFMADD231PS (SI)(AX*1), Y13, Y3
	VFMADD231PS (SI)(AX*1), Y14, Y4
	VFMADD231PS (SI)(AX*1), Y15, Y5
	VFMADD231PS (SI)(AX*2), Y13, Y6
	VFMADD231PS (SI)(AX*2), Y14, Y7
	VFMADD231PS (SI)(AX*2), Y15, Y8
	VFMADD231PS (R9), Y13, Y9
	VFMADD231PS (R9), Y14, Y10
	VFMADD231PS (R9), Y15, Y11
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht4x3loop

ht4x3sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 8)
	Q8OUT(Y3, X3, 32)
	Q8OUT(Y4, X4, 36)
	Q8OUT(Y5, X5, 40)
	Q8OUT(Y6, X6, 64)
	Q8OUT(Y7, X7, 68)
	Q8OUT(Y8, X8, 72)
	Q8OUT(Y9, X9, 96)
	Q8OUT(Y10, X10, 100)
	Q8OUT(Y11, X11, 104)
	JMP  htdone

ht5x1:
	TESTQ CX, CX
	JZ    ht5x1sum

ht5x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	VFMADD231PS (SI)(AX*2), Y15, Y2
	VFMADD231PS (R9), Y15, Y3
	VFMADD231PS (R9)(AX*1), Y15, Y4
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht5x1loop

ht5x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	Q8OUT(Y2, X2, 64)
	Q8OUT(Y3, X3, 96)
	Q8OUT(Y4, X4, 128)
	JMP  htdone

ht5x2:
	TESTQ CX, CX
	JZ    ht5x2sum

ht5x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	VFMADD231PS (SI)(AX*1), Y14, Y2
	VFMADD231PS (SI)(AX*1), Y15, Y3
	VFMADD231PS (SI)(AX*2), Y14, Y4
	VFMADD231PS (SI)(AX*2), Y15, Y5
	VFMADD231PS (R9), Y14, Y6
	VFMADD231PS (R9), Y15, Y7
	VFMADD231PS (R9)(AX*1), Y14, Y8
	VFMADD231PS (R9)(AX*1), Y15, Y9
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht5x2loop

ht5x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 32)
	Q8OUT(Y3, X3, 36)
	Q8OUT(Y4, X4, 64)
	Q8OUT(Y5, X5, 68)
	Q8OUT(Y6, X6, 96)
	Q8OUT(Y7, X7, 100)
	Q8OUT(Y8, X8, 128)
	Q8OUT(Y9, X9, 132)
	JMP  htdone

ht6x1:
	TESTQ CX, CX
	JZ    ht6x1sum

ht6x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	VFMADD231PS (SI)(AX*2), Y15, Y2
	VFMADD231PS (R9), Y15, Y3
	VFMADD231PS (R9)(AX*1), Y15, Y4
	VFMADD231PS (R9)(AX*2), Y15, Y5
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht6x1loop

ht6x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	Q8OUT(Y2, X2, 64)
	Q8OUT(Y3, X3, 96)
	Q8OUT(Y4, X4, 128)
	Q8OUT(Y5, X5, 160)
	JMP  htdone

ht6x2:
	TESTQ CX, CX
	JZ    ht6x2sum

ht6x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	VFMADD231PS (SI)(AX*1), Y14, Y2
	VFMADD231PS (SI)(AX*1), Y15, Y3
	VFMADD231PS (SI)(AX*2), Y14, Y4
	VFMADD231PS (SI)(AX*2), Y15, Y5
	VFMADD231PS (R9), Y14, Y6
	VFMADD231PS (R9), Y15, Y7
	VFMADD231PS (R9)(AX*1), Y14, Y8
	VFMADD231PS (R9)(AX*1), Y15, Y9
	VFMADD231PS (R9)(AX*2), Y14, Y10
	VFMADD231PS (R9)(AX*2), Y15, Y11
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht6x2loop

ht6x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 32)
	Q8OUT(Y3, X3, 36)
	Q8OUT(Y4, X4, 64)
	Q8OUT(Y5, X5, 68)
	Q8OUT(Y6, X6, 96)
	Q8OUT(Y7, X7, 100)
	Q8OUT(Y8, X8, 128)
	Q8OUT(Y9, X9, 132)
	Q8OUT(Y10, X10, 160)
	Q8OUT(Y11, X11, 164)
	JMP  htdone

ht7x1:
	TESTQ CX, CX
	JZ    ht7x1sum

ht7x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	VFMADD231PS (SI)(AX*2), Y15, Y2
	VFMADD231PS (R9), Y15, Y3
	VFMADD231PS (R9)(AX*1), Y15, Y4
	VFMADD231PS (R9)(AX*2), Y15, Y5
	VFMADD231PS (R12), Y15, Y6
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht7x1loop

ht7x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	Q8OUT(Y2, X2, 64)
	Q8OUT(Y3, X3, 96)
	Q8OUT(Y4, X4, 128)
	Q8OUT(Y5, X5, 160)
	Q8OUT(Y6, X6, 192)
	JMP  htdone

ht7x2:
	TESTQ CX, CX
	JZ    ht7x2sum

ht7x2loop:
	VCVTPH2PS (DI), Y14
	VCVTPH2PS (DI)(BX*1), Y15
	VFMADD231PS (SI), Y14, Y0
	VFMADD231PS (SI), Y15, Y1
	VFMADD231PS (SI)(AX*1), Y14, Y2
	VFMADD231PS (SI)(AX*1), Y15, Y3
	VFMADD231PS (SI)(AX*2), Y14, Y4
	VFMADD231PS (SI)(AX*2), Y15, Y5
	VFMADD231PS (R9), Y14, Y6
	VFMADD231PS (R9), Y15, Y7
	VFMADD231PS (R9)(AX*1), Y14, Y8
	VFMADD231PS (R9)(AX*1), Y15, Y9
	VFMADD231PS (R9)(AX*2), Y14, Y10
	VFMADD231PS (R9)(AX*2), Y15, Y11
	VFMADD231PS (R12), Y14, Y12
	VFMADD231PS (R12), Y15, Y13
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht7x2loop

ht7x2sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 4)
	Q8OUT(Y2, X2, 32)
	Q8OUT(Y3, X3, 36)
	Q8OUT(Y4, X4, 64)
	Q8OUT(Y5, X5, 68)
	Q8OUT(Y6, X6, 96)
	Q8OUT(Y7, X7, 100)
	Q8OUT(Y8, X8, 128)
	Q8OUT(Y9, X9, 132)
	Q8OUT(Y10, X10, 160)
	Q8OUT(Y11, X11, 164)
	Q8OUT(Y12, X12, 192)
	Q8OUT(Y13, X13, 196)
	JMP  htdone

ht8x1:
	TESTQ CX, CX
	JZ    ht8x1sum

ht8x1loop:
	VCVTPH2PS (DI), Y15
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS (SI)(AX*1), Y15, Y1
	VFMADD231PS (SI)(AX*2), Y15, Y2
	VFMADD231PS (R9), Y15, Y3
	VFMADD231PS (R9)(AX*1), Y15, Y4
	VFMADD231PS (R9)(AX*2), Y15, Y5
	VFMADD231PS (R12), Y15, Y6
	VFMADD231PS (R12)(AX*1), Y15, Y7
	ADDQ $32, SI
	ADDQ $32, R9
	ADDQ $32, R12
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R13
	DECQ CX
	JNZ  ht8x1loop

ht8x1sum:
	Q8OUT(Y0, X0, 0)
	Q8OUT(Y1, X1, 32)
	Q8OUT(Y2, X2, 64)
	Q8OUT(Y3, X3, 96)
	Q8OUT(Y4, X4, 128)
	Q8OUT(Y5, X5, 160)
	Q8OUT(Y6, X6, 192)
	Q8OUT(Y7, X7, 224)
	JMP  htdone

htdone:
	VZEROUPPER
	RET
