//go:build !amd64 || purego

package kernels

// No assembly on this platform: the portable code always runs, and these
// stubs are never called.
const (
	hasSIMD    = false
	hasF16C    = false
	hasAVX512  = false
	hasVNNI512 = false
	hasAVXVNNI = false
)

func q8gemmAVXVNNI6x16(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool) {
	panic("kernels: no SIMD")
}

func q8gemmVNNI6x32(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool) {
	panic("kernels: no SIMD")
}
func q8gemmAVX2x4x16(nb int, a *byte, lda int, b *byte, c *float32, ldc int, pf *byte, accum bool) {
	panic("kernels: no SIMD")
}
func packQ8Asm(dst *byte, src *byte, rb int, kb int, nr int, flip uint32) { panic("kernels: no SIMD") }
func quantQ8Asm(dst *byte, x *float32, nb int)                            { panic("kernels: no SIMD") }
func packQ8SplitAsm(dst *byte, src *byte, rb int, kb int, nr int)         { panic("kernels: no SIMD") }

func sgemm6x16(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool) {
	panic("kernels: no SIMD")
}
func packNTAsm(dst *float32, src *float32, ld int, kc8 int, nr int) { panic("kernels: no SIMD") }
func sgemm12x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool) {
	panic("kernels: no SIMD")
}
func sgemm6x32(kc int, a *float32, lda int, b *float32, c *float32, ldc int, pf *byte, pfld int, pfn int, accum bool) {
	panic("kernels: no SIMD")
}
func cvtF16Asm(dst *float32, src *byte, n int)                { panic("kernels: no SIMD") }
func dequantQ8Asm(dst *float32, src *byte, nb int)            { panic("kernels: no SIMD") }
func sdotAsm(x *float32, w *float32, n int) float32           { panic("kernels: no SIMD") }
func hdotAsm(x *float32, w *byte, n int) float32              { panic("kernels: no SIMD") }
func q8dotAsm(xq *int8, xd *float32, w *byte, nb int) float32 { panic("kernels: no SIMD") }

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
