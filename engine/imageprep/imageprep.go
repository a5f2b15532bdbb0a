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
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
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

// Load reads and decodes the image file at path; see Decode.
func Load(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	defer f.Close()
	return Decode(f, path)
}

// PixelValues loads the image at path and returns its model input as
// [3, o.Height, o.Width] float32 values: Load, ToRGB, ResizeBicubic,
// Normalize.
func PixelValues(path string, o Options) ([]float32, error) {
	if o.Width <= 0 || o.Height <= 0 {
		return nil, fmt.Errorf("%s: invalid target size %dx%d", path, o.Width, o.Height)
	}
	img, err := Load(path)
	if err != nil {
		return nil, err
	}
	return Normalize(ResizeBicubic(ToRGB(img), o.Width, o.Height), o), nil
}

// format describes one supported container.
type format struct {
	name   string
	config func([]byte) (image.Config, error)
	decode func([]byte) (image.Image, error)
}

var formats = map[string]format{
	"JPEG": {"JPEG", jpegConfig, jpegDecode},
	"PNG": {"PNG", func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }},
	"GIF":  {"GIF", func(b []byte) (image.Config, error) { return gif.DecodeConfig(bytes.NewReader(b)) }, gifDecode},
	"WebP": {"WebP", func(b []byte) (image.Config, error) { return webp.DecodeConfig(bytes.NewReader(b)) }, webpDecode},
	"BMP": {"BMP", func(b []byte) (image.Config, error) { return bmp.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return bmp.Decode(bytes.NewReader(b)) }},
}

const supported = "supported: JPEG, PNG, GIF, WebP, BMP"

// magics are the signatures of the supported formats, used to tell a
// file cut short inside its signature from an unknown format.
var magics = []string{"\xff\xd8", "\x89PNG\r\n\x1a\n", "GIF87a", "GIF89a", "RIFF", "BM"}

// sniff names the format of data from its magic bytes. For a known but
// unsupported format it returns ok=false and the format's name.
func sniff(b []byte) (name string, ok bool) {
	has := func(off int, magic string) bool {
		return len(b) >= off+len(magic) && string(b[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "\xff\xd8"):
		return "JPEG", true
	case has(0, "\x89PNG\r\n\x1a\n"):
		return "PNG", true
	case has(0, "GIF87a"), has(0, "GIF89a"):
		return "GIF", true
	case has(0, "RIFF") && has(8, "WEBP"):
		return "WebP", true
	case has(0, "BM"):
		return "BMP", true
	case has(0, "II*\x00"), has(0, "MM\x00*"):
		return "TIFF", false
	case has(4, "ftypheic"), has(4, "ftypheix"), has(4, "ftypmif1"), has(4, "ftyphevc"):
		return "HEIC", false
	case has(4, "ftypavif"), has(4, "ftypavis"):
		return "AVIF", false
	case has(0, "\xff\x0a"), has(0, "\x00\x00\x00\x0cJXL \r\n\x87\n"):
		return "JPEG XL", false
	case has(0, "8BPS"):
		return "PSD", false
	case has(0, "\x00\x00\x01\x00"):
		return "ICO", false
	case has(0, "%PDF"):
		return "PDF", false
	}
	return "", false
}

// Decode reads a whole image from r and decodes it. name (usually the
// file's base name) starts every error message. The header is checked
// first: a format other than JPEG, PNG, GIF, WebP or BMP, a zero width or
// height, or more than MaxPixels pixels is refused before decoding. GIF
// gives its first frame. Corrupt or truncated data gives an error, never
// a panic.
func Decode(r io.Reader, name string) (image.Image, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return decodeBytes(data, name)
}

func decodeBytes(data []byte, name string) (img image.Image, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: empty file", name)
	}
	kind, ok := sniff(data)
	if !ok && kind == "" {
		for _, m := range magics {
			if len(data) < len(m) && m[:len(data)] == string(data) {
				return nil, fmt.Errorf("%s: truncated image data", name)
			}
		}
		if len(data) < 12 && bytes.HasPrefix(data, []byte("RIFF")) && (len(data) <= 8 || strings.HasPrefix("WEBP", string(data[8:]))) {
			return nil, fmt.Errorf("%s: truncated image data", name)
		}
	}
	if !ok {
		if kind != "" {
			return nil, fmt.Errorf("%s: unsupported image format %s (%s)", name, kind, supported)
		}
		return nil, fmt.Errorf("%s: unsupported image format (%s)", name, supported)
	}
	f := formats[kind]
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
		if err := checkSize(w, h); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	cfg, err := f.config(data)
	if err != nil {
		return nil, describe(name, kind, err)
	}
	if err := checkSize(cfg.Width, cfg.Height); err != nil {
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

// pixelLimit is MaxPixels; the corruption tests and the fuzz target
// lower it so that a flipped size bit does not make every run decode
// tens of megapixels.
var pixelLimit int64 = MaxPixels

// checkSize refuses empty and oversized images.
func checkSize(w, h int) error {
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
