// Package scene makes the synthetic visual world the demo model is trained
// on: 224x224 pictures of one to three flat shapes (circle, square,
// triangle, star, cross) in five colours and two sizes, each in one cell of
// a 3x3 grid, on a plain or two-tone background; with each picture its
// caption and question-answer pairs about colour, shape, count, position
// and presence.
//
// Everything is a function of (seed, index): a scene is drawn from its own
// random stream (splitmix64, so that no library's stream can change under
// it) and rendered with integer arithmetic (16 samples per pixel), so the
// same seed gives the same pixels on every machine and Go version.
//
// The world is made so that every question has one answer: two shapes of
// the same kind, or of the same colour, always differ in size, so "the
// small circle" or "the large red one" names exactly one shape; shapes sit
// in different cells, well inside them, so "top left" is never a guess.
//
// The shapes are large for their cells (small ones 38-40 pixels across,
// large ones 60-62), at the cells' centres (within 2 pixels), in five colours far apart,
// on backgrounds that barely vary: the demo model is tiny and trained in
// minutes on two cores, and a shape of a few per cent of the picture, in
// colours a few steps apart, took it far longer to see.
package scene

import (
	"fmt"
	"image"
	"image/color"
	"sort"
	"strings"
)

// Size is the side of a scene picture in pixels.
const Size = 224

// Grid is the number of rows and columns of cells a shape sits in.
const Grid = 3

// Shape is a kind of shape.
type Shape int

// The shapes, in the order of Shapes.
const (
	Circle Shape = iota
	Square
	Triangle
	Star
	Cross
)

// Shapes lists every shape.
var Shapes = []Shape{Circle, Square, Triangle, Star, Cross}

func (s Shape) String() string {
	switch s {
	case Circle:
		return "circle"
	case Square:
		return "square"
	case Triangle:
		return "triangle"
	case Star:
		return "star"
	case Cross:
		return "cross"
	}
	return fmt.Sprintf("Shape(%d)", int(s))
}

// Plural is the shape's name in the plural ("crosses").
func (s Shape) Plural() string {
	if s == Cross {
		return "crosses"
	}
	return s.String() + "s"
}

// Colour is a shape's colour.
type Colour int

// The colours, in the order of Colours.
const (
	Red Colour = iota
	Yellow
	Green
	Blue
	Purple
)

// Colours lists every colour.
var Colours = []Colour{Red, Yellow, Green, Blue, Purple}

func (c Colour) String() string {
	switch c {
	case Red:
		return "red"
	case Yellow:
		return "yellow"
	case Green:
		return "green"
	case Blue:
		return "blue"
	case Purple:
		return "purple"
	}
	return fmt.Sprintf("Colour(%d)", int(c))
}

// rgb is the colour's base value; each shape varies it a little.
func (c Colour) rgb() [3]int {
	switch c {
	case Red:
		return [3]int{220, 30, 30}
	case Yellow:
		return [3]int{240, 220, 30}
	case Green:
		return [3]int{30, 170, 50}
	case Blue:
		return [3]int{30, 80, 220}
	case Purple:
		return [3]int{150, 40, 190}
	}
	return [3]int{}
}

// Sizes of shapes.
type ShapeSize int

// The sizes.
const (
	Small ShapeSize = iota
	Large
)

func (s ShapeSize) String() string {
	if s == Large {
		return "large"
	}
	return "small"
}

// backgrounds are the muted colours a background is painted with: none is
// close to a shape colour.
var backgrounds = [][3]int{
	{212, 212, 212}, // light grey
	{240, 237, 230}, // off-white
	{70, 70, 70},    // dark grey
	{28, 28, 30},    // near black
	{226, 214, 190}, // beige
	{196, 211, 229}, // pale blue
	{203, 226, 203}, // pale green
}

// Split says how a background is divided into its two tones.
type Split int

// The splits.
const (
	Plain      Split = iota
	Vertical         // left and right parts
	Horizontal       // top and bottom parts
)

// Object is one shape in a scene.
type Object struct {
	Shape  Shape
	Colour Colour
	Size   ShapeSize
	Row    int    // grid row, 0 at the top
	Col    int    // grid column, 0 on the left
	X, Y   int    // centre in eighths of a pixel
	R      int    // radius of the bounding circle in eighths of a pixel
	RGB    [3]int // the colour as painted
}

