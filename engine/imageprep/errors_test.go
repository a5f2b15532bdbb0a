package imageprep

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pngHeader returns a PNG signature and IHDR chunk for an 8-bit RGB
// image of the given size, with a valid CRC, and nothing else.
func pngHeader(w, h uint32) []byte {
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

// patchSOF edits the frame header of a JPEG: f gets the segment after
// its length field (precision, height, width, components...).
func patchSOF(t testing.TB, jpg []byte, marker byte, f func(seg []byte)) []byte {
	t.Helper()
	b := bytes.Clone(jpg)
	for i := 2; i+4 < len(b); {
		if b[i] != 0xff {
			t.Fatal("lost marker sync")
		}
		n := int(b[i+2])<<8 | int(b[i+3])
		if b[i+1] >= 0xc0 && b[i+1] <= 0xc2 {
			if marker != 0 {
				b[i+1] = marker
			}
			f(b[i+4 : i+2+n])
			return b
		}
		i += 2 + n
	}
	t.Fatal("no SOF marker")
	return nil
}

// TestDecodeErrors checks every class of refusal: the one-line message
// names the file and says why.
func TestDecodeErrors(t *testing.T) {
	jpg := mustRead(t, "testdata/jpeg_444.jpg")
	gif := mustRead(t, "testdata/gif_palette.gif")
	for _, c := range []struct {
		name, file string
		data       []byte
		want       string // the whole message when exact, else a substring
		exact      bool
	}{
		{"empty", "empty.jpg", nil, "empty.jpg: empty file", true},
		{"text renamed .jpg", "notes.jpg", []byte("just some text, not an image\n"),
			"notes.jpg: unsupported image format (supported: JPEG, PNG, GIF, WebP, BMP)", true},
		{"TIFF", "x.tiff", []byte("II*\x00\x08\x00\x00\x00\x00\x00"),
			"x.tiff: unsupported image format TIFF (supported: JPEG, PNG, GIF, WebP, BMP)", true},
		{"HEIC", "x.heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"), "unsupported image format HEIC", false},
		{"PNG 20000x20000", "huge.png", pngHeader(20000, 20000),
			"huge.png: 20000x20000 is 400 megapixels; the limit is 100", true},
		{"PNG 10001x10000", "big.png", pngHeader(10001, 10000),
			"big.png: 10001x10000 is 100.01 megapixels; the limit is 100", true},
		{"PNG zero width", "zero.png", pngHeader(0, 10), "zero.png: image has a zero dimension (0x10)", true},
		{"PNG zero height", "zero.png", pngHeader(10, 0), "zero.png: image has a zero dimension (10x0)", true},
		{"JPEG zero width", "zero.jpg", patchSOF(t, jpg, 0, func(s []byte) { s[3], s[4] = 0, 0 }),
			"zero.jpg: image has a zero dimension (0x47)", true},
		{"JPEG 65535x65535", "huge.jpg", patchSOF(t, jpg, 0, func(s []byte) { s[1], s[2], s[3], s[4] = 255, 255, 255, 255 }),
			"huge.jpg: 65535x65535 is 4294.8 megapixels; the limit is 100", true},
		{"GIF zero size", "zero.gif", append(append([]byte{}, gif[:6]...), append([]byte{0, 0, 0, 0}, gif[10:]...)...),
			"zero.gif: image has a zero dimension (0x0)", true},
		{"GIF 65535x65535", "huge.gif", append(append([]byte{}, gif[:6]...), append([]byte{255, 255, 255, 255}, gif[10:]...)...),
			"65535x65535 is 4294.8 megapixels", false},
		{"JPEG 12-bit", "deep.jpg", patchSOF(t, jpg, 0, func(s []byte) { s[0] = 12 }),
			"deep.jpg: unsupported JPEG variant (unsupported JPEG sample precision 12 (only 8-bit))", true},
		{"JPEG lossless", "lossless.jpg", patchSOF(t, jpg, 0xc3, func([]byte) {}), "unsupported JPEG process (SOF3: lossless)", false},
		{"JPEG fractional sampling", "frac.jpg", patchSOF(t, jpg, 0, func(s []byte) { s[7], s[10] = 0x31, 0x21 }),
			"frac.jpg: unsupported JPEG variant (unsupported JPEG sampling factors (2x1 with maximum 3x1))", true},
		{"JPEG two components", "two.jpg", patchSOF(t, jpg, 0, func(s []byte) { s[5] = 2 }), "unsupported JPEG with 2 color components", false},
		{"JPEG arithmetic", "arith.jpg", mustRead(t, "testdata/jpeg_arithmetic.jpg"), "arith.jpg: unsupported JPEG variant (unsupported JPEG process (SOF9: arithmetic coding))", true},
		{"JPEG SOI only", "soi.jpg", []byte{0xff, 0xd8}, "soi.jpg: truncated JPEG data", true},
		{"JPEG no frame", "eoi.jpg", []byte{0xff, 0xd8, 0xff, 0xd9}, "eoi.jpg: corrupt JPEG data (no image frame before EOI)", true},
		{"PNG magic cut", "cut.png", []byte("\x89PN"), "cut.png: truncated image data", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, err := Decode(bytes.NewReader(c.data), c.file)
			if err == nil {
				t.Fatalf("decoded a %v image, want error %q", img.Bounds(), c.want)
			}
			msg := err.Error()
			if c.exact && msg != c.want || !c.exact && !strings.Contains(msg, c.want) {
				t.Errorf("error %q, want %q", msg, c.want)
			}
			checkMessage(t, c.file, msg)
		})
	}
}

