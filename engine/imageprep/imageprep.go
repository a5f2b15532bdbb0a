// Package imageprep turns an image file into the pixel values a BLIP-2
// vision encoder expects, reproducing the reference pipeline
// (PIL decode -> convert_to_rgb -> resize BICUBIC -> rescale -> normalize)
// byte for byte where PIL's arithmetic is known.
//
// JPEG is decoded by this package's own decoder, which follows libjpeg's
// integer IDCT, "fancy" chroma upsampling and color conversion as PIL uses
// them. PNG, GIF, WebP and BMP use the Go decoders (golang.org/x/image for
// WebP and BMP), with lossy WebP's Y'CbCr converted the way libwebp does.
// The fixtures in testdata (see testdata/gen.py) pin every path to PIL's
// output byte for byte.
package imageprep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"io"
	"strconv"
	"strings"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// MaxPixels is the largest image (width*height) this package decodes.
// Larger images are refused from their header, before any pixel memory
// is allocated.
const MaxPixels = 100_000_000

// Options says how to turn an image into model input; it mirrors the
// fields of a Hugging Face image processor config.
//
// Callers mapping a processor config with do_rescale=false should pass
// RescaleFactor 1, and with do_normalize=false Mean 0 and Std 1.
type Options struct {
	Width, Height int        // target size of the bicubic resize
	Mean, Std     [3]float32 // per-channel normalization
	RescaleFactor float32    // multiplies the 0..255 samples first
}

// DefaultOptions returns BLIP-2's preprocessing: 224x224, CLIP mean and
// standard deviation, samples scaled by 1/255.
func DefaultOptions() Options {
	return Options{
		Width:         224,
		Height:        224,
		Mean:          [3]float32{0.48145466, 0.4578275, 0.40821073},
		Std:           [3]float32{0.26862954, 0.26130258, 0.27577711},
		RescaleFactor: 1.0 / 255,
	}
}

// MaxFileBytes is the largest image file Load and Decode read: MaxPixels
// pixels stored uncompressed at the deepest sample type a supported format
// has (16-bit RGBA PNG, 8 bytes a pixel), plus a quarter for the format's
// framing. No image this package would decode needs more; anything longer
// (a device such as /dev/zero, a multi-gigabyte file named .jpg) is refused
// rather than read into memory.
const MaxFileBytes = MaxPixels * 8 * 5 / 4

// readChunk is how much Load reads between two checks of its context.
const readChunk = 4 << 20

// Load reads and decodes the image file at path; see Decode. Only a regular
// file is read: a FIFO, a device or a folder is refused when opened (never
// waited on), a file larger than MaxFileBytes from its size. Load returns
// ctx's error as soon as ctx is done, while reading or decoding. Errors
// name path (quoted when it holds control characters).
func Load(ctx context.Context, path string) (image.Image, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, err // the error names the file
	}
	defer f.Close()
	name := safefile.Name(path)
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, err := readLimited(ctx, f, st.Size(), MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return interruptible(ctx, func() (image.Image, error) { return decodeBytes(data, name, MaxPixels) })
}

// interruptible runs f, which takes no context (the image decoders, a
// stage of PixelValues: up to seconds on a 100-megapixel image), and
// returns ctx's error as soon as ctx is done, f then finishing unseen on
// memory of its own.
func interruptible[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// readLimited reads r to its end in chunks, checking ctx between them:
// size is what the file says it holds (the buffer's first size), limit the
// most it may hold. The file may grow while it is read, so the limit is
// checked on what is read too.
func readLimited(ctx context.Context, r io.Reader, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%s is larger than any image of at most %d megapixels (the limit is %s)",
			byteSize(size), MaxPixels/1_000_000, byteSize(limit))
	}
	buf := make([]byte, 0, max(size, 0)+1)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), len(buf)+readChunk)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, fmt.Errorf("more than %s of data, larger than any image of at most %d megapixels", byteSize(limit), MaxPixels/1_000_000)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// byteSize is a size for a message: "1.2 GB", "17 MB", "512 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', 1, 64) + " GB"
	case n >= 1e6:
		return strconv.FormatInt(n/1e6, 10) + " MB"
	case n >= 1e3:
		return strconv.FormatInt(n/1e3, 10) + " KB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// PixelValues returns the model input of a decoded image as [3, o.Height,
