package scene

import (
	"fmt"
	"strings"
)

// Question types.
const (
	TypeColour   = "colour"   // what colour is the circle? -> red
	TypeShape    = "shape"    // what shape is the red one? -> circle
	TypeShapes   = "shapes"   // what shapes are there? -> circle and square
	TypeCount    = "count"    // how many circles are there? -> two
	TypePosition = "position" // where is the red circle? -> top left
	TypeYesNo    = "yesno"    // is there a blue star? -> no
)

// Types lists the question types in a fixed order.
var Types = []string{TypeColour, TypeShape, TypeShapes, TypeCount, TypePosition, TypeYesNo}

// QA is one question about a scene and its answer.
type QA struct {
	Type     string `json:"type"`
	Question string `json:"q"`
	Answer   string `json:"a"`
}

var numbers = []string{"zero", "one", "two", "three"}

// Questions lists every question the world asks about the scene, each
// phrasing separately, in a fixed order. Every one has a single answer.
func (s Scene) Questions() []QA {
	var out []QA
	add := func(typ, q, a string) { out = append(out, QA{typ, q, a}) }
	objs := s.Objects

	// Colour: the shape is named without its colour.
	for _, o := range objs {
		for _, ref := range s.refs(o, false) {
			for _, f := range []string{"what colour is the %s?", "what color is the %s?",
				"what is the colour of the %s?", "what is the color of the %s?"} {
				add(TypeColour, fmt.Sprintf(f, ref), o.Colour.String())
			}
		}
	}

	// Shape: the shape is named by colour (and size) or by place.
	for _, o := range objs {
		for _, ref := range s.shapeFreeRefs(o) {
			add(TypeShape, fmt.Sprintf("what shape is the %s one?", ref), o.Shape.String())
		}
		add(TypeShape, fmt.Sprintf("what shape is %s?", where(o.Row, o.Col)), o.Shape.String())
		if s.count(func(p Object) bool { return p.Colour == o.Colour }) == 1 {
			add(TypeShape, fmt.Sprintf("which shape is %s?", o.Colour), o.Shape.String())
		}
	}

	kinds := s.kinds()
	for _, f := range []string{"what shapes are there?", "which shapes are in the image?",
		"what shapes can you see?", "what shapes are in the picture?"} {
		add(TypeShapes, f, kinds)
	}

	add(TypeCount, "how many shapes are there?", numbers[len(objs)])
	for _, k := range Shapes {
		n := s.count(func(p Object) bool { return p.Shape == k })
		add(TypeCount, fmt.Sprintf("how many %s are there?", k.Plural()), numbers[n])
	}
	for _, c := range Colours {
		n := s.count(func(p Object) bool { return p.Colour == c })
		add(TypeCount, fmt.Sprintf("how many %s shapes are there?", c), numbers[n])
	}

	for _, o := range objs {
		for _, ref := range s.refs(o, true) {
			add(TypePosition, fmt.Sprintf("where is the %s?", ref), Position(o.Row, o.Col))
		}
	}

	// Yes/no: shapes and coloured shapes that are or are not there, and
	// the colour of a named shape.
	for _, k := range Shapes {
		yes := s.count(func(p Object) bool { return p.Shape == k }) > 0
		add(TypeYesNo, fmt.Sprintf("is there a %s?", k), yesNo(yes))
	}
	for _, c := range Colours {
		for _, k := range Shapes {
			yes := s.count(func(p Object) bool { return p.Shape == k && p.Colour == c }) > 0
			add(TypeYesNo, fmt.Sprintf("is there %s %s %s?", article(c.String()), c, k), yesNo(yes))
		}
	}
	for _, o := range objs {
		for _, ref := range s.refs(o, false) {
			for _, c := range Colours {
				add(TypeYesNo, fmt.Sprintf("is the %s %s?", ref, c), yesNo(o.Colour == c))
			}
		}
	}
	return out
}

// Pick chooses one question of each type for the scene (yes and no
// equally likely), from a stream of its own: the held-out sets ask these.
func (s Scene) Pick() []QA {
	r := newRand(s.Seed^0x5eed5eed5eed5eed, uint64(s.Index))
	all := s.Questions()
	var out []QA
	for _, typ := range Types {
		var cands []QA
		for _, qa := range all {
			if qa.Type == typ {
				cands = append(cands, qa)
			}
		}
		if typ == TypeYesNo {
			want := yesNo(r.intn(2) == 0)
			var same []QA
			for _, qa := range cands {
				if qa.Answer == want {
					same = append(same, qa)
				}
			}
			if len(same) > 0 {
				cands = same
			}
		}
		out = append(out, cands[r.intn(len(cands))])
	}
	return out
}

// refs lists the ways to name o that fit no other shape: "circle", "small
// circle", and with colours "red circle", "small red circle".
func (s Scene) refs(o Object, colour bool) []string {
	type cand struct {
		text  string
		match func(Object) bool
	}
	cands := []cand{
		{o.Shape.String(), func(p Object) bool { return p.Shape == o.Shape }},
		{o.Size.String() + " " + o.Shape.String(), func(p Object) bool { return p.Shape == o.Shape && p.Size == o.Size }},
	}
	if colour {
		cands = append(cands,
			cand{o.Colour.String() + " " + o.Shape.String(), func(p Object) bool { return p.Shape == o.Shape && p.Colour == o.Colour }},
			cand{o.Size.String() + " " + o.Colour.String() + " " + o.Shape.String(), func(p Object) bool { return p.Shape == o.Shape && p.Colour == o.Colour && p.Size == o.Size }})
	}
	var out []string
	for _, c := range cands {
		if s.count(c.match) == 1 {
			out = append(out, c.text)
		}
	}
	return out
}

// shapeFreeRefs lists the ways to name o by colour and size that fit no
// other shape: "red", "small red".
func (s Scene) shapeFreeRefs(o Object) []string {
	var out []string
	if s.count(func(p Object) bool { return p.Colour == o.Colour }) == 1 {
		out = append(out, o.Colour.String())
	}
	if s.count(func(p Object) bool { return p.Colour == o.Colour && p.Size == o.Size }) == 1 {
		out = append(out, o.Size.String()+" "+o.Colour.String())
	}
	return out
}

func (s Scene) count(match func(Object) bool) int {
	n := 0
	for _, o := range s.Objects {
		if match(o) {
			n++
		}
	}
	return n
}

// kinds lists the kinds of shape in reading order of their first
// appearance: "circle", "circle and square", "circle, square and star".
func (s Scene) kinds() string {
	var names []string
	seen := map[Shape]bool{}
	for _, o := range s.Objects {
		if !seen[o.Shape] {
			seen[o.Shape] = true
			names = append(names, o.Shape.String())
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// article is "an" before a vowel, else "a".
func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}
