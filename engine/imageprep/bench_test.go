package imageprep

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

func BenchmarkDecodeCat(b *testing.B) {
	data := mustRead(b, goldenDir+"images/cat.jpg")
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data), "cat.jpg"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStdlibDecodeCat(b *testing.B) {
	data := mustRead(b, goldenDir+"images/cat.jpg")
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// synthetic12MP encodes a 4000x3000 4:2:0 JPEG with smooth gradients and
// texture, roughly the entropy of a photo.
func synthetic12MP(b *testing.B) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, 4000, 3000), image.YCbCrSubsampleRatio420)
	for y := 0; y < 3000; y++ {
		for x := 0; x < 4000; x++ {
			img.Y[y*img.YStride+x] = uint8((x*7 + y*3 + (x*y)%17*5) / 9)
		}
	}
	for i := range img.Cb {
		img.Cb[i] = uint8(100 + i%37)
		img.Cr[i] = uint8(140 - i%29)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkPixelValues12MP is the whole pipeline on a 12-megapixel JPEG.
func BenchmarkPixelValues12MP(b *testing.B) {
	data := synthetic12MP(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		img, err := Decode(bytes.NewReader(data), "12mp.jpg")
		if err != nil {
			b.Fatal(err)
		}
		Normalize(ResizeBicubic(ToRGB(img), 224, 224), DefaultOptions())
	}
}

func BenchmarkDecode12MP(b *testing.B) {
	data := synthetic12MP(b)
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(data), "12mp.jpg"); err != nil {
			b.Fatal(err)
		}
	}
}
