//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// The assembly kernels need AVX2 and FMA; the f16 conversions (and Q8_0,
// whose scales are f16) also need F16C.
var (
	hasSIMD   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasF16C   = hasSIMD && cpu.X86.HasF16C
	hasAVX512 = hasSIMD && cpu.X86.HasAVX512F
	// hasVNNI512: the Q8_0 GEMM's VPDPBUSD kernel (AVX-512 VNNI).
	hasVNNI512 = hasAVX512 && hasF16C && cpu.X86.HasAVX512VNNI
	// hasAVXVNNI: the VEX-encoded (ymm) VPDPBUSD of AVX-VNNI.
	hasAVXVNNI = hasF16C && cpu.X86.HasAVXVNNI
)

var (
	kernAVX2   = microKernel{"avx2", 6, 16, sgemm6x16, nil}
	kernAVX512 = microKernel{"avx512f", 12, 32, sgemm12x32, sgemm6x32}

	q8KernVNNI    = q8Kernel{"avx512vnni", 6, 32, q8Unsigned, q8KB, q8gemmVNNI6x32}
	q8KernAVXVNNI = q8Kernel{"avxvnni", 6, 16, q8Unsigned, q8KB, q8gemmAVXVNNI6x16}
	// The split panel is twice the size: 16 blocks keep it in L1.
	q8KernAVX2 = q8Kernel{"avx2", 5, 16, q8Split, q8KB / 2, q8gemmAVX2x5x16}
)

// machineKernels: the f32 micro-kernel is AVX-512 when the CPU has it,
// unless BLIP2CHAT_NOAVX512 or BLIP2CHAT_NOVNNI is set, else AVX2; the
// Q8_0 GEMM uses AVX-512 VNNI (same condition), else AVX-VNNI (unless
// BLIP2CHAT_NOVNNI), else AVX2.
func machineKernels() (microKernel, q8Kernel) {
	return chooseKernels(hasAVX512, hasVNNI512, hasAVXVNNI, envSet("BLIP2CHAT_NOAVX512"), envSet("BLIP2CHAT_NOVNNI"))
}

func chooseKernels(avx512, vnni512, avxvnni, no512, noVNNI bool) (microKernel, q8Kernel) {
	no512 = no512 || noVNNI
	k, q := kernAVX2, q8KernAVX2
	if avx512 && !no512 {
		k = kernAVX512
	}
	switch {
	case vnni512 && !no512:
		q = q8KernVNNI
	case avxvnni && !noVNNI:
		q = q8KernAVXVNNI
	}
	return k, q
}

// simdKernels lists the f32 micro-kernels and Q8_0 GEMM kernels this CPU
// runs (for the tests and benchmarks, which compare them all).
func simdKernels() (f32 []microKernel, q8 []q8Kernel) {
	if !hasSIMD {
		return nil, nil
	}
	f32, q8 = []microKernel{kernAVX2}, []q8Kernel{q8KernAVX2}
	if hasAVX512 {
		f32 = append(f32, kernAVX512)
	}
	if hasAVXVNNI {
		q8 = append(q8, q8KernAVXVNNI)
	}
	if hasVNNI512 {
		q8 = append(q8, q8KernVNNI)
	}
	return f32, q8
}

// cpuFeatures names the features the kernels of im use.
func cpuFeatures(im impl) []string {
	var f []string
	if hasSIMD {
		f = append(f, "avx2", "fma")
	}
	if hasF16C {
		f = append(f, "f16c")
	}
	if hasSIMD && im.kern.name == kernAVX512.name {
		f = append(f, "avx512f")
	}
	if hasSIMD && im.q8.name != q8KernAVX2.name {
		f = append(f, im.q8.name) // the Q8_0 GEMM's VNNI kernel
	}
	return f
}

// q8gemmAVXVNNI6x16 is the Q8_0 GEMM micro-kernel for a 6x16 tile
// (AVX-VNNI).
//
//go:noescape
func q8gemmAVXVNNI6x16(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)

