package imageprep

// A JPEG decoder that reproduces what PIL gets from libjpeg(-turbo) with
// its default settings: the "islow" integer IDCT, "fancy" (triangle
// filter) chroma upsampling, and the fixed-point YCbCr->RGB tables.
// Go's image/jpeg uses a different IDCT, replicates chroma, and converts
// with another formula, which moves a third of the resized pixels.
//
// Supported: baseline and extended sequential Huffman (SOF0, SOF1),
// progressive Huffman (SOF2), 8-bit samples, 1, 3 or 4 components,
// restart markers, scans without DHT (standard tables, as libjpeg-turbo).
// Refused as unsupported: lossless, hierarchical and 12-bit JPEGs (PIL
// refuses them too) and arithmetic coding (rare; libjpeg-turbo would
// decode it). Like PIL, a file must reach its EOI marker.

import (
	"fmt"
	"image"
	"image/color"
)

// zigzag maps coefficient order in the stream to natural (row-major)
// order. The 16 extra entries absorb run lengths that overshoot 63 in
// corrupt data, as libjpeg's table does.
var zigzag = [80]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
}

// jpegError carries a decoding failure out of the entropy decoder by
// panic; decode recovers it. Truncation uses errTruncated.
type jpegError struct{ err error }

func jpegFail(format string, a ...any) {
	panic(jpegError{fmt.Errorf(format, a...)})
}

func jpegUnsupported(format string, a ...any) {
	panic(jpegError{unsupportedError(fmt.Sprintf(format, a...))})
}

func jpegTruncated() { panic(jpegError{errTruncated}) }

// huffTable is a decoding table (JPEG spec F.2.2.3) with a 9-bit lookup.
type huffTable struct {
	defined bool
	lookup  [512]uint16 // (length<<8 | value); 0 means "longer than 9 bits"
	maxcode [18]int32   // largest code of each length, -1 if none
	valptr  [17]int32   // index in vals of the first code of each length
	mincode [17]int32
	vals    [256]uint8
}

const lookupBits = 9

// build fills the table from the DHT counts and symbols, refusing
// over-subscribed code sets as libjpeg does.
func (t *huffTable) build(counts [16]int, vals []uint8, isDC bool) {
	*t = huffTable{defined: true}
	copy(t.vals[:], vals)
	if isDC {
		for _, v := range vals {
			if v > 15 {
				jpegFail("bad Huffman table (DC symbol %d)", v)
			}
		}
	}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		if n == 0 {
			t.maxcode[l] = -1
		} else {
			t.valptr[l] = k
			t.mincode[l] = code
			code += n
			k += n
			t.maxcode[l] = code - 1
			if code > 1<<l {
				jpegFail("bad Huffman table (over-subscribed)")
			}
			if l <= lookupBits {
				for c := t.mincode[l]; c <= t.maxcode[l]; c++ {
					v := t.vals[t.valptr[l]+c-t.mincode[l]]
					base := c << (lookupBits - l)
					for j := int32(0); j < 1<<(lookupBits-l); j++ {
						t.lookup[base+j] = uint16(l)<<8 | uint16(v)
					}
				}
			}
		}
		code <<= 1
	}
	t.maxcode[17] = 1 << 30
}

// bitReader reads entropy-coded bits, removing stuffed zero bytes. At a
// marker or the end of the data it supplies zero bits, as libjpeg does;
// using any of them sets short (after a marker) or panics with
// errTruncated (at the end of the file).
type bitReader struct {
	data  []byte
	pos   int
	acc   uint64 // the low n bits are valid, most significant first
	n     int
	stop  bool // reached a marker or the end of data
	short bool // zero bits past a marker were used in this restart segment
}

func (r *bitReader) reset(data []byte, pos int) {
	*r = bitReader{data: data, pos: pos}
}

func (r *bitReader) fill() {
	for r.n <= 56 && !r.stop {
		if r.pos >= len(r.data) {
			r.stop = true
			return
		}
		b := r.data[r.pos]
		if b == 0xff {
			// FF 00 is a data byte; FF followed by more FFs then 00 too
			// (libjpeg discards fill bytes); anything else is a marker.
			p := r.pos + 1
			for p < len(r.data) && r.data[p] == 0xff {
				p++
			}
			if p >= len(r.data) {
				r.stop = true
				return
			}
			if r.data[p] != 0 {
				r.stop = true // leave pos on the marker
				return
			}
			r.pos = p + 1
		} else {
			r.pos++
		}
		r.acc = r.acc<<8 | uint64(b)
		r.n += 8
	}
}

