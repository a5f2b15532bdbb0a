package imageprep

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"math"
	"testing"

	"golang.org/x/image/bmp"
)

// compositeGeneral is Pillow's ImagingAlphaComposite formula over opaque
// white without composite's shortcuts.
func compositeGeneral(r, a uint8) uint8 {
	const bits = 7
	sa := uint32(a)
	outa255 := sa*255 + 255*(255-sa)
	coef1 := sa * 255 * 255 * (1 << bits) / outa255
	coef2 := 255*(1<<bits) - coef1
	t := uint32(r)*coef1 + 255*coef2 + 0x80<<bits
	return uint8((((t >> 8) + t) >> 8) >> bits)
}

// TestCompositeIdentity checks the shortcuts in composite against
// Pillow's general formula: alpha 255 keeps the color, alpha 0 is white,
// and everything else follows the formula.
func TestCompositeIdentity(t *testing.T) {
	for a := 0; a < 256; a++ {
		for v := 0; v < 256; v++ {
			var d [4]uint8
			composite(d[:], uint8(v), uint8(v), uint8(v), uint8(a))
			want := compositeGeneral(uint8(v), uint8(a))
			if a == 0 {
				want = 255
			}
			if d[0] != want || d[3] != 255 {
				t.Fatalf("composite(%d, alpha %d) = %v, want %d", v, a, d, want)
			}
			if a == 255 && want != uint8(v) {
				t.Fatalf("alpha 255 changes %d to %d", v, want)
			}
		}
	}
}

// TestAlphaOnWhite spells out the compositing of a few RGBA pixels.
func TestAlphaOnWhite(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 4, 1))
	m.SetNRGBA(0, 0, color.NRGBA{255, 0, 0, 0})     // transparent red
	m.SetNRGBA(1, 0, color.NRGBA{0, 0, 0, 128})     // half black
	m.SetNRGBA(2, 0, color.NRGBA{10, 200, 30, 255}) // opaque
	m.SetNRGBA(3, 0, color.NRGBA{0, 0, 255, 64})
	got := rgbBytes(m)
	want := []byte{255, 255, 255, 127, 127, 127, 10, 200, 30, 191, 191, 255}
	if !bytes.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestGIFFirstFrame(t *testing.T) {
	for _, c := range []struct {
		file    string
		outside color.NRGBA // a pixel the first frame does not cover
	}{
		{"gif_partial_transparent.gif", color.NRGBA{255, 255, 255, 255}}, // transparent index: white
		{"gif_partial_opaque.gif", color.NRGBA{200, 30, 40, 255}},        // palette index 0
	} {
		img, err := Load(context.Background(), "testdata/"+c.file)
		if err != nil {
			t.Fatal(err)
		}
		rgb := ToRGB(img)
		if rgb.Bounds() != image.Rect(0, 0, 20, 16) {
			t.Fatalf("%s: bounds %v, want the 20x16 screen", c.file, rgb.Bounds())
		}
		// The second frame is all index 0 (red); (6,5) of the first is
		// index (6+5)%4 = 3, yellow.
		if got := rgb.NRGBAAt(6, 5); got != (color.NRGBA{250, 250, 20, 255}) {
			t.Errorf("%s: pixel (6,5) = %v, want the first frame's yellow", c.file, got)
		}
		if got := rgb.NRGBAAt(0, 0); got != c.outside {
			t.Errorf("%s: pixel (0,0) = %v, want %v", c.file, got, c.outside)
		}
	}
}

// TestBMPRoundTrip encodes with x/image/bmp and decodes through Load.
func TestBMPRoundTrip(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 13, 7))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 37)
	}
	for i := 3; i < len(src.Pix); i += 4 {
		src.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := bmp.Encode(&buf, src); err != nil {
		t.Fatal(err)
	}
	img, err := Decode(&buf, "x.bmp")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rgbBytes(img), rgbBytes(src); !bytes.Equal(got, want) {
		t.Errorf("BMP round trip changed the pixels")
	}
}

