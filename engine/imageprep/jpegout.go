package imageprep

import (
	"image"
	"runtime"
	"sync"
)

// libjpeg's islow IDCT (jidctint.c): 13-bit fixed-point constants, two
// extra bits kept between the column and row passes.
const (
	constBits = 13
	pass1Bits = 2

	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_541196100 = 4433
	fix0_765366865 = 6270
	fix0_899976223 = 7373
	fix1_175875602 = 9633
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_562915447 = 20995
	fix3_072711026 = 25172
)

// idctLimit is libjpeg's post-IDCT range-limit table, indexed by the
// centered result masked to 10 bits: it clamps to 0..255 after adding
// 128 and wraps for wildly out-of-range (corrupt) input exactly as
// libjpeg does.
var idctLimit = func() (t [1024]uint8) {
	for i := range t {
		switch {
		case i < 128:
			t[i] = uint8(128 + i)
		case i < 512:
			t[i] = 255
		case i < 896:
			t[i] = 0
		default:
			t[i] = uint8(i - 896)
		}
	}
	return
}()

func descale(x int, n uint) int { return (x + 1<<(n-1)) >> n }

// idct1D is the shared butterfly of both passes: inputs are the eight
// (dequantized or first-pass) values of one column or row; results are
// the sums before the final descale, in output order 0..7.
func idct1D(in0, in1, in2, in3, in4, in5, in6, in7 int) (o [8]int) {
	// Even part.
	z2, z3 := in2, in6
	z1 := (z2 + z3) * fix0_541196100
	tmp2 := z1 + z3*-fix1_847759065
	tmp3 := z1 + z2*fix0_765366865
	tmp0 := (in0 + in4) << constBits
	tmp1 := (in0 - in4) << constBits
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

	// Odd part.
	t0, t1, t2, t3 := in7, in5, in3, in1
	z1 = t0 + t3
	z2 = t1 + t2
	z3 = t0 + t2
	z4 := t1 + t3
	z5 := (z3 + z4) * fix1_175875602
	t0 *= fix0_298631336
	t1 *= fix2_053119869
	t2 *= fix3_072711026
	t3 *= fix1_501321110
	z1 *= -fix0_899976223
	z2 *= -fix2_562915447
	z3 *= -fix1_961570560
	z4 *= -fix0_390180644
	z3 += z5
	z4 += z5
	t0 += z1 + z3
	t1 += z2 + z4
	t2 += z2 + z3
	t3 += z1 + z4

	o[0], o[7] = tmp10+t3, tmp10-t3
	o[1], o[6] = tmp11+t2, tmp11-t2
	o[2], o[5] = tmp12+t1, tmp12-t1
	o[3], o[4] = tmp13+t0, tmp13-t0
	return
}

// idctBlock dequantizes coefficients (natural order) with q and writes
// the 8x8 samples to out with the given stride.
func idctBlock(c *[64]int32, q *[64]int32, out []uint8, stride int) {
	var ws [64]int32
	for col := 0; col < 8; col++ {
		// Dequantization multiplies in C int, as libjpeg does.
		dq := func(r int) int { return int(c[r*8+col] * q[r*8+col]) }
		if c[8+col] == 0 && c[16+col] == 0 && c[24+col] == 0 && c[32+col] == 0 &&
			c[40+col] == 0 && c[48+col] == 0 && c[56+col] == 0 {
			dc := int32(dq(0) << pass1Bits)
			for r := 0; r < 8; r++ {
				ws[r*8+col] = dc
			}
			continue
		}
		o := idct1D(dq(0), dq(1), dq(2), dq(3), dq(4), dq(5), dq(6), dq(7))
		for r := 0; r < 8; r++ {
			ws[r*8+col] = int32(descale(o[r], constBits-pass1Bits))
		}
	}
	for row := 0; row < 8; row++ {
		w := ws[row*8 : row*8+8 : row*8+8]
		dst := out[row*stride : row*stride+8 : row*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := idctLimit[descale(int(w[0]), pass1Bits+3)&1023]
			for i := range dst {
				dst[i] = v
			}
			continue
		}
		o := idct1D(int(w[0]), int(w[1]), int(w[2]), int(w[3]), int(w[4]), int(w[5]), int(w[6]), int(w[7]))
		for i := range dst {
			dst[i] = idctLimit[descale(o[i], constBits+pass1Bits+3)&1023]
		}
	}
}

