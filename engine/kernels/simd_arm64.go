//go:build arm64 && !purego

package kernels

import (
	"encoding/binary"
	"math"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// NEON (with FMA and the half-precision conversions) is part of every arm64
// CPU; the Q8_0 GEMM also uses SDOT (FEAT_DotProd: Apple M1 and later,
// Cortex-A76/Neoverse-N1 and later) and SMMLA (FEAT_I8MM: Apple M2 and
// later, Neoverse-V1/N2, Graviton 3) when the CPU has them.
const (
	hasSIMD = true
	hasF16C = true // FCVTL
)

var (
	hasDotProd = cpu.ARM64.HasASIMDDP
	hasI8MM    = cpu.ARM64.HasI8MM && hasDotProd
)

var (
	kernNEON = microKernel{"neon", 8, 8, sgemm8x8, nil}

	q8KernI8MM = q8Kernel{"i8mm", 4, 8, q8Pairs, q8KB, q8gemmI8MM4x8}
	q8KernDot  = q8Kernel{"dotprod", 4, 8, q8Signed, q8KB, q8gemmDot4x8}
	q8KernNEON = q8Kernel{"neon", 4, 8, q8Signed, q8KB, q8gemmNEON4x8}
)

// machineKernels: the Q8_0 GEMM uses SMMLA when the CPU has it unless
// BLIP2CHAT_NOI8MM is set, else SDOT unless BLIP2CHAT_NODOTPROD is set
// (which also rules out SMMLA), else plain NEON.
func machineKernels() (microKernel, q8Kernel) {
	return kernNEON, chooseQ8(hasI8MM, hasDotProd, envSet("BLIP2CHAT_NOI8MM"), envSet("BLIP2CHAT_NODOTPROD"))
}

func chooseQ8(i8mm, dot, noI8MM, noDot bool) q8Kernel {
	switch {
	case i8mm && !noI8MM && !noDot:
		return q8KernI8MM
	case dot && !noDot:
		return q8KernDot
	}
	return q8KernNEON
}

// simdKernels lists the f32 micro-kernels and Q8_0 GEMM kernels this CPU
// runs (for the tests and benchmarks, which compare them all).
func simdKernels() (f32 []microKernel, q8 []q8Kernel) {
	q8 = []q8Kernel{q8KernNEON}
	if hasDotProd {
		q8 = append(q8, q8KernDot)
	}
	if hasI8MM {
		q8 = append(q8, q8KernI8MM)
	}
	return []microKernel{kernNEON}, q8
}

// cpuFeatures names the features the kernels of im use.
func cpuFeatures(im impl) []string {
	f := []string{"neon", "fp16"}
	if im.q8.name != q8KernNEON.name {
		f = append(f, im.q8.name)
	}
	return f
}

// sgemm8x8 computes the 8x8 tile c = a . b over depth kc (c += when
// accum): a is 8 rows with stride lda (elements), b a packed panel of kc x
// 8, c rows with stride ldc. Unless pf is nil, it also prefetches pfn cache
// lines from pf and from pf+pfld (bytes) while it computes.
//
//go:noescape
func sgemm8x8(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)

// q8gemmI8MM4x8, q8gemmDot4x8 and q8gemmNEON4x8 are the Q8_0 GEMM
// micro-kernels for a 4x8 tile (SMMLA on q8Pairs panels; SDOT, and SMULL
// with SADALP, on q8Signed panels); see q8Kernel.
//
//go:noescape
func q8gemmI8MM4x8(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)

//go:noescape
func q8gemmDot4x8(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)

//go:noescape
func q8gemmNEON4x8(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)

// quantQ8Asm quantizes nb blocks of 32 floats into A blocks (quantizeA).
//
//go:noescape
func quantQ8Asm(dst *byte, x *float32, nb int)

// cvtF16Asm widens n (a multiple of 8) halves.
//
//go:noescape
func cvtF16Asm(dst *float32, src *byte, n int)

// sdotAsm is the dot product of n (a multiple of 8) floats.
//
//go:noescape
func sdotAsm(x *float32, w *float32, n int) float32

// hdotAsm is the dot product of n (a multiple of 8) floats with halves.
//
//go:noescape
func hdotAsm(x *float32, w *byte, n int) float32

// q8dotAsm is dotQ8 over nb blocks (bit-identical to the Go version).
//
//go:noescape
func q8dotAsm(xq *int8, xd *float32, w *byte, nb int) float32

// No multi-row Q8_0 and f16 dot kernels on arm64 (yet): dotQ8Rows and
// dotF16Tile run the one-row kernels per row, the weight row from L1
// after the first.
const (
	hasQ8DotRows  = false
	hasF16DotTile = false
)

func hdotTileAsm(x *float32, ldx int, w *byte, ldw int, n int, rows int, cols int, out *float32) {
	panic("kernels: no multi-row f16 dot kernel")
}

func q8dotRowsAsm(xq *int8, ldq int, xdt *float32, w *byte, nb int, rows int, out *float32) {
	panic("kernels: no multi-row Q8_0 dot kernel")
}

// Element-wise kernels over n (a multiple of 8) elements.

//go:noescape
func sumAsm(x *float32, n int) float32

//go:noescape
func sqDiffAsm(x *float32, n int, mean float32) float32

//go:noescape
func normAsm(dst, x *float32, n int, mean, rstd float32)

//go:noescape
func mulAddAsm(dst, gamma, beta *float32, n int)

//go:noescape
func mulAsm(dst, gamma *float32, n int)

//go:noescape
func addAsm(dst, a, b *float32, n int)

//go:noescape
func scaleAsm(x *float32, n int, s float32)

//go:noescape
func reluAsm(x *float32, n int)

//go:noescape
func maxAsm(x *float32, n int) float32

//go:noescape
func expSubAsm(x *float32, n int, m float32) float32

//go:noescape
func geluAsm(x *float32, n int)

// prefetchAsm asks for the cache lines of [p, p+n) (a hint: no faults).
//
//go:noescape
func prefetchAsm(p *byte, n int)

// The panel packers and the Q8_0 expansion are byte and word moves, which
// the Go compiler turns into plain loads and stores; on arm64 they stay in
// Go (the "Asm" names are those of the amd64 routines they stand for).

// packNT8 is packNTAsm for 8 rows and a multiple of 4 of depth (NEON).
//
//go:noescape
func packNT8(dst *float32, src *float32, ld int, kc4 int)

// packNTAsm transposes nr rows of src (stride ld) over depth kc8 into dst as
// kc8 groups of nr.
func packNTAsm(dst *float32, src *float32, ld int, kc8 int, nr int) {
	if nr == 8 {
		packNT8(dst, src, ld, kc8)
		return
	}
	d := unsafe.Slice(dst, kc8*nr)
	s := unsafe.Slice(src, (nr-1)*ld+kc8)
	for r := 0; r < nr; r++ {
		row := s[r*ld : r*ld+kc8]
		for q, v := range row {
			d[q*nr+r] = v
		}
	}
}

// packQ8Asm packs nr block_q8_0 rows (stride rb bytes) over kb blocks into
// a q8Signed (flip 0) or q8Unsigned (flip 0x80808080) panel, a quad (4
// bytes) at a time.
func packQ8Asm(dst *byte, src *byte, rb int, kb int, nr int, flip uint32) {
	bb := 36 * nr
	d := unsafe.Slice(dst, kb*bb)
	s := unsafe.Slice(src, (nr-1)*rb+kb*q8BlockBytes)
	for c := 0; c < nr; c++ {
		row := s[c*rb : c*rb+kb*q8BlockBytes]
		for b := 0; b < kb; b++ {
			blk := row[b*q8BlockBytes : (b+1)*q8BlockBytes]
			out := d[b*bb : (b+1)*bb]
			for q := 0; q < 8; q++ {
				binary.LittleEndian.PutUint32(out[(q*nr+c)*4:], binary.LittleEndian.Uint32(blk[2+4*q:])^flip)
			}
			binary.LittleEndian.PutUint32(out[32*nr+4*c:], math.Float32bits(f16ToF32(binary.LittleEndian.Uint16(blk))))
		}
	}
}

func packQ8SplitAsm(dst *byte, src *byte, rb int, kb int, nr int) {
	panic("kernels: the split layout is amd64's")
}

// dequantQ8Asm expands nb block_q8_0 blocks.
func dequantQ8Asm(dst *float32, src *byte, nb int) {
	d := unsafe.Slice(dst, nb*q8Block)
	s := unsafe.Slice(src, nb*q8BlockBytes)
	for b := 0; b < nb; b++ {
		blk := s[b*q8BlockBytes : (b+1)*q8BlockBytes]
		sc := f16ToF32(binary.LittleEndian.Uint16(blk))
		out := d[b*q8Block : (b+1)*q8Block]
		for i := range out {
			out[i] = float32(int8(blk[2+i])) * sc
		}
	}
}
