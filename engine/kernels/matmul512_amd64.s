//go:build amd64 && !purego

#include "textflag.h"

// sgemm12x32: the AVX-512 f32 micro-kernel (used when the CPU has AVX-512F).
//
// Z0..Z23 hold the 12x32 tile of C (row r in Z(2r), Z(2r+1)); each depth
// step loads one 32-wide row of the packed panel into Z28/Z29, broadcasts
// the twelve A values of that column (rows 0-2 from SI, 3-5 from DI, 6-8
// from R10, 9-11 from R11, each group 3*lda apart) and issues 24 FMAs.
// Unrolled 4x. Each unrolled step also prefetches (into L2) one cache line
// of each of two rows the caller will pack next (pf and pf+pfld, pfn lines
// each; none when pf is nil): the weights stream from memory, and packing
// them from L2 does not stall on memory latency.

#define ZROW(aaddr, acc0, acc1, t) \
	VBROADCASTSS aaddr, t; \
	VFMADD231PS  Z28, t, acc0; \
	VFMADD231PS  Z29, t, acc1

#define ZSTEP(ao, bo) \
	VMOVUPS bo(BX), Z28; \
	VMOVUPS bo+64(BX), Z29; \
	ZROW(ao(SI), Z0, Z1, Z30); \
	ZROW(ao(SI)(R8*1), Z2, Z3, Z31); \
	ZROW(ao(SI)(R8*2), Z4, Z5, Z30); \
	ZROW(ao(DI), Z6, Z7, Z31); \
	ZROW(ao(DI)(R8*1), Z8, Z9, Z30); \
	ZROW(ao(DI)(R8*2), Z10, Z11, Z31); \
	ZROW(ao(R10), Z12, Z13, Z30); \
	ZROW(ao(R10)(R8*1), Z14, Z15, Z31); \
	ZROW(ao(R10)(R8*2), Z16, Z17, Z30); \
	ZROW(ao(R11), Z18, Z19, Z31); \
	ZROW(ao(R11)(R8*1), Z20, Z21, Z30); \
	ZROW(ao(R11)(R8*2), Z22, Z23, Z31)

// CPREFETCH asks for the tile of C (12 rows of two lines at c, stride ldc)
// so its loads and stores at the end do not wait for L2. Uses R9, R12.
#define CPREFETCH \
	MOVQ       c+32(FP), R9; \
	MOVQ       ldc+40(FP), R12; \
	SHLQ       $2, R12; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	ADDQ       R12, R9; \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9)

// func sgemm12x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)
TEXT ·sgemm12x32(SB), NOSPLIT, $0-73
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
	CPREFETCH
	LEAQ (R8)(R8*2), R12
	LEAQ (SI)(R12*1), DI
	LEAQ (DI)(R12*1), R10
	LEAQ (R10)(R12*1), R11
	VPXORD Z0, Z0, Z0
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
	VMOVAPS Z0, Z12
	VMOVAPS Z0, Z13
	VMOVAPS Z0, Z14
	VMOVAPS Z0, Z15
	VMOVAPS Z0, Z16
	VMOVAPS Z0, Z17
	VMOVAPS Z0, Z18
	VMOVAPS Z0, Z19
	VMOVAPS Z0, Z20
	VMOVAPS Z0, Z21
	VMOVAPS Z0, Z22
	VMOVAPS Z0, Z23
	MOVQ CX, AX
	SHRQ $2, AX
	JZ   ztail

zloop4:
	TESTQ      DX, DX
	JZ         zpfdone
	PREFETCHT1 (R13)
	PREFETCHT1 (R13)(R14*1)
	ADDQ       $64, R13
	DECQ       DX

zpfdone:
	ZSTEP(0, 0)
	ZSTEP(4, 128)
	ZSTEP(8, 256)
	ZSTEP(12, 384)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $16, R10
	ADDQ $16, R11
	ADDQ $512, BX
	DECQ AX
	JNZ  zloop4

ztail:
	ANDQ $3, CX
	JZ   zdone

zloop1:
	ZSTEP(0, 0)
	ADDQ $4, SI
	ADDQ $4, DI
	ADDQ $4, R10
	ADDQ $4, R11
	ADDQ $128, BX
	DECQ CX
	JNZ  zloop1

zdone:
	// C row pointers: DX (rows 0-2), DI (3-5), R10 (6-8), R11 (9-11).
	MOVQ    c+32(FP), DX
	MOVQ    ldc+40(FP), R9
	SHLQ    $2, R9
	LEAQ    (R9)(R9*2), R12
	LEAQ    (DX)(R12*1), DI
	LEAQ    (DI)(R12*1), R10
	LEAQ    (R10)(R12*1), R11
	MOVBLZX accum+72(FP), AX
	TESTL   AX, AX
	JZ      zstore
	VADDPS  (DX), Z0, Z0
	VADDPS  64(DX), Z1, Z1
	VADDPS  (DX)(R9*1), Z2, Z2
	VADDPS  64(DX)(R9*1), Z3, Z3
	VADDPS  (DX)(R9*2), Z4, Z4
	VADDPS  64(DX)(R9*2), Z5, Z5
	VADDPS  (DI), Z6, Z6
	VADDPS  64(DI), Z7, Z7
	VADDPS  (DI)(R9*1), Z8, Z8
	VADDPS  64(DI)(R9*1), Z9, Z9
	VADDPS  (DI)(R9*2), Z10, Z10
	VADDPS  64(DI)(R9*2), Z11, Z11
	VADDPS  (R10), Z12, Z12
	VADDPS  64(R10), Z13, Z13
	VADDPS  (R10)(R9*1), Z14, Z14
	VADDPS  64(R10)(R9*1), Z15, Z15
	VADDPS  (R10)(R9*2), Z16, Z16
	VADDPS  64(R10)(R9*2), Z17, Z17
	VADDPS  (R11), Z18, Z18
	VADDPS  64(R11), Z19, Z19
	VADDPS  (R11)(R9*1), Z20, Z20
	VADDPS  64(R11)(R9*1), Z21, Z21
	VADDPS  (R11)(R9*2), Z22, Z22
	VADDPS  64(R11)(R9*2), Z23, Z23

