package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/engine/imageprep"
)

// displayMax bounds the display copy of an image: the largest pane needs
// far fewer pixels, and resizing a small copy on every resize is cheap.
const displayMax = 512

// decodeImage decodes an image once for both its uses: the RGB image the
// engine prepares for the model, and a copy of at most displayMax pixels a
// side for the image pane. It says what it does through status.
func decodeImage(ctx context.Context, path string, status func(string)) (rgb *image.NRGBA, disp image.Image, err error) {
	status("decoding " + filepath.Base(path))
	img, err := imageprep.Load(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	rgb = imageprep.ToRGB(img)
	b := rgb.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= displayMax && h <= displayMax {
		return rgb, rgb, nil
	}
	status(fmt.Sprintf("resizing %d×%d for display", w, h))
	if w >= h {
		w, h = displayMax, max(1, h*displayMax/w)
	} else {
		w, h = max(1, w*displayMax/h), displayMax
	}
	return rgb, shrink(rgb, w, h), nil
}

// shrink scales src down to w x h pixels, each the average of the source
// pixels it covers: one pass over the source, so that a 60-megapixel
// photo shrinks in a fraction of a second (a filtered resize takes
// seconds), with no aliasing. It belongs to the display, but runs here, in
// the job that decodes: the interface then neither holds the full photo
// nor shrinks it on its loop.
func shrink(src *image.NRGBA, w, h int) *image.NRGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	sum := make([]uint64, w*4)
	for y := 0; y < h; y++ {
		y0, y1 := y*sh/h, max((y+1)*sh/h, y*sh/h+1)
		clear(sum)
		for sy := y0; sy < y1; sy++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+sy):][:sw*4]
			for x := 0; x < w; x++ {
				x0, x1 := x*sw/w, max((x+1)*sw/w, x*sw/w+1)
				s, p := sum[x*4:x*4+4], row[x0*4:x1*4]
				for i := 0; i < len(p); i += 4 {
					s[0] += uint64(p[i])
					s[1] += uint64(p[i+1])
					s[2] += uint64(p[i+2])
					s[3] += uint64(p[i+3])
				}
			}
		}
		d := dst.Pix[y*dst.Stride:][:w*4]
		for x := 0; x < w; x++ {
			n := uint64((y1 - y0) * (max((x+1)*sw/w, x*sw/w+1) - x*sw/w))
			for c := 0; c < 4; c++ {
				d[x*4+c] = uint8((sum[x*4+c] + n/2) / n)
			}
		}
	}
	return dst
}

// setImage decodes, shows and encodes an image, starting a new
// conversation. resumed says not to record it again in the session. A
// cancel (Esc, or Close) stops it between the decoding, the resize and the
// engine's layers; the previous image and conversation then stay.
func (a *App) setImage(ctx context.Context, path string, resumed bool) bool {
	abs := path
	if p, err := filepath.Abs(expandHome(path)); err == nil {
		abs = p
	}
	a.mu.Lock()
	if a.st.Phase != Encoding {
		a.st.Phase, a.st.Activity, a.st.Since = Encoding, "encoding image", a.opts.Now()
	}
	prevPath, prevImg := a.st.ImagePath, a.st.Image
	a.mu.Unlock()
	rgb, disp, err := decodeImage(ctx, abs, a.progress)
	if err != nil {
		a.errorf("%v", err)
		return false
	}
	if ctx.Err() != nil {
		a.imageCancelled(prevPath)
		return false
	}
	a.mu.Lock()
	a.st.ImagePath, a.st.Image, a.st.Overlay = abs, disp, nil // the overlay was the old image's
	a.st.Progress = "preparing and encoding (ViT, Q-Former)"
	eng := a.eng
	a.mu.Unlock()
	a.notify()

	// The engine gets the image decoded above: a large photo takes seconds
	// to decode.
	stats, err := eng.SetImage(ctx, rgb, abs)
	if err != nil {
		a.mu.Lock()
		a.st.ImagePath, a.st.Image = prevPath, prevImg
		a.mu.Unlock()
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			a.imageCancelled(prevPath)
		} else {
			a.errorf("%v", err)
		}
		return false
	}
	a.mu.Lock()
	if !resumed {
		a.lastAnswer = -1
	}
	a.refreshUsageLocked()
	a.mu.Unlock()
	if resumed {
		// The replayed transcript already shows it.
		return true
	}
	a.add(Entry{Kind: EntryImage, Text: abs, Encoding: &stats})
	a.record(Record{Type: "image", Path: abs})
	return true
}

// imageCancelled says that loading an image was cancelled and what stays.
func (a *App) imageCancelled(prev string) {
	if prev == "" {
		a.note("Image loading cancelled.")
		return
	}
	a.notef("Image loading cancelled; the image is still %s.", filepath.Base(prev))
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}
