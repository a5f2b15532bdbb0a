// Command scenes writes a set of synthetic scenes (see package scene): one
// PNG per scene and a manifest, scenes.jsonl, with one line per scene: its
// file, caption, shapes and questions.
//
//	go run ./tools/scenes -seed 1 -n 20000 -all -out /tmp/train     # training set: every question
//	go run ./tools/scenes -seed 2 -n 200 -out testdata/scenes      # held-out set: one question per type
//
// The same seed and count give the same files, byte for byte.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/blip2chat/blip2chat/tools/scenes/scene"
)

// Record is one line of scenes.jsonl.
type Record struct {
	Index   int         `json:"index"`
	File    string      `json:"file"`
	Caption string      `json:"caption"`
	Objects []ObjectRec `json:"objects"`
	QA      []scene.QA  `json:"qa"`
}

// ObjectRec describes one shape of a scene.
type ObjectRec struct {
	Shape    string `json:"shape"`
	Colour   string `json:"colour"`
	Size     string `json:"size"`
	Position string `json:"position"`
}

func main() {
	seed := flag.Uint64("seed", 1, "seed of the set")
	n := flag.Int("n", 200, "number of scenes")
	start := flag.Int("start", 0, "index of the first scene")
	out := flag.String("out", "", "output folder (created)")
	all := flag.Bool("all", false, "write every question of each scene (training), not one per type")
	flag.Parse()
	if err := run(*seed, *start, *n, *out, *all); err != nil {
		fmt.Fprintln(os.Stderr, "scenes:", err)
		os.Exit(1)
	}
}

func run(seed uint64, start, n int, out string, all bool) error {
	switch {
	case out == "":
		return fmt.Errorf("-out is required")
	case n <= 0 || n > 10_000_000:
		return fmt.Errorf("-n %d: want 1 to 10000000 scenes", n)
	case start < 0:
		return fmt.Errorf("-start %d is negative", start)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	recs := make([]Record, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				recs[i], errs[i] = write(seed, start+i, out, all)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	var buf bytes.Buffer
	for i := range recs {
		if errs[i] != nil {
			return errs[i]
		}
		line, err := json.Marshal(recs[i])
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	// The manifest last, and whole: a folder with a manifest is complete.
	tmp := filepath.Join(out, ".scenes.jsonl.tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(out, "scenes.jsonl"))
}

// write renders scene index to out and returns its record.
func write(seed uint64, index int, out string, all bool) (Record, error) {
	s := scene.Generate(seed, index)
	name := fmt.Sprintf("%05d.png", index)
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, s.Render()); err != nil {
		return Record{}, err
	}
	if err := os.WriteFile(filepath.Join(out, name), buf.Bytes(), 0o644); err != nil {
		return Record{}, err
	}
	r := Record{Index: index, File: name, Caption: s.Caption()}
	for _, o := range s.Objects {
		r.Objects = append(r.Objects, ObjectRec{o.Shape.String(), o.Colour.String(), o.Size.String(), scene.Position(o.Row, o.Col)})
	}
	if all {
		r.QA = s.Questions()
	} else {
		r.QA = s.Pick()
	}
	return r, nil
}
