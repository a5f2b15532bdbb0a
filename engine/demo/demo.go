// Package demo provides the demo model, so that anyone can try blip2chat
// without downloading a checkpoint: a tiny BLIP-2 (ViT, Q-Former,
// projection and a LLaMA language model) trained only on the synthetic
// shapes of tools/scenes (tools/train-demo), whose converted files are
// committed in engine/demo/trained and built into the binary. It answers
// questions such as "what colour is the circle?" about pictures of that
// world, and nothing else; its sample images are scenes from the same
// generator.
//
// A model of the same kind with random weights (RandomDir, EnsureRandom)
// stays for tests that need long answers fast.
package demo

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// Version is the demo models' version: a cached model of another version is
// rebuilt. Bump it whenever the weights, the shapes, the seed, the samples
// or the formats change.
const Version = 3

// Label is what the app shows wherever the demo model is in use.
const Label = "demo model: trained only on synthetic shapes"

// SampleName is the file name of the sample image the demo opens with; the
// other samples are beside it in the folder (Samples).
const SampleName = "sample.png"

// trained holds the converted trained model: f16 vision (ViT, Q-Former,
// projection), the f16 LLaMA with its tokenizer, and the decoding it was
// evaluated with (greedy).
//
//go:embed trained/vision.gguf trained/llm.gguf trained/generation_config.json
var trained embed.FS

// samples holds the sample scenes (samples/README.md says which).
//
//go:embed samples/*.png
var samples embed.FS

// Samples lists the sample images' file names, SampleName first.
func Samples() []string {
	ents, _ := samples.ReadDir("samples")
	out := []string{SampleName}
	for _, e := range ents {
		if e.Name() != SampleName {
			out = append(out, e.Name())
		}
	}
	return out
}

// SampleImage returns the sample image the demo opens with (a PNG).
func SampleImage() []byte {
	b, _ := samples.ReadFile(path.Join("samples", SampleName))
	return b
}

// stamp is written last into a built model folder; a folder without it, or
// with another version or label, is rebuilt.
const stamp = "demo.json"

type stampFile struct {
	Version int    `json:"version"`
	Label   string `json:"label"`
}

// Dir is where the demo model lives in the data folder.
func Dir(dataDir string) string { return filepath.Join(dataDir, "demo") }

// Ready reports whether dir holds a demo model of this Version.
func Ready(dir string) bool { return ready(dir, Label) }

func ready(dir, label string) bool {
	data, err := safefile.ReadFile(filepath.Join(dir, stamp), 1<<20) // a FIFO in the data folder must not block
	if err != nil {
		return false
	}
	var s stampFile
	if json.Unmarshal(data, &s) != nil || s.Version != Version || s.Label != label {
		return false
	}
	for _, f := range append([]string{convert.VisionFile, lmconv.FileName}, Samples()...) {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Ensure returns the demo model folder under dataDir (dataDir/demo, with
// vision.gguf, llm.gguf, generation_config.json and the sample images),
// writing it first when it is missing or of another version. The folder
// is written beside its final place and renamed into it, so an
// interrupted build leaves nothing half-written; two processes building at
// once both end with a complete folder.
func Ensure(ctx context.Context, dataDir string) (string, error) {
	return ensure(ctx, Dir(dataDir), Label, Build)
}

// Build writes a complete demo model folder into dir (which must exist):
// the trained model's files and the samples.
func Build(ctx context.Context, dir string) error {
	ents, err := trained.ReadDir("trained")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		b, err := trained.ReadFile(path.Join("trained", e.Name()))
		if err != nil {
			return err
		}
		if err := writeSynced(filepath.Join(dir, e.Name()), b); err != nil {
			return err
		}
	}
	return writeSamples(dir)
}

func writeSamples(dir string) error {
	for _, name := range Samples() {
		b, err := samples.ReadFile(path.Join("samples", name))
		if err != nil {
			return err
		}
		if err := writeSynced(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

// ensure makes dir a ready model folder labelled label, built by build.
func ensure(ctx context.Context, dir, label string, build func(context.Context, string) error) (string, error) {
	if ready(dir, label) {
		return dir, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	dataDir := filepath.Dir(dir)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("demo model: %w", err)
	}
	tmp, err := os.MkdirTemp(dataDir, ".demo-build-")
	if err != nil {
		return "", fmt.Errorf("demo model: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := build(ctx, tmp); err != nil {
		return "", fmt.Errorf("demo model: %w", err)
	}
	data, _ := json.MarshalIndent(stampFile{Version: Version, Label: label}, "", "  ")
	if err := writeSynced(filepath.Join(tmp, stamp), data); err != nil {
		return "", fmt.Errorf("demo model: %w", err)
	}
	// Move an old folder aside, then put the new one in place.
	if _, err := os.Stat(dir); err == nil {
		old := dir + ".old-" + strconv.Itoa(os.Getpid())
		if err := os.Rename(dir, old); err == nil {
			defer os.RemoveAll(old)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if ready(dir, label) { // another process won the race
			return dir, nil
		}
		return "", fmt.Errorf("demo model: %w", err)
	}
	return dir, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