// o.Width] float32 values: ToRGB, ResizeBicubic, Normalize. It returns
// ctx's error as soon as ctx is done (each stage takes up to a second on a
// large photo; the one running finishes unseen).
func PixelValues(ctx context.Context, img image.Image, o Options) ([]float32, error) {
	if o.Width <= 0 || o.Height <= 0 {
		return nil, fmt.Errorf("invalid target size %dx%d", o.Width, o.Height)
	}
	if img == nil {
		return nil, errors.New("no image")
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("image is empty (%dx%d)", b.Dx(), b.Dy())
	}
	return interruptible(ctx, func() ([]float32, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rgb := ToRGB(img)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		small := ResizeBicubic(rgb, o.Width, o.Height)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return Normalize(small, o), nil
	})
}

// format is one image format this package recognizes, as in Go's
// image/format.go: its name, its signatures ('?' matches any byte) and,
// for the supported ones, how to read its header and decode it.
type format struct {
	name   string
	magic  []string
	config func([]byte) (image.Config, error) // nil: recognized, not supported
	decode func([]byte) (image.Image, error)
}

// formats are tried in order.
var formats = []format{
	{"JPEG", []string{"\xff\xd8"}, jpegConfig, jpegDecode},
	{"PNG", []string{"\x89PNG\r\n\x1a\n"},
		func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }},
	{"GIF", []string{"GIF87a", "GIF89a"},
		func(b []byte) (image.Config, error) { return gif.DecodeConfig(bytes.NewReader(b)) }, gifDecode},
	{"WebP", []string{"RIFF????WEBP"},
		func(b []byte) (image.Config, error) { return webp.DecodeConfig(bytes.NewReader(b)) }, webpDecode},
	{"BMP", []string{"BM"},
		func(b []byte) (image.Config, error) { return bmp.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return bmp.Decode(bytes.NewReader(b)) }},
	{"TIFF", []string{"II*\x00", "MM\x00*"}, nil, nil},
	{"HEIC", []string{"????ftypheic", "????ftypheix", "????ftypmif1", "????ftyphevc"}, nil, nil},
	{"AVIF", []string{"????ftypavif", "????ftypavis"}, nil, nil},
	{"JPEG XL", []string{"\xff\x0a", "\x00\x00\x00\x0cJXL \r\n\x87\n"}, nil, nil},
	{"PSD", []string{"8BPS"}, nil, nil},
	{"ICO", []string{"\x00\x00\x01\x00"}, nil, nil},
	{"PDF", []string{"%PDF"}, nil, nil},
}

// supported lists the formats that decode, for error messages.
var supported = func() string {
	var names []string
	for _, f := range formats {
		if f.decode != nil {
			names = append(names, f.name)
		}
	}
	return "supported: " + strings.Join(names, ", ")
}()

// match reports whether b starts with magic; with prefix, also whether b
// is shorter than magic and matches as far as it goes (a file cut short
// inside its signature).
func match(magic string, b []byte, prefix bool) bool {
	if len(b) < len(magic) && !prefix {
		return false
	}
	for i := 0; i < min(len(b), len(magic)); i++ {
		if magic[i] != '?' && magic[i] != b[i] {
			return false
		}
	}
	return true
}

// sniff finds the format of data from its signature; ok is false when no
// format's signature matches.
func sniff(b []byte) (f format, ok bool) {
	for _, f := range formats {
		for _, m := range f.magic {
			if match(m, b, false) {
				return f, true
			}
		}
	}
	return format{}, false
}

// Decode reads a whole image from r, at most MaxFileBytes, and decodes it.
// name (usually the file's base name) starts every error message. The
// header is checked first: a format other than JPEG, PNG, GIF, WebP or BMP,
// a zero width or height, or more than MaxPixels pixels is refused before
// decoding. GIF gives its first frame. Corrupt or truncated data gives an
// error, never a panic.
func Decode(r io.Reader, name string) (image.Image, error) {
	data, err := readLimited(context.Background(), r, 0, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return decodeBytes(data, name, MaxPixels)
}

// decodeBytes is Decode with a size limit of maxPixels (the tests lower it
// so that a flipped size bit does not decode tens of megapixels).
func decodeBytes(data []byte, name string, maxPixels int64) (img image.Image, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	f, ok := sniff(data)
	if !ok {
		for _, f := range formats {
			for _, m := range f.magic {
				if f.decode != nil && len(data) < len(m) && match(m, data, true) {
					return nil, fmt.Errorf("%s: truncated image data", name)
				}
			}
		}
		return nil, fmt.Errorf("%s: unsupported image format (%s)", name, supported)
	}
	if f.decode == nil {
		return nil, fmt.Errorf("%s: unsupported image format %s (%s)", name, f.name, supported)
	}
	kind := f.name
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("%s: corrupt %s data (decoder failed: %v)", name, kind, p)
		}
	}()
	if kind == "PNG" && len(data) >= 24 && string(data[12:16]) == "IHDR" {
		// Check the size before the decoder's own validation, which
		// reports a zero size only as a generic format error.
		w := int(binary.BigEndian.Uint32(data[16:20]))
		h := int(binary.BigEndian.Uint32(data[20:24]))
		if err := checkSize(w, h, maxPixels); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	cfg, err := f.config(data)
	if err != nil {
		return nil, describe(name, kind, err)
	}
	if err := checkSize(cfg.Width, cfg.Height, maxPixels); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	img, err = f.decode(data)
	if err != nil {
		return nil, describe(name, kind, err)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		// Only a GIF whose first frame does not cover the screen gets
		// here (gifDecode pads it); anything else is a decoder mismatch.
		return nil, fmt.Errorf("%s: corrupt %s data (header says %dx%d, image is %dx%d)",
			name, kind, cfg.Width, cfg.Height, b.Dx(), b.Dy())
	}
	return img, nil
}