// atEOF says whether the reader stopped at the end of the data rather
// than at a marker.
func (r *bitReader) atEOF() bool {
	p := r.pos
	for p < len(r.data) && r.data[p] == 0xff {
		p++
	}
	return p >= len(r.data)
}

// starve handles a request for more bits than remain.
func (r *bitReader) starve() {
	if r.atEOF() {
		jpegTruncated()
	}
	r.short = true
}

func (r *bitReader) peek(k int) uint32 {
	if r.n < k {
		r.fill()
		if r.n < k {
			return uint32(r.acc<<(k-r.n)) & (1<<k - 1)
		}
	}
	return uint32(r.acc>>(r.n-k)) & (1<<k - 1)
}

func (r *bitReader) skip(k int) {
	if k > r.n {
		r.starve()
		r.acc, r.n = 0, 0
		return
	}
	r.n -= k
	r.acc &= 1<<r.n - 1
}

func (r *bitReader) bits(k int) int32 {
	if k == 0 {
		return 0
	}
	v := r.peek(k)
	r.skip(k)
	return int32(v)
}

func (r *bitReader) bit() bool { return r.bits(1) != 0 }

// receiveExtend reads an s-bit magnitude and sign-extends it (F.2.2.1).
func (r *bitReader) receiveExtend(s int) int32 {
	v := r.bits(s)
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

func (r *bitReader) decode(t *huffTable) int {
	if e := t.lookup[r.peek(lookupBits)]; e != 0 {
		r.skip(int(e >> 8))
		return int(e & 0xff)
	}
	for l := lookupBits + 1; l <= 16; l++ {
		c := int32(r.peek(l))
		if c <= t.maxcode[l] {
			r.skip(l)
			return int(t.vals[t.valptr[l]+c-t.mincode[l]])
		}
	}
	if r.short || r.atEOF() && r.n < 16 {
		// The "code" is made of padding zeros.
		r.starve()
		r.skip(r.n)
		return 0
	}
	jpegFail("bad Huffman code")
	return 0
}

// jpegComponent is one color channel of the frame.
type jpegComponent struct {
	id, h, v, tq int
	w, hgt       int // downsampled size: ceil(width*h/maxH) x ceil(height*v/maxV)
	bw, bh       int // allocated blocks per row and column (MCU-padded)
	plane        []uint8
	coefs        []int16 // progressive only: 64 per block
	quant        [64]int32
	latched      bool
	dcPred       int32
	td, ta       int // Huffman table selectors of the current scan
}

type jpegDecoder struct {
	data        []byte
	width       int
	height      int
	progressive bool
	sawFrame    bool
	comps       []jpegComponent
	maxH, maxV  int
	mcusX       int
	mcusY       int
	qt          [4][64]int32
	qtDefined   [4]bool
	dc, ac      [4]huffTable
	restart     int
	jfif        bool
	adobe       bool
	transform   int
	scans       int
	br          bitReader
	eobrun      int32
	pending     []pendingBlock // blocks of the current row (sequential)
}

const maxJPEGScans = 1000

// run walks the markers up to and including the frame header or, when
// full is set, decodes every scan until EOI.
func (d *jpegDecoder) run(full bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			e, ok := p.(jpegError)
			if !ok {
				panic(p)
			}
			err = e.err
		}
	}()
	data := d.data
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		jpegFail("missing SOI marker")
	}
	pos := 2
	for {
		// Find the next marker, skipping stray bytes and fill bytes.
		for pos < len(data) && data[pos] != 0xff {
			pos++
		}
		for pos < len(data) && data[pos] == 0xff {
			pos++
		}
		if pos >= len(data) {
			jpegTruncated()
		}
		m := data[pos]
		pos++
		if m == 0 || m >= 0xd0 && m <= 0xd7 || m == 0x01 {
			continue // stuffed byte, stray RST or TEM: no segment
		}
		if m == 0xd9 { // EOI
			if !d.sawFrame {
				jpegFail("no image frame before EOI")
			}
			if d.scans == 0 {
				jpegFail("no image data")
			}
			return nil
		}
		if pos+2 > len(data) {
			jpegTruncated()
		}
		n := int(data[pos])<<8 | int(data[pos+1])
		if n < 2 {
			jpegFail("bad marker length")
		}
		if pos+n > len(data) {
			jpegTruncated()
		}
		seg := data[pos+2 : pos+n]
		pos += n
		switch {
		case m == 0xc0 || m == 0xc1 || m == 0xc2:
			if d.sawFrame {
				jpegFail("more than one frame")
			}
			d.readFrame(seg, m == 0xc2)
			if !full {
				return nil
			}
			if err := checkSize(d.width, d.height, MaxPixels); err != nil {
				panic(jpegError{err})
			}
			d.allocate()
		case m == 0xc3 || m >= 0xc5 && m <= 0xc7 || m >= 0xc9 && m <= 0xcb || m >= 0xcd && m <= 0xcf:
			jpegUnsupported("unsupported JPEG process (SOF%d: %s)", m-0xc0, sofName(m))
		case m == 0xc4:
			d.readDHT(seg)
		case m == 0xdb:
			d.readDQT(seg)
		case m == 0xdd:
			if len(seg) != 2 {
				jpegFail("bad DRI marker")
			}
			d.restart = int(seg[0])<<8 | int(seg[1])
		case m == 0xda:
			if !d.sawFrame {
				jpegFail("scan before frame header")
			}
			if !full {
				return nil
			}
			d.scans++
			if d.scans > maxJPEGScans {
				jpegFail("more than %d scans", maxJPEGScans)
			}
			// PIL's decoder reads on to EOI (jpeg_finish_decompress),
			// so a file that ends or turns to junk after the last scan
			// is refused there too; this decoder does the same.
			pos = d.readScan(seg, pos)
		case m == 0xdc:
			jpegUnsupported("unsupported JPEG feature (DNL marker)")
		case m == 0xe0:
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				d.jfif = true
			}
		case m == 0xee:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe = true
				d.transform = int(seg[11])
			}
		default:
			// APPn, COM and others carry nothing the pixels depend on.
		}
	}
}

