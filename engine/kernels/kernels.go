// Package kernels holds every hot numeric loop of the engine: matrix products
// for f32, f16 and Q8_0 weights, attention, layer norm, softmax and
// element-wise activations.
//
// Each kernel has a portable Go implementation (the reference, used as the
// test oracle and on machines without SIMD) and an assembly implementation
// behind the same function:
//   - amd64 CPUs with AVX2 and FMA (and F16C for f16 and Q8_0 weights): the
//     GEMM micro-kernel uses AVX-512F when the CPU has it
//     (BLIP2CHAT_NOAVX512=1 keeps AVX2), and the Q8_0 integer GEMM uses
//     AVX-512 VNNI, else AVX-VNNI, else AVX2 (BLIP2CHAT_NOVNNI=1 forces
//     AVX2 for both).
//   - arm64 (NEON is always there): FMLA GEMM, f16 widened by FCVTL, and the
//     Q8_0 integer GEMM with SMMLA (I8MM), else SDOT (DotProd), else plain
//     NEON widening multiplies (BLIP2CHAT_NOI8MM=1, BLIP2CHAT_NODOTPROD=1
//     force the lower ones).
//
// BLIP2CHAT_NOSIMD=1 in the environment at start forces the portable code.
// The choice is made once (machine) and carried by each Pool.
//
// The kernels that split their work over threads (MatMulT, GemmNT, GemmNN,
// Attention, LayerNorm, GELU) are methods of a Pool, which a model owns
// with its thread count; calls from several goroutines are serialised on
// a pool. After the first call at a given size, no kernel allocates. A
// pool's goroutines live until Pool.Close: a goleak check after kernel
// calls on a pool not closed should ignore the top function
// "github.com/blip2chat/blip2chat/engine/kernels.(*Pool).worker".
//
// How the SIMD results relate to the portable ones (all checked by tests):
//   - f32/f16 products (MatMulT, GemmNT, GemmNN) sum in a different order;
//     both stay within 4e-6 * sum_p |x_p w_p| of the exact product.
//   - Q8_0 weights: the activations are quantized per 32-block like ggml
//     (QuantizeRowQ8) and multiplied in integers. With m <= 8 rows (decode
//     GEMV) and with m > 8 rows (integer GEMM: exact int32 sum per block,
//     then acc = fma(f32(sum), dx*dw, acc) block by block, see q8gemm.go)
//     the SIMD and portable code are bit-identical; the GEMM is within
//     (k/32+1) * 2^-24 * sum_p |x_p w_p| of the exact product of the
//     quantized operands. Against f32 activations the quantization costs
//     about 0.5% relative (RMS) on Gaussian activations.
//   - Softmax and LayerNorm: within 2e-6 relative; GELU: within
//     3e-7*|x| + 2 ulp of the exact erf GELU (the portable code uses math.Erf).
//   - On arm64 the Go compiler fuses a*b+c in the portable f32 loops, so
//     their results may differ from amd64's in the last bits (within the
//     same bounds); the Q8_0 paths convert explicitly and stay
//     bit-identical everywhere.
package kernels

import (
	"os"
	"strconv"
	"strings"
)

// DType is the element type of a Matrix.
type DType uint8

// Matrix element types.
const (
	F32  DType = iota // float32, in Matrix.F32
	F16               // IEEE half precision, 2 bytes little endian per element, in Matrix.Raw
	Q8_0              // ggml block_q8_0 (f16 scale + 32 int8) along each row, in Matrix.Raw
)

// String returns "f32", "f16" or "q8_0".
func (t DType) String() string {
	switch t {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case Q8_0:
		return "q8_0"
	}
	return "dtype(" + strconv.Itoa(int(t)) + ")"
}

// Q8_0 block geometry (ggml block_q8_0).
const (
	q8Block      = 32 // elements per block
	q8BlockBytes = 34 // f16 scale + 32 int8
)

