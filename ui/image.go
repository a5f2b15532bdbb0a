package ui

import (
	"fmt"
	"image"
	"image/color"
	"strings"

	"github.com/muesli/termenv"
	"github.com/qeesung/image2ascii/ascii"
	"golang.org/x/image/draw"

	"github.com/blip2chat/blip2chat/app"
)

// ImageMode is how the image pane draws the image.
type ImageMode int

const (
	// ASCII draws one character per cell, chosen by brightness
	// (image2ascii's ramp), coloured with the cell's colour.
	ASCII ImageMode = iota
	// HalfBlock draws "▀" with the upper pixel as foreground and the lower
	// one as background: two pixels per cell, for truecolor terminals.
	HalfBlock
)

func (m ImageMode) String() string {
	if m == HalfBlock {
		return "half-block"
	}
	return "ascii"
}

// fitCells is the largest grid of cells (at most maxCols x maxRows) that
// shows a w x h image with its aspect ratio, a cell being about twice as
// tall as it is wide.
func fitCells(w, h, maxCols, maxRows int) (cols, rows int) {
	if w <= 0 || h <= 0 || maxCols <= 0 || maxRows <= 0 {
		return 0, 0
	}
	cols = maxCols
	rows = int(float64(cols)*float64(h)/float64(w)/2 + 0.5)
	if rows > maxRows {
		rows = maxRows
		cols = int(float64(rows)*2*float64(w)/float64(h) + 0.5)
	}
	return max(1, min(cols, maxCols)), max(1, min(rows, maxRows))
}

// resize scales img to w x h pixels.
func resize(img image.Image, w, h int) *image.NRGBA {
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.BiLinear.Scale(dst, dst.Bounds(), img, img.Bounds(), draw.Src, nil)
	return dst
}

// renderImage draws img in at most maxCols x maxRows cells, as lines of
// equal width, with heat (nil: none) tinting its cells. Under the Ascii
// profile (NO_COLOR) the half-block mode, which needs colour, falls back
// to plain ASCII.
func renderImage(img image.Image, maxCols, maxRows int, mode ImageMode, p termenv.Profile, heat *app.HeatMap) []string {
	b := img.Bounds()
	cols, rows := fitCells(b.Dx(), b.Dy(), maxCols, maxRows)
	if cols == 0 {
		return nil
	}
	if mode == HalfBlock && p != termenv.Ascii {
		return halfBlock(tint(resize(img, cols, rows*2), heat), p)
	}
	return asciiArt(tint(resize(img, cols, rows), heat), p)
}

// heatColor is what the hottest cells of an overlay turn towards.
var heatColor = color.NRGBA{R: 255, G: 64, B: 0, A: 255}

// tint lays heat over img in place: each pixel takes the value of the
// grid cell it falls in (the model sees the whole image squeezed to a
// square, so the grid spans the whole image), cold cells darkened and hot
// ones turned towards heatColor, so that where the model looked stands
// out whatever the picture's colours.
func tint(img *image.NRGBA, heat *app.HeatMap) *image.NRGBA {
	if heat == nil || heat.Grid <= 0 || len(heat.Cells) != heat.Grid*heat.Grid {
		return img
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	for y := 0; y < h; y++ {
		gy := min(y*heat.Grid/h, heat.Grid-1)
		for x := 0; x < w; x++ {
			v := min(max(heat.Cells[gy*heat.Grid+min(x*heat.Grid/w, heat.Grid-1)], 0), 1)
			c := img.NRGBAAt(b.Min.X+x, b.Min.Y+y)
			keep, a := 0.25+0.35*v, 0.6*v
			mix := func(ch, hc uint8) uint8 { return uint8(min(255, float64(ch)*keep+float64(hc)*a+0.5)) }
			img.SetNRGBA(b.Min.X+x, b.Min.Y+y, color.NRGBA{mix(c.R, heatColor.R), mix(c.G, heatColor.G), mix(c.B, heatColor.B), 255})
		}
	}
	return img
}

// asciiArt converts each pixel with image2ascii's converter.
func asciiArt(img *image.NRGBA, p termenv.Profile) []string {
	conv := ascii.NewPixelConverter()
	opts := ascii.NewOptions()
	opts.Colored = false // colour is added below, for the terminal's profile
	b := img.Bounds()
	lines := make([]string, 0, b.Dy())
	var sb strings.Builder
	for y := b.Min.Y; y < b.Max.Y; y++ {
		sb.Reset()
		var last string
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.NRGBAAt(x, y)
			cp := conv.ConvertPixelToPixelASCII(color.RGBA{c.R, c.G, c.B, 255}, &opts)
			if p != termenv.Ascii {
				if seq := fg(p, c); seq != last {
					sb.WriteString(seq)
					last = seq
				}
			}
			sb.WriteByte(cp.Char)
		}
		if p != termenv.Ascii {
			sb.WriteString("\x1b[0m")
		}
		lines = append(lines, sb.String())
	}
	return lines
}

// halfBlock draws two rows of pixels per line of cells.
func halfBlock(img *image.NRGBA, p termenv.Profile) []string {
	b := img.Bounds()
	lines := make([]string, 0, b.Dy()/2)
	var sb strings.Builder
	for y := b.Min.Y; y+1 < b.Max.Y; y += 2 {
		sb.Reset()
		for x := b.Min.X; x < b.Max.X; x++ {
			sb.WriteString(fg(p, img.NRGBAAt(x, y)))
			sb.WriteString(bg(p, img.NRGBAAt(x, y+1)))
			sb.WriteString("▀")
		}
		sb.WriteString("\x1b[0m")
		lines = append(lines, sb.String())
	}
	return lines
}

// fg and bg are the escape sequences of a colour in profile p (truecolor
// written directly, the others through termenv's nearest colour).
func fg(p termenv.Profile, c color.NRGBA) string { return sgr(p, c, false) }
func bg(p termenv.Profile, c color.NRGBA) string { return sgr(p, c, true) }

func sgr(p termenv.Profile, c color.NRGBA, background bool) string {
	if p == termenv.TrueColor {
		if background {
			return fmt.Sprintf("\x1b[48;2;%d;%d;%dm", c.R, c.G, c.B)
		}
		return fmt.Sprintf("\x1b[38;2;%d;%d;%dm", c.R, c.G, c.B)
	}
	tc := p.Color(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))
	if tc == nil {
		return ""
	}
	return "\x1b[" + tc.Sequence(background) + "m"
}