zstore:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, (DX)(R9*1)
	VMOVUPS Z3, 64(DX)(R9*1)
	VMOVUPS Z4, (DX)(R9*2)
	VMOVUPS Z5, 64(DX)(R9*2)
	VMOVUPS Z6, (DI)
	VMOVUPS Z7, 64(DI)
	VMOVUPS Z8, (DI)(R9*1)
	VMOVUPS Z9, 64(DI)(R9*1)
	VMOVUPS Z10, (DI)(R9*2)
	VMOVUPS Z11, 64(DI)(R9*2)
	VMOVUPS Z12, (R10)
	VMOVUPS Z13, 64(R10)
	VMOVUPS Z14, (R10)(R9*1)
	VMOVUPS Z15, 64(R10)(R9*1)
	VMOVUPS Z16, (R10)(R9*2)
	VMOVUPS Z17, 64(R10)(R9*2)
	VMOVUPS Z18, (R11)
	VMOVUPS Z19, 64(R11)
	VMOVUPS Z20, (R11)(R9*1)
	VMOVUPS Z21, 64(R11)(R9*1)
	VMOVUPS Z22, (R11)(R9*2)
	VMOVUPS Z23, 64(R11)(R9*2)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------
// sgemm6x32: sgemm12x32 for a 6x32 tile (Z0..Z11): the short last group of
// rows (m mod 12 <= 6) costs half a 12-row tile.

#define HSTEP(ao, bo) \
	VMOVUPS bo(BX), Z28; \
	VMOVUPS bo+64(BX), Z29; \
	ZROW(ao(SI), Z0, Z1, Z30); \
	ZROW(ao(SI)(R8*1), Z2, Z3, Z31); \
	ZROW(ao(SI)(R8*2), Z4, Z5, Z30); \
	ZROW(ao(DI), Z6, Z7, Z31); \
	ZROW(ao(DI)(R8*1), Z8, Z9, Z30); \
	ZROW(ao(DI)(R8*2), Z10, Z11, Z31)

// func sgemm6x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)
TEXT ·sgemm6x32(SB), NOSPLIT, $0-73
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
	LEAQ (R8)(R8*2), R12
	LEAQ (SI)(R12*1), DI
	VPXORD Z0, Z0, Z0
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
	MOVQ CX, AX
	SHRQ $2, AX
	JZ   htail

hloop4:
	TESTQ      DX, DX
	JZ         hpfdone
	PREFETCHT1 (R13)
	PREFETCHT1 (R13)(R14*1)
	ADDQ       $64, R13
	DECQ       DX

hpfdone:
	HSTEP(0, 0)
	HSTEP(4, 128)
	HSTEP(8, 256)
	HSTEP(12, 384)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $512, BX
	DECQ AX
	JNZ  hloop4

htail:
	ANDQ $3, CX
	JZ   hdone

hloop1:
	HSTEP(0, 0)
	ADDQ $4, SI
	ADDQ $4, DI
	ADDQ $128, BX
	DECQ CX
	JNZ  hloop1

hdone:
	MOVQ    c+32(FP), DX
	MOVQ    ldc+40(FP), R9
	SHLQ    $2, R9
	LEAQ    (R9)(R9*2), R12
	LEAQ    (DX)(R12*1), DI
	MOVBLZX accum+72(FP), AX
	TESTL   AX, AX
	JZ      hstore
	VADDPS  (DX), Z0, Z0
	VADDPS  64(DX), Z1, Z1
	VADDPS  (DX)(R9*1), Z2, Z2
	VADDPS  64(DX)(R9*1), Z3, Z3
	VADDPS  (DX)(R9*2), Z4, Z4
	VADDPS  64(DX)(R9*2), Z5, Z5
	VADDPS  (DI), Z6, Z6
	VADDPS  64(DI), Z7, Z7
	VADDPS  (DI)(R9*1), Z8, Z8
	VADDPS  64(DI)(R9*1), Z9, Z9
	VADDPS  (DI)(R9*2), Z10, Z10
	VADDPS  64(DI)(R9*2), Z11, Z11

hstore:
	VMOVUPS Z0, (DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, (DX)(R9*1)
	VMOVUPS Z3, 64(DX)(R9*1)
	VMOVUPS Z4, (DX)(R9*2)
	VMOVUPS Z5, 64(DX)(R9*2)
	VMOVUPS Z6, (DI)
	VMOVUPS Z7, 64(DI)
	VMOVUPS Z8, (DI)(R9*1)
	VMOVUPS Z9, 64(DI)(R9*1)
	VMOVUPS Z10, (DI)(R9*2)
	VMOVUPS Z11, 64(DI)(R9*2)
	VZEROUPPER
	RET