func sofName(m byte) string {
	switch m {
	case 0xc3:
		return "lossless"
	case 0xc5, 0xc6, 0xc7:
		return "hierarchical"
	}
	return "arithmetic coding"
}

func (d *jpegDecoder) readFrame(seg []byte, progressive bool) {
	if len(seg) < 6 {
		jpegFail("bad SOF marker")
	}
	if seg[0] != 8 {
		jpegUnsupported("unsupported JPEG sample precision %d (only 8-bit)", seg[0])
	}
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	nc := int(seg[5])
	if d.height == 0 {
		jpegUnsupported("unsupported JPEG feature (height given by a DNL marker)")
	}
	if nc != 1 && nc != 3 && nc != 4 {
		jpegUnsupported("unsupported JPEG with %d color components", nc)
	}
	if len(seg) != 6+3*nc {
		jpegFail("bad SOF marker length")
	}
	d.progressive = progressive
	d.sawFrame = true
	d.comps = make([]jpegComponent, nc)
	d.maxH, d.maxV = 1, 1
	for i := range d.comps {
		c := &d.comps[i]
		c.id = int(seg[6+3*i])
		c.h = int(seg[7+3*i] >> 4)
		c.v = int(seg[7+3*i] & 15)
		c.tq = int(seg[8+3*i])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			jpegFail("bad sampling factors %dx%d", c.h, c.v)
		}
		if c.tq > 3 {
			jpegFail("bad quantization table selector %d", c.tq)
		}
		for j := 0; j < i; j++ {
			if d.comps[j].id == c.id {
				jpegFail("duplicate component id %d", c.id)
			}
		}
		d.maxH = max(d.maxH, c.h)
		d.maxV = max(d.maxV, c.v)
	}
}

// allocate sets up component planes once the image size is accepted.
func (d *jpegDecoder) allocate() {
	d.mcusX = (d.width + 8*d.maxH - 1) / (8 * d.maxH)
	d.mcusY = (d.height + 8*d.maxV - 1) / (8 * d.maxV)
	for i := range d.comps {
		c := &d.comps[i]
		if d.maxH%c.h != 0 || d.maxV%c.v != 0 {
			// libjpeg cannot do it either (JERR_FRACT_SAMPLE_NOTIMPL).
			jpegUnsupported("unsupported JPEG sampling factors (%dx%d with maximum %dx%d)", c.h, c.v, d.maxH, d.maxV)
		}
		c.w = (d.width*c.h + d.maxH - 1) / d.maxH
		c.hgt = (d.height*c.v + d.maxV - 1) / d.maxV
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
		if d.progressive {
			c.coefs = make([]int16, c.bw*c.bh*64)
		} else {
			c.plane = make([]uint8, c.bw*c.bh*64)
			// Blocks no scan reaches decode as all-zero coefficients,
			// which is mid-gray after the IDCT.
			for j := range c.plane {
				c.plane[j] = 128
			}
		}
	}
}