// q8gemmVNNI6x32 is the Q8_0 GEMM micro-kernel for a 6x32 tile (AVX-512
// VNNI); see q8Kernel.
//
//go:noescape
func q8gemmVNNI6x32(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)

// q8gemmAVX2x5x16 is the Q8_0 GEMM micro-kernel for a 5x16 tile (AVX2,
// q8Split panels).
//
//go:noescape
func q8gemmAVX2x5x16(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool)

// packQ8Asm packs nr (a multiple of 8) block_q8_0 rows (stride rb bytes)
// over kb blocks into a Q8_0 GEMM panel, xor-ing the weight bytes with flip.
//
//go:noescape
func packQ8Asm(dst *byte, src *byte, rb int, kb int, nr int, flip uint32)

// packQ8SplitAsm packs nr (a multiple of 8) block_q8_0 rows (stride rb
// bytes) over kb blocks into a Q8_0 GEMM panel of the q8Split layout.
//
//go:noescape
func packQ8SplitAsm(dst *byte, src *byte, rb int, kb int, nr int)

// quantQ8Asm quantizes nb blocks of 32 floats into A blocks (quantizeA).
//
//go:noescape
func quantQ8Asm(dst *byte, x *float32, nb int)

// sgemm12x32 is sgemm6x16 for a 12x32 tile in zmm registers (AVX-512F).
//
//go:noescape
func sgemm12x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)

// sgemm6x32 is sgemm12x32 for a 6x32 tile: the short last group of rows.
//
//go:noescape
func sgemm6x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)

// sgemm6x16 computes the 6x16 tile c = a . b over depth kc (c += when accum):
// a is 6 rows with stride lda (elements), b a packed panel of kc x 16, c rows
// with stride ldc. Unless pf is nil, it also prefetches pfn cache lines from
// pf and from pf+pfld (bytes) into L2 while it computes.
//
//go:noescape
func sgemm6x16(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool)

// packNTAsm transposes nr (a multiple of 8) rows of src (stride ld) over
// depth kc8 (a multiple of 8) into dst as kc8 groups of nr.
//
//go:noescape
func packNTAsm(dst *float32, src *float32, ld int, kc8 int, nr int)

// cvtF16Asm widens n (a multiple of 8) halves.
//
//go:noescape
func cvtF16Asm(dst *float32, src *byte, n int)

// dequantQ8Asm expands nb block_q8_0 blocks.
//
//go:noescape
func dequantQ8Asm(dst *float32, src *byte, nb int)

// sdotAsm is the dot product of n (a multiple of 8) floats.
//
//go:noescape
func sdotAsm(x *float32, w *float32, n int) float32

// hdotAsm is the dot product of n (a multiple of 8) floats with halves:
// hdotTileAsm's arithmetic.
func hdotAsm(x *float32, w *byte, n int) float32 {
	var out [1]float32
	hdotTileAsm(x, 0, w, 0, n, 1, 1, &out[0])
	return out[0]
}

// q8dotAsm is dotQ8 over nb blocks (bit-identical to the Go version).
//
//go:noescape
func q8dotAsm(xq *int8, xd *float32, w *byte, nb int) float32

// hasQ8DotRows, hasF16DotTile: dotQ8Rows has q8dotRowsAsm, dotF16Tile
// hdotTileAsm.
const (
	hasQ8DotRows  = true
	hasF16DotTile = true
)

// hdotTileAsm is the f16 GEMV kernel: rows x cols dot products (rows of x
// ldx bytes apart, f16 weight rows ldw bytes apart, n%8 == 0) into
// out[8r+c], rows*cols+cols <= 16.
//
//go:noescape
func hdotTileAsm(x *float32, ldx int, w *byte, ldw int, n int, rows int, cols int, out *float32)

// q8dotRowsAsm is q8dotAsm for rows (2..8) rows (xq rows ldq bytes apart,
// their scales interleaved: xdt[8b+r]) into out[0:8], reading the weight
// row once.
//
//go:noescape
func q8dotRowsAsm(xq *int8, ldq int, xdt *float32, w *byte, nb int, rows int, out *float32)

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
