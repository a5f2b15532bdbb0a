package ui

import (
	"image"
	"image/color"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// TestTint: the overlay darkens cold cells and turns hot ones towards
// the heat colour, each pixel by the grid cell it falls in; no overlay
// leaves the image as it is.
func TestTint(t *testing.T) {
	grey := color.NRGBA{128, 128, 128, 255}
	img := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = grey.R, grey.G, grey.B, grey.A
	}
	before := slices.Clone(img.Pix)
	tint(img, nil)
	if !slices.Equal(before, img.Pix) {
		t.Fatal("no overlay changed the image")
	}
	// 2x2 grid: hot top left, cold elsewhere.
	tint(img, &app.HeatMap{Grid: 2, Cells: []float64{1, 0, 0, 0}})
	hot, cold := img.NRGBAAt(1, 1), img.NRGBAAt(6, 5)
	if !(hot.R > cold.R && hot.R > grey.R && cold.R < grey.R && hot.R > hot.B) {
		t.Errorf("hot cell %v, cold cell %v (from %v)", hot, cold, grey)
	}
	if img.NRGBAAt(3, 2) != hot || img.NRGBAAt(4, 2) != cold || img.NRGBAAt(3, 3) != cold {
		t.Errorf("cells do not follow the grid: %v %v %v", img.NRGBAAt(3, 2), img.NRGBAAt(4, 2), img.NRGBAAt(3, 3))
	}
	// Drawn half-block in truecolor, the hot corner shows the heat.
	src := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	copy(src.Pix, slices.Repeat(before[:4], 16*16))
	lines := renderImage(src, 8, 4, HalfBlock, termenv.TrueColor, &app.HeatMap{Grid: 2, Cells: []float64{1, 0, 0, 0}})
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "\x1b[38;2;") || lines[0] == lines[len(lines)-1] {
		t.Errorf("half-block overlay lines %q", lines)
	}
}

// TestAttentionScreen: /attention in the interface tints the image
// preview where the model looked (the golden screen at 100x30), says what
// it shows (TestAttentionOverlay in app: again takes it off).
func TestAttentionScreen(t *testing.T) {
	dir := t.TempDir()
	eng := apptest.NewEngine()
	// 4x4 patches; the queries look at the top-left quarter.
	eng.Attn = &app.Attention{Grid: 4, Queries: [][]float64{
		{0.3, 0.3, 0, 0, 0.3, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0.2, 0.2, 0, 0, 0.2, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0.2, 0},
	}}
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	img := apptest.WritePNG(t, dir, "husky.png", 40, 30)
	a := app.New(app.Options{Model: eng.Source(dir, img), Now: func() time.Time { return start }})
	tm := teatest.NewTestModel(t, New(a, Options{Version: "test", ImageMode: ASCII}), teatest.WithInitialTermSize(100, 30))
	scr := &screen{tm: tm}
	t.Cleanup(func() { tm.Quit(); a.Close() })
	waitApp(t, a, "the image", func(s app.State) bool { return idle(s) && s.Image != nil })
	tm.Type("/attention")
	tm.Send(enter)
	scr.has(t, "Attention overlay: all 2 queries")
	waitApp(t, a, "the overlay", func(s app.State) bool { return idle(s) && s.Overlay != nil })
	tm.Send(ctrlC)
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(*Model)
	a.Close()
	if fm.st.Overlay == nil {
		t.Fatal("the interface has no overlay")
	}
	w, h := fm.imagePaneSize()
	plain := renderImage(fm.st.Image, w-2, fm.imageRows(h-2), fm.mode, fm.prof, nil)
	if slices.Equal(plain, fm.imgLines) {
		t.Error("the preview is drawn without the overlay")
	}
	// The top-left quarter is tinted, the bottom-right corner is not
	// brightened: the lines' first halves change more than their ends.
	if len(fm.imgLines) < 4 || fm.imgLines[0][:len(fm.imgLines[0])/4] == plain[0][:len(plain[0])/4] {
		t.Errorf("the hot corner is drawn as without the overlay:\n%s\n%s", strings.Join(fm.imgLines, "\n"), strings.Join(plain, "\n"))
	}
	golden.RequireEqual(t, []byte(ansi.Strip(fm.render())))
}
