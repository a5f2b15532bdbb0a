package imageprep

import (
	"context"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// imageFiles are the test images of the repository: the golden set's and
// this package's fixtures (every format, alpha, palettes, CMYK, 16 bits).
func imageFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{goldenDir + "images", "testdata"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp":
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d test images found", len(out))
	}
	return out
}

// shifted copies an RGB image into one whose bounds do not start at 0,0.
func shifted(m *image.NRGBA) *image.NRGBA {
	b := m.Bounds()
	out := image.NewNRGBA(b.Add(image.Pt(7, -3)))
	for y := 0; y < b.Dy(); y++ {
		copy(out.Pix[y*out.Stride:][:4*b.Dx()], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*b.Dx()])
	}
	return out
}

// TestPixelValuesOfDecoded: PixelValues gives the pipeline's values (ToRGB,
// ResizeBicubic, Normalize) bit for bit for every test image, whether
// given as decoded, after ToRGB (which it then does not copy) or with
// shifted bounds, at BLIP-2's size and an odd one.
func TestPixelValuesOfDecoded(t *testing.T) {
	sizes := []Options{DefaultOptions(), DefaultOptions()}
	sizes[1].Width, sizes[1].Height = 37, 12
	n := 0
	for _, path := range imageFiles(t) {
		img, err := Load(context.Background(), path)
		if err != nil {
			continue // a fixture of a broken or unsupported file
		}
		rgb := ToRGB(img)
		if again := ToRGB(rgb); again != rgb {
			t.Errorf("%s: ToRGB copied an opaque RGB image", path)
		}
		for _, o := range sizes {
			want := Normalize(ResizeBicubic(ToRGB(img), o.Width, o.Height), o)
			for _, v := range []struct {
				name string
				img  image.Image
			}{{"decoded", img}, {"ToRGB", rgb}, {"shifted", shifted(rgb)}} {
				got, err := PixelValues(context.Background(), v.img, o)
				if err != nil {
					t.Errorf("%s (%s, %dx%d): %v", path, v.name, o.Width, o.Height, err)
					continue
				}
				if !sameBits(got, want) {
					t.Errorf("%s (%s, %dx%d): pixels differ from the pipeline's", path, v.name, o.Width, o.Height)
				}
				n++
			}
		}
	}
	t.Logf("%d image/variant/size combinations equal bit for bit", n)

	// Bad input is an error; a done context stops it.
	rgb := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		img  image.Image
		o    Options
		ctx  context.Context
		want string
	}{
		{"nil image", nil, sizes[0], context.Background(), "no image"},
		{"empty image", image.NewNRGBA(image.Rect(3, 3, 3, 9)), sizes[0], context.Background(), "image is empty"},
		{"zero size", rgb, Options{}, context.Background(), "invalid target size"},
		{"cancelled", rgb, sizes[0], cancelled, context.Canceled.Error()},
	} {
		px, err := PixelValues(c.ctx, c.img, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || px != nil {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
