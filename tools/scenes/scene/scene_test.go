package scene

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSameSeedSamePixels(t *testing.T) {
	for i := 0; i < 20; i++ {
		a, b := Generate(7, i), Generate(7, i)
		if !reflect.DeepEqual(a, b) || !bytes.Equal(a.Render().Pix, b.Render().Pix) {
			t.Fatalf("scene %d differs between two runs", i)
		}
		if reflect.DeepEqual(a.Objects, Generate(8, i).Objects) && reflect.DeepEqual(a.BG, Generate(8, i).BG) {
			t.Errorf("scene %d is the same under seeds 7 and 8", i)
		}
	}
}

// TestHeldOutSet checks that testdata/scenes is what the generator makes
// from seed 2 (pixels, caption, questions), so the test set can always be
// remade and nothing edited it by hand.
func TestHeldOutSet(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata", "scenes")
	f, err := os.Open(filepath.Join(dir, "scenes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var rec struct {
			Index   int    `json:"index"`
			File    string `json:"file"`
			Caption string `json:"caption"`
			QA      []QA   `json:"qa"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		s := Generate(2, rec.Index)
		if rec.Caption != s.Caption() || !reflect.DeepEqual(rec.QA, s.Pick()) {
			t.Fatalf("%s: caption or questions differ from the generator's", rec.File)
		}
		data, err := os.ReadFile(filepath.Join(dir, rec.File))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", rec.File, err)
		}
		want := s.Render()
		for y := 0; y < Size; y++ {
			for x := 0; x < Size; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				w := want.NRGBAAt(x, y)
				if uint8(r>>8) != w.R || uint8(g>>8) != w.G || uint8(b>>8) != w.B {
					t.Fatalf("%s: pixel (%d,%d) differs from the generator's", rec.File, x, y)
				}
			}
		}
		n++
	}
	if n < 200 {
		t.Fatalf("%d held-out scenes, want at least 200", n)
	}
}

// TestRender checks where the paint goes: each shape's colour at its
// centre (the star's centre is inside it too), the background in empty
// cells, and areas close to the geometry's.
func TestRender(t *testing.T) {
	for i := 0; i < 300; i++ {
		s := Generate(3, i)
		img := s.Render()
		used := map[int]bool{}
		for _, o := range s.Objects {
			used[o.Row*Grid+o.Col] = true
			c := img.NRGBAAt(o.X/8, o.Y/8)
			if [3]int{int(c.R), int(c.G), int(c.B)} != o.RGB {
				t.Fatalf("scene %d: centre of the %s is %v, want %v", i, o.Shape, c, o.RGB)
			}
			if (o.X/8)*Grid/Size != o.Col || (o.Y/8)*Grid/Size != o.Row {
				t.Fatalf("scene %d: %s at (%d,%d) is outside its cell %d,%d", i, o.Shape, o.X/8, o.Y/8, o.Row, o.Col)
			}
		}
		for cell := 0; cell < Grid*Grid; cell++ {
			if used[cell] {
				continue
			}
			x, y := (cell%Grid)*Size/Grid+Size/(2*Grid), (cell/Grid)*Size/Grid+Size/(2*Grid)
			c := img.NRGBAAt(x, y)
			got := [3]int{int(c.R), int(c.G), int(c.B)}
			if got != s.BG[0] && got != s.BG[1] {
				t.Fatalf("scene %d: empty cell %d is painted %v", i, cell, got)
			}
		}
	}
	// Areas, as a share of the bounding circle's, for a large shape.
	for _, tc := range []struct {
		shape Shape
		frac  float64 // area / (pi R^2)
	}{
		{Circle, 1}, {Square, 4 * 0.82 * 0.82 / 3.14159}, {Triangle, 0.4135},
		{Cross, (2*1.8*0.6 - 0.6*0.6) / 3.14159}, {Star, 10 * 0.5 * 0.42 * 0.587785 / 3.14159},
	} {
		o := Object{Shape: tc.shape, X: 8 * 112, Y: 8 * 112, R: 8 * 40, RGB: [3]int{255, 255, 255}}
		img := image.NewNRGBA(image.Rect(0, 0, Size, Size))
		paint(img, o)
		var sum float64
		for i := 0; i < len(img.Pix); i += 4 {
			sum += float64(img.Pix[i]) / 255
		}
		want := tc.frac * 3.14159 * 40 * 40
		if d := sum/want - 1; d > 0.02 || d < -0.02 {
			t.Errorf("%s: painted area %.0f px, want %.0f", tc.shape, sum, want)
		}
	}
}

func TestCaption(t *testing.T) {
	obj := func(sh Shape, c Colour, sz ShapeSize, row, col int) Object {
		return Object{Shape: sh, Colour: c, Size: sz, Row: row, Col: col}
	}
	for _, tc := range []struct {
		objs []Object
		want string
	}{
		{[]Object{obj(Circle, Red, Large, 0, 0)}, "a large red circle in the top left"},
		{[]Object{obj(Star, Purple, Small, 0, 1)}, "a small purple star at the top"},
		{[]Object{obj(Cross, Blue, Small, 1, 2)}, "a small blue cross on the right"},
		{[]Object{obj(Square, Green, Large, 1, 1)}, "a large green square in the center"},
		{[]Object{obj(Circle, Red, Small, 0, 2), obj(Square, Blue, Large, 2, 0)}, "a small red circle above a large blue square"},
		{[]Object{obj(Star, Green, Small, 1, 0), obj(Cross, Yellow, Large, 1, 2)}, "a small green star to the left of a large yellow cross"},
		{[]Object{obj(Circle, Red, Small, 0, 0), obj(Square, Blue, Large, 1, 1), obj(Star, Green, Small, 2, 2)},
			"a small red circle, a large blue square and a small green star"},
	} {
		if got := (Scene{Objects: tc.objs}).Caption(); got != tc.want {
			t.Errorf("caption %q, want %q", got, tc.want)
		}
	}
}

// TestQuestions checks, over many scenes, that every question has one
// answer, that every type is asked, that yes and no both occur, and a few
// answers against the scene.
func TestQuestions(t *testing.T) {
	yes, no := 0, 0
	for i := 0; i < 500; i++ {
		s := Generate(4, i)
		seen := map[string]string{}
		types := map[string]bool{}
		for _, qa := range s.Questions() {
			if a, dup := seen[qa.Question]; dup && a != qa.Answer {
				t.Fatalf("scene %d: %q has answers %q and %q", i, qa.Question, a, qa.Answer)
			}
			seen[qa.Question] = qa.Answer
			types[qa.Type] = true
		}
		for _, typ := range Types {
			if !types[typ] {
				t.Fatalf("scene %d (%s): no %s question", i, s.Caption(), typ)
			}
		}
		if got := seen["how many shapes are there?"]; got != numbers[len(s.Objects)] {
			t.Errorf("scene %d: %d shapes, answer %q", i, len(s.Objects), got)
		}
		for _, o := range s.Objects {
			if got := seen["what shape is "+where(o.Row, o.Col)+"?"]; got != o.Shape.String() {
				t.Errorf("scene %d: the shape %s is %q, want %s", i, where(o.Row, o.Col), got, o.Shape)
			}
			if !strings.Contains(s.Caption(), o.phrase()) {
				t.Errorf("scene %d: caption %q misses %q", i, s.Caption(), o.phrase())
			}
		}
		picked := s.Pick()
		if len(picked) != len(Types) {
			t.Fatalf("scene %d: picked %d questions", i, len(picked))
		}
		for j, qa := range picked {
			if qa.Type != Types[j] || seen[qa.Question] != qa.Answer {
				t.Fatalf("scene %d: picked %+v", i, qa)
			}
			if qa.Type == TypeYesNo {
				if qa.Answer == "yes" {
					yes++
				} else {
					no++
				}
			}
		}
	}
	if yes < 200 || no < 200 {
		t.Errorf("picked yes/no answers: %d yes, %d no", yes, no)
	}
}

func TestPosition(t *testing.T) {
	want := []string{"top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"}
	for cell, w := range want {
		if got := Position(cell/Grid, cell%Grid); got != w {
			t.Errorf("cell %d: %q, want %q", cell, got, w)
		}
	}
}
