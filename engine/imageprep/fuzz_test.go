package imageprep

import (
	"os"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes through Decode, ToRGB and
// ResizeBicubic: the result must be an image of the promised size or a
// one-line error naming the file, never a panic or a hang.
func FuzzDecode(f *testing.F) {
	for _, p := range allInputs(f) {
		if b, err := os.ReadFile(p); err == nil && len(b) <= 16<<10 {
			f.Add(b)
		}
	}
	f.Add(pngHeader(20000, 20000))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xd9})
	f.Add([]byte("GIF89a"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8L"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Small images keep each run short: the decoders' work is the
		// same per block at any size.
		const limit = 1 << 18
		img, err := decodeBytes(data, "fuzz.img", limit)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "fuzz.img: ") || strings.Contains(msg, "\n") {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || int64(b.Dx())*int64(b.Dy()) > limit {
			t.Fatalf("decoded an image of bounds %v", b)
		}
		rgb := ToRGB(img)
		if rgb.Bounds().Size() != b.Size() {
			t.Fatalf("ToRGB changed the size from %v to %v", b.Size(), rgb.Bounds().Size())
		}
		out := ResizeBicubic(rgb, 7, 5)
		if out.Bounds().Dx() != 7 || out.Bounds().Dy() != 5 {
			t.Fatalf("resized to %v", out.Bounds())
		}
	})
}
