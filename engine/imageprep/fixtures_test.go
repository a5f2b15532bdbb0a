package imageprep

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeMatchesPIL decodes every fixture (testdata/gen.py: every JPEG
// upsampling path, progressive, restarts, RGB/CMYK/YCCK JPEGs, PNG
// palette/alpha/16-bit, GIF, BMP, lossless and lossy WebP) and requires
// ToRGB's output to equal PIL's convert_to_rgb result exactly.
func TestDecodeMatchesPIL(t *testing.T) {
	m := loadManifest(t)
	for _, c := range m.Cases {
		t.Run(c, func(t *testing.T) {
			img, err := Load(context.Background(), filepath.Join("testdata", c))
			if err != nil {
				t.Fatal(err)
			}
			want := rgbBytes(readPNG(t, filepath.Join("testdata", c+".rgb.png")))
			got := rgbBytes(img)
			if match, maxDiff := compare(got, want); maxDiff != 0 {
				t.Errorf("%T: match %.5f, max diff %d; want identical", img, match, maxDiff)
			}
		})
	}
}

// TestResizeMatchesPIL compares ResizeBicubic with PIL's
// resize(BICUBIC) for down, up, single-axis, tiny and extreme sizes.
func TestResizeMatchesPIL(t *testing.T) {
	m := loadManifest(t)
	for _, r := range m.Resized {
		t.Run(r.Ref, func(t *testing.T) {
			// Decode cases start from the encoded file, the others from
			// PIL's decoded RGB.
			path := filepath.Join("testdata", r.Src+".rgb.png")
			if r.Decode {
				path = filepath.Join("testdata", r.Src)
			}
			src, err := Load(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			got := rgbBytes(ResizeBicubic(ToRGB(src), r.W, r.H))
			want := rgbBytes(readPNG(t, filepath.Join("testdata", r.Ref)))
			match, maxDiff := compare(got, want)
			t.Logf("match %.5f max diff %d", match, maxDiff)
			if maxDiff != 0 {
				t.Errorf("match %.5f, max diff %d; want identical", match, maxDiff)
			}
		})
	}
}

// TestRefusedLikePIL: files PIL refuses (JPEG without EOI, junk after the
// scan) are refused here too, and arithmetic-coded JPEGs are reported as
// unsupported.
func TestRefusedLikePIL(t *testing.T) {
	m := loadManifest(t)
	want := map[string]string{}
	for f, reason := range m.Refused {
		want[f] = reason
	}
	for _, f := range m.Unsupported {
		want[f] = "unsupported JPEG variant"
	}
	if len(want) < 3 {
		t.Fatalf("manifest lists only %d refused files", len(want))
	}
	for f, reason := range want {
		path := filepath.Join("testdata", f)
		_, err := Load(context.Background(), path)
		if err == nil || !strings.HasPrefix(err.Error(), path+": "+reason) {
			t.Errorf("Load(%s) = %v, want %q", f, err, path+": "+reason)
		}
	}
}