// Scene is one picture: its background and its shapes in reading order
// (top row first, left to right).
type Scene struct {
	Seed    uint64
	Index   int
	BG      [2][3]int // the two background tones (equal when Plain)
	Split   Split
	SplitAt int // first pixel of the second tone (column or row)
	Objects []Object
}

// Generate returns scene index of the set made from seed.
func Generate(seed uint64, index int) Scene {
	r := newRand(seed, uint64(index))
	s := Scene{Seed: seed, Index: index}
	bg := r.intn(len(backgrounds))
	s.BG[0] = jitter(r, backgrounds[bg], 3)
	s.BG[1] = s.BG[0]
	s.Split = Split(r.intn(3))
	if s.Split != Plain {
		other := (bg + 1 + r.intn(len(backgrounds)-1)) % len(backgrounds)
		s.BG[1] = jitter(r, backgrounds[other], 3)
		s.SplitAt = Size/4 + r.intn(Size/2)
	}
	n := 1 + r.intn(3)
	for {
		s.Objects = s.Objects[:0]
		cells := r.perm(Grid * Grid)[:n]
		for _, cell := range cells {
			o := Object{
				Shape:  Shapes[r.intn(len(Shapes))],
				Colour: Colours[r.intn(len(Colours))],
				Size:   ShapeSize(r.intn(2)),
				Row:    cell / Grid,
				Col:    cell % Grid,
			}
			s.Objects = append(s.Objects, o)
		}
		if distinguishable(s.Objects) {
			break
		}
	}
	for i := range s.Objects {
		o := &s.Objects[i]
		// Radii in pixels: small 19-20, large 30-31; the cell is 74.7
		// pixels wide, so a shape stays at least 4 pixels inside it, and
		// its centre is at most 2 pixels off the cell's.
		if o.Size == Small {
			o.R = 8 * (19 + r.intn(2))
		} else {
			o.R = 8 * (30 + r.intn(2))
		}
		cell := 8 * Size / Grid // in eighths of a pixel
		slack := min(cell/2-o.R-8*4, 8*2)
		o.X = o.Col*cell + cell/2 - slack + r.intn(2*slack+1)
		o.Y = o.Row*cell + cell/2 - slack + r.intn(2*slack+1)
		o.RGB = jitter(r, o.Colour.rgb(), 6)
	}
	sort.SliceStable(s.Objects, func(i, j int) bool {
		a, b := s.Objects[i], s.Objects[j]
		if a.Row != b.Row {
			return a.Row < b.Row
		}
		return a.Col < b.Col
	})
	return s
}

// distinguishable reports whether every shape can be named without
// pointing: two of a kind, or of a colour, differ in size.
func distinguishable(objs []Object) bool {
	for i := range objs {
		for j := i + 1; j < len(objs); j++ {
			a, b := objs[i], objs[j]
			if a.Size == b.Size && (a.Shape == b.Shape || a.Colour == b.Colour) {
				return false
			}
		}
	}
	return true
}

func jitter(r *rng, c [3]int, d int) [3]int {
	var out [3]int
	for i, v := range c {
		out[i] = min(255, max(0, v-d+r.intn(2*d+1)))
	}
	return out
}

// Render paints the scene.
func (s Scene) Render() *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, Size, Size))
	for y := 0; y < Size; y++ {
		for x := 0; x < Size; x++ {
			c := s.BG[0]
			if (s.Split == Vertical && x >= s.SplitAt) || (s.Split == Horizontal && y >= s.SplitAt) {
				c = s.BG[1]
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(c[0]), uint8(c[1]), uint8(c[2]), 255})
		}
	}
	for _, o := range s.Objects {
		paint(img, o)
	}
	return img
}

// paint draws one shape over img, blending each pixel by the share of its
// 4x4 samples the shape covers.
func paint(img *image.NRGBA, o Object) {
	in := inside(o)
	x0, x1 := max(0, (o.X-o.R)/8-1), min(Size-1, (o.X+o.R)/8+1)
	y0, y1 := max(0, (o.Y-o.R)/8-1), min(Size-1, (o.Y+o.R)/8+1)
	for py := y0; py <= y1; py++ {
		for px := x0; px <= x1; px++ {
			n := 0
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					// Sample centres at 1/8, 3/8, 5/8, 7/8 of the pixel,
					// relative to the shape's centre.
					if in(int64(8*px+2*j+1-o.X), int64(8*py+2*i+1-o.Y)) {
						n++
					}
				}
			}
			if n == 0 {
				continue
			}
			p := img.PixOffset(px, py)
			for k := 0; k < 3; k++ {
				img.Pix[p+k] = uint8((int(img.Pix[p+k])*(16-n) + o.RGB[k]*n + 8) / 16)
			}
		}
	}
}

