package imageprep

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"testing"
)

// fixtureManifest is testdata/cases.json, written by testdata/gen.py.
type fixtureManifest struct {
	Cases   []string `json:"cases"`
	Resized []struct {
		Src    string `json:"src"`
		W, H   int
		Ref    string `json:"ref"`
		Decode bool   `json:"decode"`
	} `json:"resized"`
	Unsupported []string          `json:"unsupported"`
	Refused     map[string]string `json:"refused"` // file -> reason; PIL refuses them too
}

func loadManifest(t testing.TB) fixtureManifest {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var m fixtureManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// rgbImage wraps packed RGB bytes as an opaque NRGBA image.
func rgbImage(w, h int, rgb []byte) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		copy(m.Pix[i*4:], rgb[i*3:i*3+3])
		m.Pix[i*4+3] = 0xff
	}
	return m
}

// rgbBytes returns the RGB samples of ToRGB(img) row by row.
func rgbBytes(img image.Image) []byte {
	n := ToRGB(img)
	b := n.Bounds()
	out := make([]byte, 0, b.Dx()*b.Dy()*3)
	for y := 0; y < b.Dy(); y++ {
		row := n.Pix[y*n.Stride:]
		for x := 0; x < b.Dx(); x++ {
			out = append(out, row[x*4], row[x*4+1], row[x*4+2])
		}
	}
	return out
}

func readPNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// compare returns the fraction of equal samples and the largest
// absolute difference.
func compare(got, want []byte) (match float64, maxDiff int) {
	if len(got) != len(want) {
		return 0, 256
	}
	same := 0
	for i := range got {
		d := int(got[i]) - int(want[i])
		if d < 0 {
			d = -d
		}
		if d == 0 {
			same++
		}
		maxDiff = max(maxDiff, d)
	}
	return float64(same) / float64(len(got)), maxDiff
}
