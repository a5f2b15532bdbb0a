package app

import (
	"context"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/demo"
)

// DemoPreset is the demo's decoding: sampling (a random model answers
// greedily, or by beam search, with one word over and over), in short
// answers, since they mean nothing.
const (
	DemoPreset    = "creative"
	DemoMaxTokens = 48
)

// DemoSource is the demo model (engine/demo) in dataDir: built on first
// use, opened with its sample image and DemoPreset (threads from o when
// set). It is labelled as the demo wherever it shows.
func DemoSource(dataDir string, o OpenOptions) *ModelSource {
	dir := demo.Dir(dataDir)
	return &ModelSource{
		Dir: dir, Demo: true, Label: demo.Label,
		Image: filepath.Join(dir, demo.SampleName),
		Open: func(ctx context.Context, status func(string)) (Engine, error) {
			if !demo.Ready(dir) {
				status("building the demo model")
			}
			if _, err := demo.Ensure(ctx, dataDir); err != nil {
				return nil, err
			}
			oo := o
			oo.Status = status
			if oo.Threads == 0 {
				// The demo model is tiny: more threads only contend with
				// the interface for the cores.
				oo.Threads = 1
			}
			e, err := OpenEngine(ctx, dir, oo)
			if err != nil {
				return nil, err
			}
			s := e.Settings()
			if p, ok := findPreset(e.Presets(), DemoPreset); ok {
				s = withPreset(s, p)
			}
			s.MaxTokens = DemoMaxTokens
			if err := e.Apply(s); err != nil {
				e.Close()
				return nil, err
			}
			return e, nil
		},
	}
}