// TestNormalize checks channel-first layout and both rescale paths.
func TestNormalize(t *testing.T) {
	img := rgbImage(2, 1, []byte{0, 128, 255, 10, 20, 30})
	o := Options{Width: 2, Height: 1, Mean: [3]float32{0.5, 0.25, 0}, Std: [3]float32{0.5, 2, 1}, RescaleFactor: 1.0 / 255}
	got := Normalize(img, o)
	f := func(v float32, c int) float32 { return (v/255 - o.Mean[c]) / o.Std[c] }
	want := []float32{f(0, 0), f(10, 0), f(128, 1), f(20, 1), f(255, 2), f(30, 2)}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("value %d = %v, want %v", i, got[i], want[i])
		}
	}
	o.RescaleFactor = 2
	got = Normalize(img, o)
	if w := (float32(128)*2 - 0.25) / 2; got[2] != w {
		t.Errorf("rescale 2: got %v, want %v", got[2], w)
	}
	d := DefaultOptions()
	if d.Width != 224 || d.Height != 224 || d.RescaleFactor != float32(1.0/255) || d.Mean[0] != 0.48145466 || d.Std[2] != 0.27577711 {
		t.Errorf("DefaultOptions = %+v", d)
	}
	// 1/255 must divide: for some samples v*float32(1/255) != v/255.
	differ := 0
	for v := 0; v < 256; v++ {
		if float32(v)*d.RescaleFactor != float32(v)/255 {
			differ++
		}
	}
	t.Logf("%d of 256 samples differ between *1/255 and /255 in float32", differ)
}

func TestResizeEdges(t *testing.T) {
	src := rgbImage(3, 2, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
	if got := rgbBytes(ResizeBicubic(src, 3, 2)); !bytes.Equal(got, rgbBytes(src)) {
		t.Errorf("same-size resize changed pixels: %v", got)
	}
	// A constant image stays constant at any size (weights sum to one).
	flat := rgbImage(5, 4, bytes.Repeat([]byte{200, 100, 0}, 20))
	for _, sz := range [][2]int{{1, 1}, {2, 9}, {17, 3}, {40, 40}} {
		got := rgbBytes(ResizeBicubic(flat, sz[0], sz[1]))
		if !bytes.Equal(got, bytes.Repeat([]byte{200, 100, 0}, sz[0]*sz[1])) {
			t.Errorf("constant image resized to %v is not constant", sz)
		}
	}
	// A sub-image resizes like a copy of it.
	big := rgbImage(4, 4, bytes.Repeat([]byte{0, 50, 100, 150, 200, 250}, 8))
	sub := big.SubImage(image.Rect(1, 1, 4, 3)).(*image.NRGBA)
	if !bytes.Equal(rgbBytes(ResizeBicubic(sub, 5, 5)), rgbBytes(ResizeBicubic(ToRGB(sub), 5, 5))) {
		t.Errorf("sub-image resize differs from resizing a copy")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("ResizeBicubic to 0x5 did not panic")
		}
	}()
	ResizeBicubic(src, 0, 5)
}

func TestPixelValuesErrors(t *testing.T) {
	if _, err := Load(context.Background(), "testdata/does-not-exist.jpg"); err == nil {
		t.Error("missing file: no error")
	}
	img, err := Load(context.Background(), "testdata/jpeg_420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PixelValues(context.Background(), img, Options{}); err == nil {
		t.Error("zero target size: no error")
	}
	pv, err := PixelValues(context.Background(), img, DefaultOptions())
	if err != nil || len(pv) != 3*224*224 {
		t.Fatalf("PixelValues: %d values, %v", len(pv), err)
	}
	for _, v := range pv {
		if math.IsNaN(float64(v)) || v < -2 || v > 2.2 {
			t.Fatalf("value %v out of the normalized range", v)
		}
	}
}