func checkMessage(t *testing.T, file, msg string) {
	t.Helper()
	if !strings.HasPrefix(msg, file+": ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line starting with %q", msg, file+": ")
	}
}

// allInputs lists the golden images and the fixtures.
func allInputs(t testing.TB) []string {
	paths, err := filepath.Glob(goldenDir + "images/*.*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, ".safetensors") {
			out = append(out, p)
		}
	}
	for _, c := range loadManifest(t).Cases {
		out = append(out, filepath.Join("testdata", c))
	}
	return out
}

// TestTruncated cuts every input at several lengths: each cut must give
// "<file>: truncated <format> data" (or, inside the signature,
// "truncated image data").
func TestTruncated(t *testing.T) {
	for _, p := range allInputs(t) {
		data := mustRead(t, p)
		name := filepath.Base(p)
		for _, n := range []int{1, 2, 5, 10, 20, 40, 100, 300, len(data) / 4, len(data) / 2, 3 * len(data) / 4, 9 * len(data) / 10} {
			if n >= len(data)*9/10+1 || n < 1 {
				continue
			}
			img, err := Decode(bytes.NewReader(data[:n]), name)
			if err == nil && strings.HasSuffix(name, ".gif") {
				// A GIF cut after its first frame still has the image
				// wanted; it must be exactly the full file's first frame.
				full, ferr := Decode(bytes.NewReader(data), name)
				if ferr != nil || !bytes.Equal(rgbBytes(img), rgbBytes(full)) {
					t.Errorf("%s cut to %d of %d bytes: decoded a different first frame", name, n, len(data))
				}
				continue
			}
			if err == nil {
				t.Errorf("%s cut to %d of %d bytes: decoded %v, want an error", name, n, len(data), img.Bounds())
				continue
			}
			checkMessage(t, name, err.Error())
			if !strings.Contains(err.Error(), ": truncated ") {
				t.Errorf("%s cut to %d of %d bytes: %q does not say truncated", name, n, len(data), err)
			}
		}
	}
}

// TestCorrupted flips bytes and bits all over every input: decoding must
// end in an image or a one-line error, never a panic.
func TestCorrupted(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, p := range allInputs(t) {
		data := mustRead(t, p)
		name := filepath.Base(p)
		errs := 0
		start := time.Now()
		const tries = 60
		for i := 0; i < tries; i++ {
			b := bytes.Clone(data)
			for k := 0; k <= i%4; k++ {
				// Favor the headers, where most of the structure is.
				pos := rng.Intn(len(b))
				if k == 0 && i%2 == 0 {
					pos = rng.Intn(min(len(b), 300))
				}
				b[pos] ^= 1 << rng.Intn(8)
			}
			// At most 4 megapixels: corrupted size fields would otherwise
			// decode up to 100.
			img, err := decodeBytes(b, name, 4_000_000)
			if err != nil {
				errs++
				checkMessage(t, name, err.Error())
				continue
			}
			// What decodes must also convert and resize.
			ResizeBicubic(ToRGB(img), 5, 3)
		}
		t.Logf("%s: %d/%d corrupted copies refused (%v)", name, errs, tries, time.Since(start).Round(time.Millisecond))
	}
}
