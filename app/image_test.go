package app

import (
	"bytes"
	"image"
	"image/color"
	"testing"
	"time"
)

// TestShrink: each pixel of the display copy is the average of the source
// pixels it covers.
func TestShrink(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			src.SetNRGBA(x, y, color.NRGBA{uint8(10 * x), uint8(100 * y), 7, 255})
		}
	}
	got := shrink(src, 2, 1)
	// Columns 0-1 and 2-4, all three rows: R averages 5 and 30, G 100.
	for x, wantR := range []uint8{5, 30} {
		if c := got.NRGBAAt(x, 0); c != (color.NRGBA{wantR, 100, 7, 255}) {
			t.Errorf("pixel %d = %v, want R %d G 100", x, c, wantR)
		}
	}
	if same := shrink(src, 5, 3); !bytes.Equal(same.Pix, src.Pix) {
		t.Error("shrinking to the same size changed the image")
	}
	big := image.NewNRGBA(image.Rect(0, 0, 3000, 2000))
	for i := range big.Pix {
		big.Pix[i] = 200
	}
	start := time.Now()
	small := shrink(big, 512, 341)
	if c := small.NRGBAAt(511, 340); c != (color.NRGBA{200, 200, 200, 200}) {
		t.Errorf("uniform image shrinks to %v", c)
	}
	t.Logf("shrink 3000×2000 -> 512×341: %v", time.Since(start))
}
