package imageprep

import (
	"context"
	"math"
	"testing"

	"github.com/blip2chat/blip2chat/weights/safetensors"
)

const goldenDir = "../../testdata/golden/"

func openGolden(t *testing.T, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestGoldenResized runs every golden image through Load, ToRGB and
// ResizeBicubic(224, 224) and compares with PIL's bytes
// (images.safetensors <name>.resized_u8, [224,224,3] uint8).
func TestGoldenResized(t *testing.T) {
	g := openGolden(t, goldenDir+"images/images.safetensors")
	for _, c := range []struct{ key, file string }{
		{"cat", "cat.jpg"},     // 2000x1500 baseline JPEG, 4:2:0
		{"cmyk", "cmyk.jpeg"},  // Adobe CMYK JPEG
		{"gray", "gray.jpeg"},  // grayscale JPEG, upscaled
		{"husky", "husky.jpg"}, // 800x800 JPEG
		{"lufei", "lufei.jpg"}, // 510x369 JPEG
		{"sample", "sample.png"},
		{"video", "video.jpeg"},
	} {
		t.Run(c.key, func(t *testing.T) {
			want, ok := g.Tensor(c.key + ".resized_u8")
			if !ok || len(want.Data) != 224*224*3 {
				t.Fatalf("golden %s.resized_u8 missing or misshapen", c.key)
			}
			img, err := Load(context.Background(), goldenDir+"images/"+c.file)
			if err != nil {
				t.Fatal(err)
			}
			got := rgbBytes(ResizeBicubic(ToRGB(img), 224, 224))
			match, maxDiff := compare(got, want.Data)
			t.Logf("%s (%T): %.4f%% of values equal, max diff %d", c.file, img, 100*match, maxDiff)
			if match < 0.999 || maxDiff > 1 {
				t.Errorf("match %.5f (want >= 0.999), max diff %d (want <= 1)", match, maxDiff)
			}
		})
	}
}

// TestNormalizeGolden checks Normalize on the golden resized bytes, and
// the whole PixelValues pipeline, against the model input pixel_values
// that transformers was given (blip2-opt, husky.jpg).
func TestNormalizeGolden(t *testing.T) {
	g := openGolden(t, goldenDir+"images/images.safetensors")
	pv := openGolden(t, goldenDir+"blip2-opt/golden.safetensors")
	u8, ok := g.Tensor("husky.resized_u8")
	if !ok {
		t.Fatal("husky.resized_u8 missing")
	}
	wt, ok := pv.Tensor("pixel_values")
	if !ok {
		t.Fatal("pixel_values missing")
	}
	want, err := wt.Float32()
	if err != nil || len(want) != 3*224*224 {
		t.Fatalf("pixel_values: %v, %d values", err, len(want))
	}
	img := ToRGB(rgbImage(224, 224, u8.Data))
	husky, err := Load(context.Background(), goldenDir+"images/husky.jpg")
	if err != nil {
		t.Fatal(err)
	}
	fromPipeline, err := PixelValues(context.Background(), husky, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []float32
	}{
		{"Normalize(resized_u8)", Normalize(img, DefaultOptions())},
		{"PixelValues(Load(husky.jpg))", fromPipeline},
	} {
		if len(c.got) != len(want) {
			t.Fatalf("%s: %d values, want %d", c.name, len(c.got), len(want))
		}
		maxDiff, exact := 0.0, 0
		for i := range want {
			d := math.Abs(float64(c.got[i] - want[i]))
			maxDiff = max(maxDiff, d)
			if c.got[i] == want[i] {
				exact++
			}
		}
		t.Logf("%s: max |diff| %.3g, %d/%d bit-identical", c.name, maxDiff, exact, len(want))
		if maxDiff > 1e-6 {
			t.Errorf("%s: max |diff| %g > 1e-6", c.name, maxDiff)
		}
	}
}
