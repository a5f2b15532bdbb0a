package app

import (
	"context"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/demo"
)

// DemoSettings sample rather than pick the likeliest token: a random model
// answers greedily with one word over and over. Short answers, since they
// mean nothing.
var DemoSettings = Settings{Temperature: 0.8, TopP: 0.95, TopK: 40, MaxTokens: 48, Seed: -1,
	Template: "Question: {prompt} Answer:", Threads: 1}

// DemoSource is the demo model (engine/demo) in dataDir: built on first
// use, opened with its sample image and DemoSettings (threads from o when
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
			s := DemoSettings
			cur := e.Settings()
			s.Threads, s.Template = cur.Threads, cur.Template
			if err := e.Apply(s); err != nil {
				e.Close()
				return nil, err
			}
			return e, nil
		},
	}
}