// parallelRows runs f over [0, n) split into contiguous chunks, one per
// available core.
func parallelRows(n int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), 8, max(1, n/16))
	if workers <= 1 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		lo, hi := n*i/workers, n*(i+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// idctAll turns a progressive image's coefficients into sample planes.
func (d *jpegDecoder) idctAll() {
	for i := range d.comps {
		c := &d.comps[i]
		c.plane = make([]uint8, c.bw*c.bh*64)
		stride := c.bw * 8
		parallelRows(c.bh, func(lo, hi int) {
			var blk [64]int32
			for by := lo; by < hi; by++ {
				for bx := 0; bx < c.bw; bx++ {
					src := c.coefs[(by*c.bw+bx)*64 : (by*c.bw+bx)*64+64]
					for k, v := range src {
						blk[k] = int32(v)
					}
					idctBlock(&blk, &c.quant, c.plane[by*8*stride+bx*8:], stride)
				}
			}
		})
		c.coefs = nil
	}
}

// Upsampling methods, as libjpeg's jinit_upsampler picks them with
// do_fancy_upsampling on (PIL's default).
const (
	upFull = iota
	upH2V1Fancy
	upH1V2Fancy
	upH2V2Fancy
	upBox
)

func (d *jpegDecoder) upMethod(c *jpegComponent) (method, hr, vr int) {
	hr, vr = d.maxH/c.h, d.maxV/c.v
	switch {
	case hr == 1 && vr == 1:
		return upFull, hr, vr
	case hr == 2 && vr == 1 && c.w > 2:
		return upH2V1Fancy, hr, vr
	case hr == 1 && vr == 2:
		return upH1V2Fancy, hr, vr
	case hr == 2 && vr == 2 && c.w > 2:
		return upH2V2Fancy, hr, vr
	}
	return upBox, hr, vr
}

// upRow returns output row y of component c at full resolution (at least
// d.width samples); buf is scratch of at least c.bw*8*4 bytes.
func (d *jpegDecoder) upRow(c *jpegComponent, method, hr, vr, y int, buf []uint8) []uint8 {
	stride := c.bw * 8
	row := func(i int) []uint8 {
		// Rows above the image repeat the first, rows below the last
		// real one (libjpeg's context-row pointers).
		i = min(max(i, 0), c.hgt-1)
		return c.plane[i*stride : i*stride+stride]
	}
	switch method {
	case upFull:
		return row(y)
	case upH2V1Fancy:
		in := row(y)
		n := c.w
		out := buf[:2*n]
		out[0] = in[0]
		out[1] = uint8((int(in[0])*3 + int(in[1]) + 2) >> 2)
		for i := 1; i < n-1; i++ {
			v := int(in[i]) * 3
			out[2*i] = uint8((v + int(in[i-1]) + 1) >> 2)
			out[2*i+1] = uint8((v + int(in[i+1]) + 2) >> 2)
		}
		out[2*n-2] = uint8((int(in[n-1])*3 + int(in[n-2]) + 1) >> 2)
		out[2*n-1] = in[n-1]
		return out
	case upH1V2Fancy:
		near := row(y / 2)
		far, bias := row(y/2-1), 1
		if y%2 == 1 {
			far, bias = row(y/2+1), 2
		}
		out := buf[:c.w]
		for i := range out {
			out[i] = uint8((int(near[i])*3 + int(far[i]) + bias) >> 2)
		}
		return out
	case upH2V2Fancy:
		near := row(y / 2)
		far := row(y/2 - 1)
		if y%2 == 1 {
			far = row(y/2 + 1)
		}
		n := c.w
		out := buf[:2*n]
		cs := func(i int) int { return int(near[i])*3 + int(far[i]) }
		last, this, next := 0, cs(0), cs(1)
		out[0] = uint8((this*4 + 8) >> 4)
		out[1] = uint8((this*3 + next + 7) >> 4)
		last, this = this, next
		for i := 1; i < n-1; i++ {
			next = cs(i + 1)
			out[2*i] = uint8((this*3 + last + 8) >> 4)
			out[2*i+1] = uint8((this*3 + next + 7) >> 4)
			last, this = this, next
		}
		out[2*n-2] = uint8((this*3 + last + 8) >> 4)
		out[2*n-1] = uint8((this*4 + 7) >> 4)
		return out
	}
	in := row(y / vr)
	out := buf[:d.width]
	for x := range out {
		out[x] = in[x/hr]
	}
	return out
}

// Color spaces of the coded components, decided as libjpeg's
// default_decompress_parms does.
const (
	csGray = iota
	csYCbCr
	csRGB
	csCMYK
	csYCCK
)

func (d *jpegDecoder) colorSpace() int {
	switch len(d.comps) {
	case 1:
		return csGray
	case 3:
		switch {
		case d.jfif:
			return csYCbCr
		case d.adobe && d.transform == 0:
			return csRGB
		case d.adobe:
			return csYCbCr
		case d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B':
			return csRGB
		}
		return csYCbCr
	}
	if d.adobe && d.transform != 0 {
		return csYCCK
	}
	return csCMYK
}

// yccTables are libjpeg's jdcolor.c tables (16-bit fixed point).
var crR, cbB, crG, cbG = func() (crR, cbB, crG, cbG [256]int32) {
	fix := func(x float64) int64 { return int64(x*65536 + 0.5) }
	for i := range 256 {
		x := int64(i - 128)
		crR[i] = int32((fix(1.40200)*x + 1<<15) >> 16)
		cbB[i] = int32((fix(1.77200)*x + 1<<15) >> 16)
		crG[i] = int32(-fix(0.71414) * x)
		cbG[i] = int32(-fix(0.34414)*x + 1<<15)
	}
	return
}()

func clamp255(v int32) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// output upsamples and color-converts the planes into the final image.
func (d *jpegDecoder) output() image.Image {
	w, h := d.width, d.height
	cs := d.colorSpace()
	type plan struct{ method, hr, vr int }
	plans := make([]plan, len(d.comps))
	bufLen := 0
	for i := range d.comps {
		c := &d.comps[i]
		m, hr, vr := d.upMethod(c)
		plans[i] = plan{m, hr, vr}
		bufLen = max(bufLen, c.bw*8*hr, w)
	}
	var img image.Image
	var pix []uint8
	var stride int
	switch cs {
	case csGray:
		g := image.NewGray(image.Rect(0, 0, w, h))
		img, pix, stride = g, g.Pix, g.Stride
	case csYCbCr, csRGB:
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		img, pix, stride = m, m.Pix, m.Stride
	default:
		m := image.NewCMYK(image.Rect(0, 0, w, h))
		img, pix, stride = m, m.Pix, m.Stride
	}
	parallelRows(h, func(lo, hi int) {
		bufs := make([][]uint8, len(d.comps))
		rows := make([][]uint8, len(d.comps))
		for i := range bufs {
			bufs[i] = make([]uint8, bufLen)
		}
		for y := lo; y < hi; y++ {
			for i := range d.comps {
				p := plans[i]
				rows[i] = d.upRow(&d.comps[i], p.method, p.hr, p.vr, y, bufs[i])[:w]
			}
			out := pix[y*stride:]
			switch cs {
			case csGray:
				copy(out[:w], rows[0])
			case csRGB:
				r, g, b := rows[0], rows[1], rows[2]
				for x := 0; x < w; x++ {
					o := out[x*4 : x*4+4 : x*4+4]
					o[0], o[1], o[2], o[3] = r[x], g[x], b[x], 0xff
				}
			case csYCbCr:
				yy, cb, cr := rows[0], rows[1], rows[2]
				for x := 0; x < w; x++ {
					o := out[x*4 : x*4+4 : x*4+4]
					Y, Cb, Cr := int32(yy[x]), cb[x], cr[x]
					o[0] = clamp255(Y + crR[Cr])
					o[1] = clamp255(Y + (cbG[Cb]+crG[Cr])>>16)
					o[2] = clamp255(Y + cbB[Cb])
					o[3] = 0xff
				}
			case csCMYK:
				// PIL reads CMYK JPEGs as Adobe-inverted ("CMYK;I").
				for x := 0; x < w; x++ {
					o := out[x*4 : x*4+4 : x*4+4]
					o[0], o[1], o[2], o[3] = 255-rows[0][x], 255-rows[1][x], 255-rows[2][x], 255-rows[3][x]
				}
			case csYCCK:
				// libjpeg's ycck_cmyk_convert gives 255-R, 255-G, 255-B, K;
				// inverting that as PIL does leaves R, G, B and 255-K.
				yy, cb, cr, k := rows[0], rows[1], rows[2], rows[3]
				for x := 0; x < w; x++ {
					o := out[x*4 : x*4+4 : x*4+4]
					Y, Cb, Cr := int32(yy[x]), cb[x], cr[x]
					o[0] = clamp255(Y + crR[Cr])
					o[1] = clamp255(Y + (cbG[Cb]+crG[Cr])>>16)
					o[2] = clamp255(Y + cbB[Cb])
					o[3] = 255 - k[x]
				}
			}
		}
	})
	return img
}