// inside returns the point-in-shape test of o, for points relative to its
// centre in eighths of a pixel.
func inside(o Object) func(x, y int64) bool {
	R := int64(o.R)
	switch o.Shape {
	case Circle:
		return func(x, y int64) bool { return x*x+y*y <= R*R }
	case Square:
		h := R * 82 / 100
		return func(x, y int64) bool { return abs(x) <= h && abs(y) <= h }
	case Cross:
		arm, half := R*90/100, R*30/100
		return func(x, y int64) bool {
			ax, ay := abs(x), abs(y)
			return (ax <= arm && ay <= half) || (ax <= half && ay <= arm)
		}
	case Triangle:
		// Equilateral, pointing up, its circumcircle of radius R centred
		// on the shape's centre.
		return polygon(scaled(triangle, R))
	case Star:
		return polygon(scaled(star, R))
	}
	panic("scene: unknown shape")
}

// triangle and star are unit outlines (per mille of the radius, y down),
// clockwise on screen: an upward triangle and a five-pointed star whose
// inner radius is 0.42 of the outer.
var (
	triangle = [][2]int64{{0, -1000}, {866, 500}, {-866, 500}}
	star     = [][2]int64{
		{0, -1000}, {247, -340}, {951, -309}, {400, 130}, {588, 809},
		{0, 420}, {-588, 809}, {-400, 130}, {-951, -309}, {-247, -340},
	}
)

func scaled(pts [][2]int64, r int64) [][2]int64 {
	out := make([][2]int64, len(pts))
	for i, p := range pts {
		out[i] = [2]int64{p[0] * r / 1000, p[1] * r / 1000}
	}
	return out
}

// polygon is the even-odd point-in-polygon test.
func polygon(pts [][2]int64) func(x, y int64) bool {
	return func(x, y int64) bool {
		in := false
		for i, j := 0, len(pts)-1; i < len(pts); j, i = i, i+1 {
			xi, yi, xj, yj := pts[i][0], pts[i][1], pts[j][0], pts[j][1]
			if (yi > y) == (yj > y) {
				continue
			}
			// x < xi + (y-yi)(xj-xi)/(yj-yi), without dividing.
			lhs, rhs := (x-xi)*(yj-yi), (y-yi)*(xj-xi)
			if yj-yi < 0 {
				lhs, rhs = -lhs, -rhs
			}
			if lhs < rhs {
				in = !in
			}
		}
		return in
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// Position names a grid cell: "top left", "top", "top right", "left",
// "center", "right", "bottom left", "bottom", "bottom right".
func Position(row, col int) string {
	v := [...]string{"top", "", "bottom"}[row]
	h := [...]string{"left", "", "right"}[col]
	switch {
	case v == "" && h == "":
		return "center"
	case v == "":
		return h
	case h == "":
		return v
	}
	return v + " " + h
}

// where is the phrase that places a shape: "in the top left", "at the
// top", "on the left", "in the center".
func where(row, col int) string {
	p := Position(row, col)
	switch p {
	case "top", "bottom":
		return "at the " + p
	case "left", "right":
		return "on the " + p
	}
	return "in the " + p
}

// Caption describes the scene in one canonical sentence:
//
//	a large red circle in the top left
//	a small red circle above a large blue square
//	a small green star to the left of a large yellow cross
//	a small red circle, a large blue square and a small green star
func (s Scene) Caption() string {
	o := s.Objects
	switch len(o) {
	case 1:
		return o[0].phrase() + " " + where(o[0].Row, o[0].Col)
	case 2:
		if o[0].Row != o[1].Row {
			return o[0].phrase() + " above " + o[1].phrase()
		}
		return o[0].phrase() + " to the left of " + o[1].phrase()
	}
	parts := make([]string, len(o))
	for i := range o {
		parts[i] = o[i].phrase()
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// phrase is "a small red circle".
func (o Object) phrase() string {
	return fmt.Sprintf("a %s %s %s", o.Size, o.Colour, o.Shape)
}