func (d *jpegDecoder) readDQT(seg []byte) {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&15
		if tq > 3 || pq > 1 {
			jpegFail("bad DQT marker")
		}
		size := 64 * (1 + int(pq))
		if len(seg) < 1+size {
			jpegFail("bad DQT marker length")
		}
		for i := 0; i < 64; i++ {
			var v int32
			if pq == 0 {
				v = int32(seg[1+i])
			} else {
				v = int32(seg[1+2*i])<<8 | int32(seg[2+2*i])
			}
			d.qt[tq][zigzag[i]] = v
		}
		d.qtDefined[tq] = true
		seg = seg[1+size:]
	}
}

func (d *jpegDecoder) readDHT(seg []byte) {
	for len(seg) > 0 {
		if len(seg) < 17 {
			jpegFail("bad DHT marker")
		}
		tc, th := seg[0]>>4, seg[0]&15
		if tc > 1 || th > 3 {
			jpegFail("bad DHT marker")
		}
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if total > 256 || len(seg) < 17+total {
			jpegFail("bad DHT marker length")
		}
		if tc == 0 {
			d.dc[th].build(counts, seg[17:17+total], true)
		} else {
			d.ac[th].build(counts, seg[17:17+total], false)
		}
		seg = seg[17+total:]
	}
}

// readScan decodes one scan whose entropy-coded data starts at pos and
// returns the position of the marker that ends it.
func (d *jpegDecoder) readScan(seg []byte, pos int) int {
	if len(seg) < 1 {
		jpegFail("bad SOS marker")
	}
	ns := int(seg[0])
	if ns < 1 || ns > 4 || len(seg) != 4+2*ns {
		jpegFail("bad SOS marker")
	}
	comps := make([]*jpegComponent, ns)
	blocks := 0
	for i := 0; i < ns; i++ {
		id := int(seg[1+2*i])
		var c *jpegComponent
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			jpegFail("scan names unknown component %d", id)
		}
		for j := 0; j < i; j++ {
			if comps[j] == c {
				jpegFail("scan names component %d twice", id)
			}
		}
		c.td, c.ta = int(seg[2+2*i]>>4), int(seg[2+2*i]&15)
		if c.td > 3 || c.ta > 3 {
			jpegFail("bad Huffman table selector")
		}
		if !c.latched {
			// libjpeg copies a component's quantization table when the
			// component first appears in a scan.
			if !d.qtDefined[c.tq] {
				jpegFail("missing quantization table %d", c.tq)
			}
			c.quant = d.qt[c.tq]
			c.latched = true
		}
		comps[i] = c
		blocks += c.h * c.v
	}
	if ns > 1 && blocks > 10 {
		jpegFail("too many blocks in an MCU")
	}
	ss, se := int(seg[1+2*ns]), int(seg[2+2*ns])
	ah, al := int(seg[3+2*ns]>>4), int(seg[3+2*ns]&15)
	if d.progressive {
		bad := ss > se || se > 63 || ah > 13 || al > 13
		if ss == 0 {
			bad = bad || se != 0
		} else {
			bad = bad || ns != 1
		}
		if bad {
			jpegFail("bad progressive scan parameters")
		}
	} else if ss != 0 || se != 63 || ah != 0 || al != 0 {
		// libjpeg only warns here; the values are not used.
		ss, se, ah, al = 0, 63, 0, 0
	}
	for _, c := range comps {
		needDC := !d.progressive || ss == 0 && ah == 0
		needAC := !d.progressive || ss > 0
		if needDC && !d.dc[c.td].defined {
			d.stdTable(&d.dc[c.td], 0, c.td)
		}
		if needAC && !d.ac[c.ta].defined {
			d.stdTable(&d.ac[c.ta], 1, c.ta)
		}
		c.dcPred = 0
	}
	d.eobrun = 0
	d.br.reset(d.data, pos)

	// The MCU grid: interleaved scans use the frame's MCUs; a scan of one
	// component walks that component's blocks one at a time.
	var mx, my int
	if ns == 1 {
		c := comps[0]
		mx, my = (c.w+7)/8, (c.hgt+7)/8
	} else {
		mx, my = d.mcusX, d.mcusY
	}
	// Sequential scans hand each decoded row of blocks to a goroutine
	// for the IDCT while the next row is entropy-decoded.
	var pipe *idctPipe
	if !d.progressive {
		pipe = newIDCTPipe()
		defer pipe.close()
	}
	mcu := 0
	for y := 0; y < my; y++ {
		if pipe != nil {
			d.pending = pipe.next()
		}
		for x := 0; x < mx; x++ {
			if d.restart > 0 && mcu > 0 && mcu%d.restart == 0 {
				d.restartMarker(comps)
			}
			mcu++
			if ns == 1 {
				d.decodeBlock(comps[0], x, y, ss, se, ah, al)
				continue
			}
			for _, c := range comps {
				for by := 0; by < c.v; by++ {
					for bx := 0; bx < c.h; bx++ {
						d.decodeBlock(c, x*c.h+bx, y*c.v+by, ss, se, ah, al)
					}
				}
			}
		}
		if pipe != nil {
			pipe.submit(d.pending)
			d.pending = nil
		}
	}
	return d.br.pos
}

