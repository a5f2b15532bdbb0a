package imageprep

import (
	"image"
	"math"
)

// precisionBits is Pillow's fixed-point precision for 8-bit resampling:
// 32 bits minus 8 for the sample minus 2 of headroom, because bicubic
// weights are partly negative and partial sums can exceed one.
const precisionBits = 32 - 8 - 2

// bicubic is Pillow's bicubic kernel (Keys, a = -0.5), support 2.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	// The explicit float64 conversions keep the compiler from fusing
	// multiply-adds, so the weights round exactly as Pillow's C code does.
	if x < 1 {
		return float64(float64(float64((a+2)*x)-(a+3))*x)*x + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(x-5)*x)+8)*x-4) * a
	}
	return 0
}

// taps holds the fixed-point weights of one resampling pass: output
// sample i reads inputs start[i] .. start[i]+n[i]-1 with weights
// w[i*ksize : i*ksize+n[i]].
type taps struct {
	ksize int
	start []int
	n     []int
	w     []int32
}

// computeTaps follows Pillow's precompute_coeffs and
// normalize_coeffs_8bpc for the whole input range (box 0..inSize).
func computeTaps(inSize, outSize int) taps {
	const support0 = 2.0
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := support0 * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	t := taps{
		ksize: ksize,
		start: make([]int, outSize),
		n:     make([]int, outSize),
		w:     make([]int32, outSize*ksize),
	}
	k := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64(float64(xx)+0.5) * scale
		// C's (int) cast truncates toward zero, as Go's conversion does.
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w := bicubic(float64(float64(x+xmin)-center+0.5) * ss)
			k[x] = w
			ww += w
		}
		row := t.w[xx*ksize : xx*ksize+ksize]
		for x := 0; x < xmax; x++ {
			v := k[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				row[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				row[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		t.start[xx] = xmin
		t.n[xx] = xmax
	}
	return t
}

// clip8 turns a fixed-point accumulator into a byte like Pillow's clip8.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizeBicubic resizes the RGB channels of src to w x h exactly as
// Pillow's Image.resize((w, h), Image.BICUBIC) does on an 8-bit RGB image:
// a horizontal pass into a clipped 8-bit intermediate, then a vertical
// pass, each with antialiasing (the kernel widens by the downscale factor)
// and 22-bit fixed-point weights. Alpha is ignored and the result is
// opaque. It panics if w or h is not positive, like image.Rect misuse.
func ResizeBicubic(src *image.NRGBA, w, h int) *image.NRGBA {
	if w <= 0 || h <= 0 {
		panic("imageprep: ResizeBicubic to a non-positive size")
	}
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	if sw == 0 || sh == 0 {
		return dst
	}
	// The current source: 4 bytes per pixel (RGB plus an ignored byte).
	inPix, inStride := src.Pix[src.PixOffset(b.Min.X, b.Min.Y):], src.Stride

	vt := computeTaps(sh, h)
	if sw != w {
		ht := computeTaps(sw, w)
		first := vt.start[0]
		last := vt.start[h-1] + vt.n[h-1]
		tmp := make([]uint8, w*4*(last-first))
		parallelRows(last-first, func(lo, hi int) {
			for y := first + lo; y < first+hi; y++ {
				resampleRow(tmp[(y-first)*w*4:(y-first+1)*w*4], inPix[y*inStride:], &ht)
			}
		})
		for i := range vt.start {
			vt.start[i] -= first
		}
		inPix, inStride = tmp, w*4
	}
	if sh != h {
		parallelRows(h, func(lo, hi int) {
			acc := make([]int32, w*3)
			for yy := lo; yy < hi; yy++ {
				resampleColumn(dst.Pix[yy*dst.Stride:yy*dst.Stride+w*4], inPix, inStride,
					vt.start[yy], vt.w[yy*vt.ksize:yy*vt.ksize+vt.n[yy]], acc)
			}
		})
	} else {
		for y := 0; y < h; y++ {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+w*4], inPix[y*inStride:y*inStride+w*4])
		}
	}
	for i := 3; i < len(dst.Pix); i += 4 {
		dst.Pix[i] = 0xff
	}
	return dst
}

// resampleRow computes one output row of the horizontal pass.
func resampleRow(out, in []uint8, t *taps) {
	for xx := range t.start {
		xmin, n := t.start[xx], t.n[xx]
		k := t.w[xx*t.ksize : xx*t.ksize+n]
		p := in[xmin*4 : (xmin+n)*4]
		r, g, b := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
		for x, w := range k {
			if x*4+2 >= len(p) {
				break // never: len(p) == 4*len(k); lets the compiler drop checks
			}
			r += int32(p[x*4]) * w
			g += int32(p[x*4+1]) * w
			b += int32(p[x*4+2]) * w
		}
		o := out[xx*4 : xx*4+3 : xx*4+3]
		o[0], o[1], o[2] = clip8(r), clip8(g), clip8(b)
	}
}

// resampleColumn computes one output row of the vertical pass: a weighted
// sum of whole input rows, accumulated row by row for cache friendliness.
func resampleColumn(out, in []uint8, stride, ymin int, k []int32, acc []int32) {
	for i := range acc {
		acc[i] = 1 << (precisionBits - 1)
	}
	w := len(acc) / 3
	for y, kw := range k {
		row := in[(ymin+y)*stride : (ymin+y)*stride+w*4]
		for x := 0; x < w; x++ {
			a := acc[x*3 : x*3+3 : x*3+3]
			p := row[x*4 : x*4+3 : x*4+3]
			a[0] += int32(p[0]) * kw
			a[1] += int32(p[1]) * kw
			a[2] += int32(p[2]) * kw
		}
	}
	for x := 0; x < w; x++ {
		out[x*4], out[x*4+1], out[x*4+2] = clip8(acc[x*3]), clip8(acc[x*3+1]), clip8(acc[x*3+2])
	}
}
