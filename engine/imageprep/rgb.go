package imageprep

import (
	"image"
	"image/color"
)

// ToRGB converts img to an opaque RGB image (stored as NRGBA with alpha
// 255) the way Hugging Face's convert_to_rgb does with PIL: an RGB image
// is kept as is; anything else goes to RGBA and is alpha-composited over
// white with Pillow's integer rounding. Grayscale is replicated, palettes
// are looked up, CMYK uses Pillow's cmyk2rgb, and 16-bit samples keep
// their high byte (as Pillow's ";16B" raw modes do).
//
// An opaque *image.NRGBA whose bounds start at 0,0 (what ToRGB returns) is
// returned as is, not copied: the result may be img itself.
//
// One deliberate difference: Pillow clips 16-bit grayscale (mode I;16) to
// 255, turning most such images white; ToRGB keeps the high byte instead.
func ToRGB(img image.Image) *image.NRGBA {
	b := img.Bounds()
	if m, ok := img.(*image.NRGBA); ok && b.Min == (image.Point{}) && opaqueImage(m) {
		return m
	}
	w, h := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	switch m := img.(type) {
	case *image.NRGBA:
		parallelRows(h, func(lo, hi int) {
			for y := lo; y < hi; y++ {
				s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w*4]
				d := dst.Pix[y*dst.Stride:][:w*4]
				if opaque(s) {
					copy(d, s) // compositing an opaque pixel is the identity
					continue
				}
				for x := 0; x < w; x++ {
					composite(d[x*4:x*4+4], s[x*4], s[x*4+1], s[x*4+2], s[x*4+3])
				}
			}
		})
	case *image.RGBA:
		// Go's PNG and BMP decoders return RGBA for opaque truecolor;
		// any partial alpha is un-premultiplied before compositing.
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				r, g, bl, a := s[x*4], s[x*4+1], s[x*4+2], s[x*4+3]
				if a != 0xff {
					c := color.NRGBAModel.Convert(color.RGBA{r, g, bl, a}).(color.NRGBA)
					r, g, bl = c.R, c.G, c.B
				}
				composite(d[x*4:x*4+4], r, g, bl, a)
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				v := s[x]
				d[x*4], d[x*4+1], d[x*4+2], d[x*4+3] = v, v, v, 0xff
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				v := s[x*2]
				d[x*4], d[x*4+1], d[x*4+2], d[x*4+3] = v, v, v, 0xff
			}
		}
	case *image.NRGBA64:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				composite(d[x*4:x*4+4], s[x*8], s[x*8+2], s[x*8+4], s[x*8+6])
			}
		}
	case *image.Paletted:
		var pal [256][4]uint8
		for i := range pal {
			// Indices past the palette read as opaque black, like
			// Pillow's zero-filled palette.
			pal[i] = [4]uint8{0, 0, 0, 0xff}
			if i < len(m.Palette) {
				c := color.NRGBAModel.Convert(m.Palette[i]).(color.NRGBA)
				composite(pal[i][:], c.R, c.G, c.B, c.A)
			}
		}
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				copy(d[x*4:x*4+4], pal[s[x]][:])
			}
		}
	case *image.CMYK:
		for y := 0; y < h; y++ {
			s := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				cmykToRGB(d[x*4:x*4+4], s[x*4], s[x*4+1], s[x*4+2], s[x*4+3])
			}
		}
	default:
		// YCbCr, RGBA64, NYCbCrA and anything else: Go's own color
		// conversion to 8-bit non-premultiplied, then the same composite.
		for y := 0; y < h; y++ {
			d := dst.Pix[y*dst.Stride:]
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				composite(d[x*4:x*4+4], c.R, c.G, c.B, c.A)
			}
		}
	}
	return dst
}

// opaque reports whether every alpha in an NRGBA row is 255.
// opaqueImage reports whether every pixel of m has alpha 255.
func opaqueImage(m *image.NRGBA) bool {
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		if !opaque(m.Pix[m.PixOffset(b.Min.X, y):][:4*b.Dx()]) {
			return false
		}
	}
	return true
}

func opaque(row []uint8) bool {
	for i := 3; i < len(row); i += 4 {
		if row[i] != 0xff {
			return false
		}
	}
	return true
}

// composite writes the pixel (r,g,b,a) alpha-composited over opaque white
// into d, with the integer arithmetic of Pillow's ImagingAlphaComposite
// (7 extra bits of precision, rounded divisions by 255).
func composite(d []uint8, r, g, b, a uint8) {
	d = d[:4]
	if a == 0 {
		d[0], d[1], d[2], d[3] = 0xff, 0xff, 0xff, 0xff
		return
	}
	if a == 0xff {
		// The general formula is the identity here (checked in tests).
		d[0], d[1], d[2], d[3] = r, g, b, 0xff
		return
	}
	const bits = 7
	sa := uint32(a)
	blend := 255 * (255 - sa) // destination alpha is 255
	outa255 := sa*255 + blend
	coef1 := sa * 255 * 255 * (1 << bits) / outa255
	coef2 := 255*(1<<bits) - coef1
	mix := func(s uint8) uint8 {
		t := uint32(s)*coef1 + 255*coef2 + 0x80<<bits
		return uint8((((t >> 8) + t) >> 8) >> bits)
	}
	d[0], d[1], d[2], d[3] = mix(r), mix(g), mix(b), 0xff
}

// cmykToRGB is Pillow's cmyk2rgb: channel = (255-k) - (ink*(255-k))/255
// with the rounded division, on ink values (0 = no ink).
func cmykToRGB(d []uint8, c, m, y, k uint8) {
	d = d[:4]
	nk := 255 - int(k)
	f := func(v uint8) uint8 {
		t := int(v)*nk + 128
		r := nk - ((t>>8)+t)>>8
		if r < 0 {
			return 0
		}
		return uint8(r)
	}
	d[0], d[1], d[2], d[3] = f(c), f(m), f(y), 0xff
}