// pendingBlock is a decoded block of a sequential scan awaiting its IDCT.
type pendingBlock struct {
	c    *jpegComponent
	bx   int
	by   int
	coef [64]int32
}

// idctPipe runs IDCTs on one goroutine, with two row buffers in flight.
type idctPipe struct {
	jobs chan []pendingBlock
	free chan []pendingBlock
	done chan struct{}
}

func newIDCTPipe() *idctPipe {
	p := &idctPipe{jobs: make(chan []pendingBlock, 2), free: make(chan []pendingBlock, 2), done: make(chan struct{})}
	p.free <- nil
	p.free <- nil
	go func() {
		defer close(p.done)
		for row := range p.jobs {
			for i := range row {
				b := &row[i]
				c := b.c
				idctBlock(&b.coef, &c.quant, c.plane[(b.by*8)*(c.bw*8)+b.bx*8:], c.bw*8)
			}
			p.free <- row[:0]
		}
	}()
	return p
}

func (p *idctPipe) next() []pendingBlock      { return <-p.free }
func (p *idctPipe) submit(row []pendingBlock) { p.jobs <- row }

// close waits for the outstanding IDCTs; it also runs when decoding
// panics with a jpegError, so the goroutine never leaks.
func (p *idctPipe) close() {
	close(p.jobs)
	<-p.done
}

// stdTable installs the standard table for a selector no DHT defined,
// as libjpeg-turbo does (only selectors 0 and 1 have one).
func (d *jpegDecoder) stdTable(t *huffTable, class, sel int) {
	if sel > 1 {
		jpegFail("missing Huffman table %d", sel)
	}
	spec := &stdHuff[class][sel]
	t.build(spec.counts, []byte(spec.vals), class == 0)
}

// restartMarker handles the boundary between restart intervals.
func (d *jpegDecoder) restartMarker(comps []*jpegComponent) {
	r := &d.br
	// Discard buffered bits and any bytes before the next marker.
	p := r.pos
	for {
		for p < len(r.data) && r.data[p] != 0xff {
			p++
		}
		q := p
		for q < len(r.data) && r.data[q] == 0xff {
			q++
		}
		if q >= len(r.data) {
			jpegTruncated()
		}
		if r.data[q] == 0 {
			p = q + 1
			continue
		}
		if r.data[q] >= 0xd0 && r.data[q] <= 0xd7 {
			r.reset(r.data, q+1)
		} else {
			// Some other marker: data is missing; the rest of this
			// scan decodes as zeros and the marker is read afterwards.
			r.reset(r.data, p)
			r.stop, r.short = true, true
		}
		break
	}
	for _, c := range comps {
		c.dcPred = 0
	}
	d.eobrun = 0
}

