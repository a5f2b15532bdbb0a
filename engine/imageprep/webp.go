package imageprep

import (
	"bytes"
	"image"

	"golang.org/x/image/webp"
)

// webpDecode decodes a WebP file. Lossless images come back from
// x/image/webp as NRGBA and are used as they are. Lossy images come back
// as 4:2:0 Y'CbCr planes, which libwebp (and so PIL) turns into RGB with
// BT.601 limited-range coefficients and its own "fancy" upsampler; Go's
// color.YCbCr assumes full-range JFIF and replicates chroma, which is
// off by up to ~40 levels. So the planes are converted here the libwebp way.
func webpDecode(b []byte) (image.Image, error) {
	img, err := webp.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	switch m := img.(type) {
	case *image.YCbCr:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			return webpToNRGBA(m, nil, 0), nil
		}
	case *image.NYCbCrA:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			return webpToNRGBA(&m.YCbCr, m.A, m.AStride), nil
		}
	}
	return img, nil
}

// libwebp's fixed-point YUV->RGB (dsp/yuv.h): 14-bit intermediate
// results from a 16x16->high-16 multiply, descaled by 6 bits.
func multHi(v, coeff int) int { return (v * coeff) >> 8 }

func webpClip8(v int) uint8 {
	const mask = 256<<6 - 1
	if v&^mask == 0 {
		return uint8(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func webpRGB(o []uint8, y, u, v int) {
	o = o[:3]
	o[0] = webpClip8(multHi(y, 19077) + multHi(v, 26149) - 14234)
	o[1] = webpClip8(multHi(y, 19077) - multHi(u, 6419) - multHi(v, 13320) + 8708)
	o[2] = webpClip8(multHi(y, 19077) + multHi(u, 33050) - 17685)
}

// webpToNRGBA converts 4:2:0 planes with libwebp's line-pair upsampler.
func webpToNRGBA(m *image.YCbCr, alpha []uint8, astride int) *image.NRGBA {
	b := m.Rect
	w, h := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	yRow := func(y int) []uint8 { return m.Y[m.YOffset(b.Min.X, b.Min.Y+y):] }
	cRow := func(cy int) ([]uint8, []uint8) {
		off := m.COffset(b.Min.X, b.Min.Y+2*cy)
		return m.Cb[off:], m.Cr[off:]
	}
	out := func(y int) []uint8 { return dst.Pix[y*dst.Stride:] }

	u0, v0 := cRow(0)
	webpLinePair(yRow(0), nil, u0, v0, u0, v0, out(0), nil, w)
	for y := 1; y+1 < h; y += 2 {
		tu, tv := cRow((y - 1) / 2)
		cu, cv := cRow((y + 1) / 2)
		webpLinePair(yRow(y), yRow(y+1), tu, tv, cu, cv, out(y), out(y+1), w)
	}
	if h%2 == 0 && h >= 2 {
		lu, lv := cRow((h - 1) / 2)
		webpLinePair(yRow(h-1), nil, lu, lv, lu, lv, out(h-1), nil, w)
	}
	for y := 0; y < h; y++ {
		row := out(y)
		for x := 0; x < w; x++ {
			a := uint8(0xff)
			if alpha != nil {
				a = alpha[y*astride+x] // the alpha plane starts at Rect.Min
			}
			row[x*4+3] = a
		}
	}
	return dst
}

// webpLinePair converts one or two luma rows (bot may be nil) that lie
// between chroma rows top (above) and cur (below), interpolating chroma
// with weights 9/16, 3/16, 3/16, 1/16 as libwebp's UpsampleRgbLinePair.
func webpLinePair(topY, botY, topU, topV, curU, curV, topDst, botDst []uint8, n int) {
	// tl, t: top chroma at columns x-1, x; l, c: current chroma likewise.
	put := func(dst []uint8, x int, yv uint8, u, v int) { webpRGB(dst[x*4:], int(yv), u, v) }
	tlU, tlV := int(topU[0]), int(topV[0])
	lU, lV := int(curU[0]), int(curV[0])
	put(topDst, 0, topY[0], (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2)
	if botY != nil {
		put(botDst, 0, botY[0], (3*lU+tlU+2)>>2, (3*lV+tlV+2)>>2)
	}
	last := (n - 1) >> 1
	for x := 1; x <= last; x++ {
		tU, tV := int(topU[x]), int(topV[x])
		cU, cV := int(curU[x]), int(curV[x])
		avgU := tlU + tU + lU + cU + 8
		avgV := tlV + tV + lV + cV + 8
		d12U, d12V := (avgU+2*(tU+lU))>>3, (avgV+2*(tV+lV))>>3
		d03U, d03V := (avgU+2*(tlU+cU))>>3, (avgV+2*(tlV+cV))>>3
		put(topDst, 2*x-1, topY[2*x-1], (d12U+tlU)>>1, (d12V+tlV)>>1)
		put(topDst, 2*x, topY[2*x], (d03U+tU)>>1, (d03V+tV)>>1)
		if botY != nil {
			put(botDst, 2*x-1, botY[2*x-1], (d03U+lU)>>1, (d03V+lV)>>1)
			put(botDst, 2*x, botY[2*x], (d12U+cU)>>1, (d12V+cV)>>1)
		}
		tlU, tlV, lU, lV = tU, tV, cU, cV
	}
	if n%2 == 0 {
		put(topDst, n-1, topY[n-1], (3*tlU+lU+2)>>2, (3*tlV+lV+2)>>2)
		if botY != nil {
			put(botDst, n-1, botY[n-1], (3*lU+tlU+2)>>2, (3*lV+tlV+2)>>2)
		}
	}
}
