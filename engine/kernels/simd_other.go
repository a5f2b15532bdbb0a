//go:build (!amd64 && !arm64) || purego

package kernels

// No assembly on this platform: the portable code always runs, and these
// stubs are never called.
const (
	hasSIMD = false
	hasF16C = false
)

// machineKernels: tile sizes still shape the portable task split and
// attention chunks.
func machineKernels() (microKernel, q8Kernel) {
	return microKernel{name: "portable", mr: 6, nr: 16}, q8Kernel{name: "portable", mr: 4, nr: 16, kb: q8KB}
}

func simdKernels() (f32 []microKernel, q8 []q8Kernel) { return nil, nil }
func cpuFeatures(impl) []string                       { return nil }

func packQ8Asm(dst *byte, src *byte, rb int, kb int, nr int, flip uint32) { panic("kernels: no SIMD") }
func packQ8SplitAsm(dst *byte, src *byte, rb int, kb int, nr int)         { panic("kernels: no SIMD") }
func quantQ8Asm(dst *byte, x *float32, nb int)                            { panic("kernels: no SIMD") }
func packNTAsm(dst *float32, src *float32, ld int, kc8 int, nr int)       { panic("kernels: no SIMD") }
func cvtF16Asm(dst *float32, src *byte, n int)                            { panic("kernels: no SIMD") }
func dequantQ8Asm(dst *float32, src *byte, nb int)                        { panic("kernels: no SIMD") }
func sdotAsm(x *float32, w *float32, n int) float32                       { panic("kernels: no SIMD") }
func hdotAsm(x *float32, w *byte, n int) float32                          { panic("kernels: no SIMD") }
func q8dotAsm(xq *int8, xd *float32, w *byte, nb int) float32             { panic("kernels: no SIMD") }

const (
	hasQ8DotRows  = false
	hasF16DotTile = false
)

func hdotTileAsm(x *float32, ldx int, w *byte, ldw int, n int, rows int, cols int, out *float32) {
	panic("kernels: no multi-row f16 dot kernel")
}

func q8dotRowsAsm(xq *int8, ldq int, xdt *float32, w *byte, nb int, rows int, out *float32) {
	panic("kernels: no SIMD")
}

func sumAsm(x *float32, n int) float32                   { panic("kernels: no SIMD") }
func sqDiffAsm(x *float32, n int, mean float32) float32  { panic("kernels: no SIMD") }
func normAsm(dst, x *float32, n int, mean, rstd float32) { panic("kernels: no SIMD") }
func mulAddAsm(dst, gamma, beta *float32, n int)         { panic("kernels: no SIMD") }
func mulAsm(dst, gamma *float32, n int)                  { panic("kernels: no SIMD") }
func addAsm(dst, a, b *float32, n int)                   { panic("kernels: no SIMD") }
func scaleAsm(x *float32, n int, s float32)              { panic("kernels: no SIMD") }
func reluAsm(x *float32, n int)                          { panic("kernels: no SIMD") }
func maxAsm(x *float32, n int) float32                   { panic("kernels: no SIMD") }
func expSubAsm(x *float32, n int, m float32) float32     { panic("kernels: no SIMD") }
func geluAsm(x *float32, n int)                          { panic("kernels: no SIMD") }

func prefetchAsm(p *byte, n int) { panic("kernels: no SIMD") }
