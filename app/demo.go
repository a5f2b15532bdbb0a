package app

import (
	"context"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/demo"
)

// DemoPreset is the demo's decoding: the trained demo model's own
// generation_config.json, greedy, which is how its accuracy was measured
// (engine/demo/trained). LAVIS's presets fit it less well: "vqa" stops at
// 10 new tokens, short of a three-shape caption, and "caption"'s 8 new
// tokens at least would pad out a short one.
const DemoPreset = "reference"

// RandomDemoPreset is the random-weight model's decoding: sampling (a
// random model answers greedily, or by beam search, with one word over and
// over), in short answers, since they mean nothing.
const (
	RandomDemoPreset    = "creative"
	RandomDemoMaxTokens = 48
)

// DemoSource is the demo model (engine/demo: trained only on synthetic
// shapes) in dataDir: written out on first use, opened with its first
// sample scene and DemoPreset (threads from o when set). It is labelled as
// the demo wherever it shows.
func DemoSource(dataDir string, o OpenOptions) *ModelSource {
	return demoSource(demo.Dir(dataDir), demo.Label, demo.Ready, func(ctx context.Context) error {
		_, err := demo.Ensure(ctx, dataDir)
		return err
	}, o, DemoPreset, 0)
}

// RandomDemoSource is DemoSource for the random-weight model
// (demo.EnsureRandom): its answers are meaningless and run on to
// RandomDemoMaxTokens, which interface and speed tests of long answers
// need.
func RandomDemoSource(dataDir string, o OpenOptions) *ModelSource {
	dir := demo.RandomDir(dataDir)
	return demoSource(dir, demo.RandomLabel, demo.ReadyRandom, func(ctx context.Context) error {
		_, err := demo.EnsureRandom(ctx, dataDir)
		return err
	}, o, RandomDemoPreset, RandomDemoMaxTokens)
}

// demoSource opens the demo model folder dir, made by ensure, with preset
// (and maxTokens when not 0).
func demoSource(dir, label string, ready func(string) bool, ensure func(context.Context) error, o OpenOptions, preset string, maxTokens int) *ModelSource {
	return &ModelSource{
		Dir: dir, Demo: true, Label: label,
		Image: filepath.Join(dir, demo.SampleName),
		Open: func(ctx context.Context, status func(string)) (Engine, error) {
			if !ready(dir) {
				status("preparing the demo model")
			}
			if err := ensure(ctx); err != nil {
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
			if p, ok := findPreset(e.Presets(), preset); ok {
				s = withPreset(s, p)
			}
			if maxTokens > 0 {
				s.MaxTokens = maxTokens
			}
			if err := e.Apply(s); err != nil {
				e.Close()
				return nil, err
			}
			return e, nil
		},
	}
}
