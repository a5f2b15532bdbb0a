package chat_test

import (
	"context"
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// imageFiles are the test images of the repository: the golden set's and
// imageprep's fixtures (every format, alpha, palettes, CMYK, 16 bits).
func imageFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{filepath.Join(modeltest.GoldenDir(t), "images"), "../imageprep/testdata"} {
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

// TestDecodedPixelsEqualPath: the pixels SetImageDecoded makes from a
// decoded image equal imageprep.PixelValues on its file bit for bit, for
// every test image, whether given as decoded, after ToRGB (the opaque fast
// path) or with shifted bounds, at BLIP-2's size and an odd one.
func TestDecodedPixelsEqualPath(t *testing.T) {
	sizes := []imageprep.Options{imageprep.DefaultOptions(), imageprep.DefaultOptions()}
	sizes[1].Width, sizes[1].Height = 37, 12
	n := 0
	for _, path := range imageFiles(t) {
		want, werr := imageprep.PixelValues(path, sizes[0])
		img, err := imageprep.Load(path)
		if (werr != nil) != (err != nil) {
			t.Errorf("%s: PixelValues error %v, Load error %v", path, werr, err)
			continue
		}
		if err != nil {
			continue // a fixture of a broken or unsupported file
		}
		rgb := imageprep.ToRGB(img)
		for _, o := range sizes {
			if o != sizes[0] {
				if want, err = imageprep.PixelValues(path, o); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range []struct {
				name string
				img  image.Image
			}{{"decoded", img}, {"ToRGB", rgb}, {"shifted", shifted(rgb)}} {
				got, err := chat.PixelValues(context.Background(), v.img, path, o)
				if err != nil {
					t.Errorf("%s (%s, %dx%d): %v", path, v.name, o.Width, o.Height, err)
					continue
				}
				if !sameBits(got, want) {
					t.Errorf("%s (%s, %dx%d): pixels differ from PixelValues", path, v.name, o.Width, o.Height)
				}
				n++
			}
		}
	}
	t.Logf("%d image/variant/size combinations equal bit for bit", n)

	// Bad input is an error naming the image; a done context stops it.
	rgb := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		img  image.Image
		o    imageprep.Options
		ctx  context.Context
		want string
	}{
		{"nil image", nil, sizes[0], context.Background(), "x.png: no image"},
		{"empty image", image.NewNRGBA(image.Rect(3, 3, 3, 9)), sizes[0], context.Background(), "x.png: image is empty"},
		{"zero size", rgb, imageprep.Options{}, context.Background(), "x.png: invalid target size"},
		{"cancelled", rgb, sizes[0], cancelled, context.Canceled.Error()},
	} {
		px, err := chat.PixelValues(c.ctx, c.img, "x.png", c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || px != nil {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestSetImageDecoded: SetImageDecoded on a decoded image (as decoded, or
// after ToRGB as the app passes it) gives the ViT features, soft tokens
// and greedy answer of SetImage on the file, bit for bit.
func TestSetImageDecoded(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			path := imagePath(t, c)
			img, err := imageprep.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s := open(t, c, greedy(4, 0))
			if err := s.chat.SetImage(path); err != nil {
				t.Fatal(err)
			}
			want, err := s.chat.Ask(context.Background(), question(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			wantFeat, wantSoft := chat.FeaturesOf(s.chat), chat.SoftOf(s.chat)
			for _, v := range []struct {
				name string
				img  image.Image
			}{{"decoded", img}, {"ToRGB", imageprep.ToRGB(img)}} {
				// A chat of its own: no features cached from SetImage.
				ch, err := chat.New(s.m.Vision, s.m.LM, s.chat.Settings())
				if err != nil {
					t.Fatal(err)
				}
				defer ch.Close()
				if err := ch.SetImageDecoded(context.Background(), v.img, path); err != nil {
					t.Fatal(err)
				}
				feat := chat.FeaturesOf(ch)
				if feat == wantFeat || !sameBits(feat.Data, wantFeat.Data) {
					t.Errorf("%s: ViT features differ from SetImage's (or were shared)", v.name)
				}
				got, err := ch.Ask(context.Background(), question(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(chat.SoftOf(ch), wantSoft) {
					t.Errorf("%s: soft tokens differ from SetImage's", v.name)
				}
				if !slices.Equal(got.PromptIDs, want.PromptIDs) || !slices.Equal(got.IDs, want.IDs) {
					t.Errorf("%s: answer %v, SetImage's %v", v.name, got.IDs, want.IDs)
				}
			}
		})
	}
}

// TestSetImageCancel: SetImageContext and SetImageDecoded stopped by their
// context, before the work, in the ViT or (BLIP-2) in the Q-Former, return
// context.Canceled and leave the chat on its image and conversation; the
// next image loads as in a fresh chat.
func TestSetImageCancel(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			other := filepath.Join(modeltest.GoldenDir(t), "images", "husky.jpg")
			if c.Golden.Image == "husky.jpg" {
				other = filepath.Join(modeltest.GoldenDir(t), "images", "cat.jpg")
			}
			s := open(t, c, greedy(3, 0))
			path := imagePath(t, c)
			if err := s.chat.SetImage(path); err != nil {
				t.Fatal(err)
			}
			if _, err := s.chat.Ask(context.Background(), question(c), nil); err != nil {
				t.Fatal(err)
			}
			feat0, soft0, time0 := chat.FeaturesOf(s.chat), slices.Clone(chat.SoftOf(s.chat)), s.chat.ImageTime()
			otherImg, err := imageprep.Load(other)
			if err != nil {
				t.Fatal(err)
			}
			stages := []struct {
				name     string
				cancelAt string // the traced activation that cancels; "" before the call
				decoded  bool
			}{
				{"pre-cancelled path", "", false},
				{"pre-cancelled decoded", "", true},
				{"in the ViT", "vision_hidden_states.1", false},
				{"in the ViT, decoded", "vision_hidden_states.1", true},
			}
			if c.Family == "blip-2" {
				stages = append(stages, struct {
					name     string
					cancelAt string
					decoded  bool
				}{"in the Q-Former", "qformer_hidden_states.1", false})
			}
			for _, st := range stages {
				ctx, cancel := context.WithCancel(context.Background())
				if st.cancelAt == "" {
					cancel()
				}
				var hit sync.Once
				reached := false
				s.m.Vision.SetTrace(func(name string, rows, cols int, data []float32) {
					if name == st.cancelAt {
						hit.Do(func() { reached = true; cancel() })
					}
				})
				if st.decoded {
					err = s.chat.SetImageDecoded(ctx, otherImg, other)
				} else {
					err = s.chat.SetImageContext(ctx, other)
				}
				s.m.Vision.SetTrace(nil)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s: error %v, want context.Canceled", st.name, err)
				}
				if st.cancelAt != "" && !reached {
					t.Fatalf("%s: %s never ran", st.name, st.cancelAt)
				}
				if chat.FeaturesOf(s.chat) != feat0 || !sameBits(chat.SoftOf(s.chat), soft0) ||
					len(s.chat.Turns()) != 1 || s.chat.ImageTime() != time0 {
					t.Fatalf("%s: the cancelled image changed the chat (%d turns)", st.name, len(s.chat.Turns()))
				}
			}
			// The conversation about the first image goes on.
			if _, err := s.chat.Ask(context.Background(), "And then?", nil); err != nil || len(s.chat.Turns()) != 2 {
				t.Fatalf("Ask after the cancels: %v, %d turns", err, len(s.chat.Turns()))
			}
			// The other image loads, as in a chat that never saw a cancel.
			if err := s.chat.SetImageContext(context.Background(), other); err != nil {
				t.Fatal(err)
			}
			fresh, err := chat.New(s.m.Vision, s.m.LM, s.chat.Settings())
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			if err := fresh.SetImage(other); err != nil {
				t.Fatal(err)
			}
			if f := chat.FeaturesOf(s.chat); f == feat0 || !sameBits(f.Data, chat.FeaturesOf(fresh).Data) ||
				!sameBits(chat.SoftOf(s.chat), chat.SoftOf(fresh)) || len(s.chat.Turns()) != 0 {
				t.Error("the image after the cancels differs from a fresh chat's")
			}
		})
	}
}
