package chat_test

import (
	"context"
	"errors"
	"image"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/model/modeltest"
)

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

// TestSetImageDecoded: SetImage on a decoded image (as decoded, or after
// ToRGB as the app passes it, named by its pixels) gives the ViT features,
// soft tokens and greedy answer of SetImage on the file named by its path,
// bit for bit.
func TestSetImageDecoded(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			path := imagePath(t, c)
			img := loadImage(t, path)
			s := open(t, c, greedy(4, 0))
			if err := setImageFile(t, s.chat, path); err != nil {
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
				if err := ch.SetImage(context.Background(), v.img, ""); err != nil {
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

// TestSetImageCancel: SetImage stopped by its context (the image named by
// its path or by its pixels), before the work, in the ViT or (BLIP-2) in
// the Q-Former, returns
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
			if err := setImageFile(t, s.chat, path); err != nil {
				t.Fatal(err)
			}
			if _, err := s.chat.Ask(context.Background(), question(c), nil); err != nil {
				t.Fatal(err)
			}
			feat0, soft0, time0 := chat.FeaturesOf(s.chat), slices.Clone(chat.SoftOf(s.chat)), s.chat.ImageTime()
			otherImg := loadImage(t, other)
			var err error
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
					err = s.chat.SetImage(ctx, otherImg, "")
				} else {
					err = s.chat.SetImage(ctx, otherImg, other)
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
			if err := setImageFile(t, s.chat, other); err != nil {
				t.Fatal(err)
			}
			fresh, err := chat.New(s.m.Vision, s.m.LM, s.chat.Settings())
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			if err := setImageFile(t, fresh, other); err != nil {
				t.Fatal(err)
			}
			if f := chat.FeaturesOf(s.chat); f == feat0 || !sameBits(f.Data, chat.FeaturesOf(fresh).Data) ||
				!sameBits(chat.SoftOf(s.chat), chat.SoftOf(fresh)) || len(s.chat.Turns()) != 0 {
				t.Error("the image after the cancels differs from a fresh chat's")
			}
		})
	}
}