// Matrix is a row-major Rows x Cols matrix. A weight is stored [out, in], as
// in PyTorch's nn.Linear, so MatMulT computes x . W^T.
type Matrix struct {
	Type       DType
	Rows, Cols int
	F32        []float32 // Type F32: Rows*Cols values
	Raw        []byte    // Type F16: 2*Rows*Cols bytes; Type Q8_0: Rows*Cols/32*34 bytes (Cols%32 == 0)
	// AnyRows lets 2-8 rows take the GEMM instead of the multi-row GEMV.
	// The GEMV streams the weights once and gives each row the result it
	// would have alone (beams decode as one sequence would), but it is
	// compute-slow: on a matrix that stays in cache (the Q-Former's, for a
	// short text) the GEMM is 4-5x faster. A row's result may then differ
	// in the last bits from the same row alone; the vision side does not
	// mind, the language models do.
	AnyRows bool
}

// check panics with a clear message when m is inconsistent; a malformed
// weight is a programming error of the loader, not bad user input.
func (m *Matrix) check() {
	if m.Rows < 0 || m.Cols < 0 {
		panic("kernels: negative matrix size")
	}
	switch m.Type {
	case F32:
		if len(m.F32) < m.Rows*m.Cols {
			panic("kernels: f32 matrix data shorter than Rows*Cols")
		}
	case F16:
		if len(m.Raw) < 2*m.Rows*m.Cols {
			panic("kernels: f16 matrix data shorter than 2*Rows*Cols bytes")
		}
	case Q8_0:
		if m.Cols%q8Block != 0 {
			panic("kernels: q8_0 matrix Cols not a multiple of 32")
		}
		if len(m.Raw) < m.Rows*(m.Cols/q8Block)*q8BlockBytes {
			panic("kernels: q8_0 matrix data shorter than Rows*Cols/32*34 bytes")
		}
	default:
		panic("kernels: unknown matrix type " + m.Type.String())
	}
}

// microKernel is a GEMM micro-kernel computing an mr x nr tile of C from mr
// strided rows of A and a packed panel of B (kc steps of nr values). Unless
// pf is nil it also prefetches pfn cache lines from pf and from pf+pfld
// (bytes): rows of B the next panel packs.
// half, if not nil, is the same kernel for an mr/2 x nr tile: a short last
// group of at most mr/2 rows runs at the cost of half a tile.
type microKernel struct {
	name   string
	mr, nr int
	fn     func(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld, pfn int, accum bool)
	half   func(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld, pfn int, accum bool)
}

// impl is one implementation of the kernels: the portable Go code (simd
// false), or the assembly with a GEMM micro-kernel and a Q8_0 GEMM kernel.
// The portable code still uses the tile sizes of kern and q8 to split its
// work.
type impl struct {
	simd bool
	kern microKernel
	q8   q8Kernel
}

// machine is this machine's implementation, chosen once at start and never
// changed: the assembly unless BLIP2CHAT_NOSIMD=1 (or the CPU lacks the
// features), with the micro-kernels machineKernels (simd_*.go) picks for the
// CPU and the BLIP2CHAT_NO* switches. Every Pool runs it (the tests make
// pools of each implementation the CPU runs to hold them equal).
var machine = detect()

func detect() impl {
	k, q := machineKernels()
	return impl{simd: hasSIMD && !envSet("BLIP2CHAT_NOSIMD"), kern: k, q8: q}
}

func envSet(name string) bool {
	v := os.Getenv(name)
	return v != "" && v != "0"
}

// Features describes the CPU features the kernels use, e.g. "avx2 fma f16c",
// "avx2 fma f16c avx512f avx512vnni" or "neon fp16 dotprod i8mm",
// followed by " (simd off)" when the portable code is forced, or "portable"
// when the CPU has none of them.
func Features() string {
	f := cpuFeatures(machine)
	if len(f) == 0 {
		return "portable"
	}
	s := strings.Join(f, " ")
	if !machine.simd {
		s += " (simd off)"
	}
	return s
}