// checkSize refuses empty images and those of more than pixelLimit pixels.
func checkSize(w, h int, pixelLimit int64) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("image has a zero dimension (%dx%d)", w, h)
	}
	if int64(w)*int64(h) > pixelLimit {
		mp := float64(int64(w)*int64(h)) / 1e6
		s := strconv.FormatFloat(mp, 'f', -1, 64)
		if len(s) > 6 {
			s = strconv.FormatFloat(mp, 'f', 1, 64)
			if s == strconv.FormatFloat(float64(pixelLimit)/1e6, 'f', 1, 64) {
				s = strconv.FormatFloat(mp, 'f', 4, 64)
			}
		}
		limit := strconv.FormatFloat(float64(pixelLimit)/1e6, 'f', -1, 64)
		return fmt.Errorf("%dx%d is %s megapixels; the limit is %s", w, h, s, limit)
	}
	return nil
}

// errTruncated marks data that ends before the image does.
var errTruncated = errors.New("truncated")

// describe turns a decoder error into "<name>: <reason>".
func describe(name, kind string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errTruncated) ||
		strings.HasSuffix(err.Error(), io.ErrUnexpectedEOF.Error()) || strings.HasSuffix(err.Error(), io.EOF.Error()) ||
		// How image/png and image/gif report pixel data cut short.
		strings.HasSuffix(err.Error(), "not enough pixel data") || strings.HasSuffix(err.Error(), "not enough image data") {
		return fmt.Errorf("%s: truncated %s data", name, kind)
	}
	msg := err.Error()
	// Go's decoders prefix their messages ("png: ", "gif: ", ...); the
	// format is already named, so drop the prefix.
	for _, p := range []string{"png: ", "gif: ", "bmp: ", "webp: ", "vp8: ", "vp8l: ", "jpeg: "} {
		if len(msg) > len(p) && msg[:len(p)] == p {
			msg = msg[len(p):]
		}
	}
	var u unsupportedError
	if errors.As(err, &u) || isUnsupported(msg) {
		return fmt.Errorf("%s: unsupported %s variant (%s)", name, kind, msg)
	}
	return fmt.Errorf("%s: corrupt %s data (%s)", name, kind, msg)
}

// unsupportedError is a valid file using a feature this package lacks.
type unsupportedError string

func (e unsupportedError) Error() string { return string(e) }

func isUnsupported(msg string) bool {
	const p = "unsupported"
	return len(msg) >= len(p) && msg[:len(p)] == p
}

// gifDecode returns the first frame on the logical screen. Where the
// frame does not cover the screen, Pillow shows the transparent index if
// the frame has one (white after ToRGB) and palette index 0 otherwise;
// so does this.
func gifDecode(b []byte) (image.Image, error) {
	cfg, err := gif.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	img, err := gif.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	p, ok := img.(*image.Paletted)
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if !ok || p.Rect == screen {
		return img, nil
	}
	fill := uint8(0)
	for i, c := range p.Palette {
		if _, _, _, a := c.RGBA(); a == 0 {
			fill = uint8(i)
			break
		}
	}
	canvas := image.NewPaletted(screen, p.Palette)
	for i := range canvas.Pix {
		canvas.Pix[i] = fill
	}
	r := p.Rect.Intersect(screen)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(canvas.Pix[canvas.PixOffset(r.Min.X, y):canvas.PixOffset(r.Max.X, y)], p.Pix[p.PixOffset(r.Min.X, y):])
	}
	return canvas, nil
}