// decodeBlock reads one block of a scan at block position (bx, by) of
// component c.
func (d *jpegDecoder) decodeBlock(c *jpegComponent, bx, by, ss, se, ah, al int) {
	r := &d.br
	if !d.progressive {
		if bx >= c.bw || by >= c.bh {
			return
		}
		d.pending = append(d.pending, pendingBlock{c: c, bx: bx, by: by})
		blk := &d.pending[len(d.pending)-1].coef
		if !r.short {
			dc := &d.dc[c.td]
			ac := &d.ac[c.ta]
			s := r.decode(dc)
			var diff int32
			if s != 0 {
				diff = r.receiveExtend(s)
			}
			c.dcPred += diff
			blk[0] = int32(int16(c.dcPred))
			for k := 1; k < 64; k++ {
				rs := r.decode(ac)
				run, s := rs>>4, rs&15
				if s != 0 {
					k += run
					blk[zigzag[k]] = int32(int16(r.receiveExtend(s)))
				} else {
					if run != 15 {
						break
					}
					k += 15
				}
			}
		}
		return
	}
	if r.short || bx >= c.bw || by >= c.bh {
		return
	}
	blk := c.coefs[(by*c.bw+bx)*64 : (by*c.bw+bx)*64+64]
	switch {
	case ss == 0 && ah == 0: // DC first
		s := r.decode(&d.dc[c.td])
		var diff int32
		if s != 0 {
			diff = r.receiveExtend(s)
		}
		c.dcPred += diff
		blk[0] = int16(c.dcPred << al)
	case ss == 0: // DC refinement
		if r.bit() {
			blk[0] |= int16(1 << al)
		}
	case ah == 0: // AC first
		if d.eobrun > 0 {
			d.eobrun--
			return
		}
		ac := &d.ac[c.ta]
		for k := ss; k <= se; k++ {
			rs := r.decode(ac)
			run, s := rs>>4, rs&15
			if s != 0 {
				k += run
				blk[zigzag[k]] = int16(r.receiveExtend(s) << al)
			} else {
				if run != 15 {
					d.eobrun = 1<<run - 1
					if run != 0 {
						d.eobrun += r.bits(run)
					}
					break
				}
				k += 15
			}
		}
	default: // AC refinement
		d.refineAC(blk, &d.ac[c.ta], ss, se, al)
	}
}

// refineAC is the successive-approximation AC refinement of G.1.2.3,
// in libjpeg's formulation.
func (d *jpegDecoder) refineAC(blk []int16, ac *huffTable, ss, se, al int) {
	r := &d.br
	p1 := int16(1) << al
	m1 := int16(-1) << al
	k := ss
	if d.eobrun == 0 {
		for ; k <= se; k++ {
			rs := r.decode(ac)
			run, s := rs>>4, rs&15
			var val int16
			if s != 0 {
				// s should be 1; libjpeg warns and goes on otherwise.
				if r.bit() {
					val = p1
				} else {
					val = m1
				}
			} else if run != 15 {
				d.eobrun = 1 << run
				if run != 0 {
					d.eobrun += r.bits(run)
				}
				break
			}
			for ; k <= se; k++ {
				z := &blk[zigzag[k]]
				if *z != 0 {
					if r.bit() && *z&p1 == 0 {
						if *z >= 0 {
							*z += p1
						} else {
							*z += m1
						}
					}
				} else {
					run--
					if run < 0 {
						break
					}
				}
			}
			if val != 0 {
				blk[zigzag[min(k, 79)]] = val
			}
		}
	}
	if d.eobrun > 0 {
		for ; k <= se; k++ {
			z := &blk[zigzag[k]]
			if *z != 0 && r.bit() && *z&p1 == 0 {
				if *z >= 0 {
					*z += p1
				} else {
					*z += m1
				}
			}
		}
		d.eobrun--
	}
}

// Decoded output and color conversion.

// jpegConfig reads the frame header only.
func jpegConfig(b []byte) (image.Config, error) {
	d := &jpegDecoder{data: b}
	if err := d.run(false); err != nil {
		return image.Config{}, err
	}
	if !d.sawFrame {
		return image.Config{}, errTruncated
	}
	var m color.Model
	switch len(d.comps) {
	case 1:
		m = color.GrayModel
	case 3:
		m = color.RGBAModel
	default:
		m = color.CMYKModel
	}
	return image.Config{ColorModel: m, Width: d.width, Height: d.height}, nil
}

// jpegDecode decodes the whole image: *image.Gray for one component,
// *image.NRGBA (opaque RGB) for three, *image.CMYK (ink amounts, with the
// Adobe inversion PIL assumes) for four.
func jpegDecode(b []byte) (image.Image, error) {
	d := &jpegDecoder{data: b}
	if err := d.run(true); err != nil {
		return nil, err
	}
	if d.progressive {
		d.idctAll()
	}
	return d.output(), nil
}
