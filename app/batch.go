package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/vision"
)

// A batch answers every prompt under every setting about every image of a
// list, on one loaded model (`blip2chat batch`; several models run one
// after the other, each through its own Batch). Each answer is what `ask`
// answers with the same arguments (model.AnswerPrompt, model.AnswerContext
// and the one driver, generate.Driver); each image is decoded and put
// through the ViT once, and its features serve every prompt and setting
// (InstructBLIP's Q-Former, which reads the instruction, runs once per
// instruction).

// Setting is one decoding a batch or /compare tries: a preset, then /set
// changes. Written "vqa", "num_beams=1", "vqa+max_tokens=5" or
// "vqa max_tokens=5".
type Setting struct {
	Preset  string      // a generate.PresetNames name; "" is "reference"
	Changes [][2]string // /set keys and values, in order
}

// batchKey says whether key is a /set key a batch takes: the decoding
// ones (a batch has no template of its own, and threads are the
// command's).
func batchKey(key string) bool {
	return slices.Contains(SettingKeys, key) && key != "template" && key != "threads" && key != "preset"
}

// ParseSetting reads a setting: parts separated by "+" or spaces, each a
// preset name or KEY=VALUE with a /set key; at most one preset, first.
func ParseSetting(spec string) (Setting, error) {
	var s Setting
	parts := strings.FieldsFunc(spec, func(r rune) bool { return r == '+' || r == ' ' || r == '\t' })
	if len(parts) == 0 {
		return s, fmt.Errorf("empty setting: give a preset (%s) or KEY=VALUE", strings.Join(generate.PresetNames(), ", "))
	}
	for i, p := range parts {
		k, v, isKV := strings.Cut(p, "=")
		if !isKV {
			name := strings.ToLower(p)
			if !slices.Contains(generate.PresetNames(), name) {
				return s, fmt.Errorf("%q: no preset %q (presets: %s; or KEY=VALUE)", spec, p, strings.Join(generate.PresetNames(), ", "))
			}
			if i != 0 {
				return s, fmt.Errorf("%q: the preset %s goes first, the changes after it", spec, name)
			}
			s.Preset = name
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if !batchKey(k) {
			return s, fmt.Errorf("%q: %q is not a decoding setting (settings: %s)", spec, k, strings.Join(slices.DeleteFunc(slices.Clone(SettingKeys), func(k string) bool { return !batchKey(k) }), ", "))
		}
		// The value is checked now, so that a typo stops the batch before
		// the model loads (min_new_tokens only once the preset's
		// max_tokens is known).
		if _, err := withSetting(Settings{Params: generate.DefaultParams()}, k, v); err != nil && k != "min_new_tokens" {
			return s, fmt.Errorf("%q: %v", spec, err)
		}
		s.Changes = append(s.Changes, [2]string{k, v})
	}
	return s, nil
}

// String is the setting as ParseSetting reads it, canonical: the resume
// key of a batch's output and a column's title.
func (s Setting) String() string {
	parts := []string{s.preset()}
	for _, c := range s.Changes {
		parts = append(parts, c[0]+"="+c[1])
	}
	return strings.Join(parts, " ")
}

func (s Setting) preset() string {
	if s.Preset == "" {
		return "reference"
	}
	return s.Preset
}

// Resolve returns the preset (resolved for the checkpoint and a prompt of
// promptPositions, as ask does) and the decoding with the changes made.
func (s Setting) Resolve(m *model.Model, promptPositions int) (generate.Preset, generate.Params, error) {
	pr, err := m.Preset(s.preset(), promptPositions)
	if err != nil {
		return pr, generate.Params{}, err
	}
	st := Settings{Params: pr.Params}
	for _, c := range s.Changes {
		if st, err = withSetting(st, c[0], c[1]); err != nil {
			return pr, st.Params, fmt.Errorf("%s: %v", s, err)
		}
	}
	if err := st.Params.Validate(); err != nil {
		return pr, st.Params, fmt.Errorf("%s: %v", s, err)
	}
	return pr, st.Params, nil
}

// BatchKey names one answer of a batch: what resuming compares.
type BatchKey struct{ Image, Model, Prompt, Setting string }

// BatchRecord is one answer: a line of the output (JSON Lines).
type BatchRecord struct {
	Image   string `json:"image"`
	Model   string `json:"model"`
	Prompt  string `json:"prompt"`   // as given (a template: {file}, {stem}, {dir})
	Setting string `json:"settings"` // Setting.String
	Answer  string `json:"answer"`
	Tokens  int    `json:"tokens"`
	Stop    string `json:"stop"`
	// PromptText is what the model read after the soft tokens; Params
	// what decoded the answer.
	PromptText string          `json:"prompt_text"`
	Params     generate.Params `json:"params"`
	Timings    BatchTimings    `json:"timings"`
}

// Key is the record's resume key.
func (r BatchRecord) Key() BatchKey { return BatchKey{r.Image, r.Model, r.Prompt, r.Setting} }

// BatchTimings say where an answer's time went. VisionMS is the image
// work done for this answer: decoding the file and the ViT for an image's
// first answer, the Q-Former when it ran.
type BatchTimings struct {
	VisionMS   float64 `json:"vision_ms"`
	PrefillMS  float64 `json:"prefill_ms"`
	GenerateMS float64 `json:"generate_ms"`
	TotalMS    float64 `json:"total_ms"`
}

// Batch is one model's share of a batch run.
type Batch struct {
	Model     *model.Model
	ModelName string // the model in records and keys (the folder as given)
	Images    []string
	Prompts   []string
	Settings  []Setting
	Threads   int
	Exact     bool

	// Done says whether an answer is already there (resuming); nil: none
	// is. An image whose answers are all done is not even read.
	Done func(BatchKey) bool
	// Answer receives each answer as it is made; an error stops the batch.
	Answer func(BatchRecord) error
	// ImageFailed is told of an image that cannot be read or prepared,
	// and of how many answers it loses; the batch goes on with the next.
	ImageFailed func(path string, answers int, err error)
	// Working, if set, is told which image is being answered.
	Working func(path string)

	// Encoded counts the images put through the ViT, QFormerRuns the
	// Q-Former's runs.
	Encoded, QFormerRuns int
}

// ErrBatchStopped is Run's error when stop ended it between answers.
var ErrBatchStopped = errors.New("stopped")

// PromptFor is prompt with the image's placeholders filled: {file} (the
// file name), {stem} (without its extension), {dir} (its folder's name).
func PromptFor(prompt, image string) string {
	if !strings.Contains(prompt, "{") {
		return prompt
	}
	file := filepath.Base(image)
	return strings.NewReplacer("{file}", file, "{stem}", strings.TrimSuffix(file, filepath.Ext(file)),
		"{dir}", filepath.Base(filepath.Dir(image))).Replace(prompt)
}

// Run answers the grid. When stop is done it returns ErrBatchStopped
// before the next answer; the answer in progress finishes (and is
// delivered) first.
func (b *Batch) Run(stop context.Context) error {
	work := context.WithoutCancel(stop)
	for _, img := range b.Images {
		if stop.Err() != nil {
			return ErrBatchStopped
		}
		var todo [][2]int // prompt, setting
		for pi, p := range b.Prompts {
			for si, s := range b.Settings {
				if b.Done == nil || !b.Done(BatchKey{img, b.ModelName, p, s.String()}) {
					todo = append(todo, [2]int{pi, si})
				}
			}
		}
		if len(todo) == 0 {
			continue
		}
		if b.Working != nil {
			b.Working(img)
		}
		start := time.Now()
		feat, err := b.encode(work, img)
		if err != nil {
			if b.ImageFailed != nil {
				b.ImageFailed(img, len(todo), err)
			}
			continue
		}
		im := batchImage{path: img, feat: feat, soft: map[string][]float32{}, visionTime: time.Since(start)}
		for i, t := range todo {
			if i > 0 && stop.Err() != nil {
				return ErrBatchStopped
			}
			rec, err := b.answer(work, &im, b.Prompts[t[0]], b.Settings[t[1]])
			if err != nil {
				return fmt.Errorf("%s: %w", img, err)
			}
			if err := b.Answer(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchImage is an image's work kept for its answers.
type batchImage struct {
	path       string
	feat       *vision.ImageFeatures
	soft       map[string][]float32 // by Q-Former instruction ("" when the Q-Former reads none)
	visionTime time.Duration        // not yet charged to an answer
}

// encode decodes the image file and runs the ViT on it.
func (b *Batch) encode(ctx context.Context, path string) (*vision.ImageFeatures, error) {
	img, err := imageprep.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	px, err := imageprep.PixelValues(ctx, img, b.Model.Vision.Info().ImageOptions())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	b.Encoded++
	return b.Model.Vision.EncodeImage(ctx, px)
}

// answer answers one prompt under one setting as ask does.
func (b *Batch) answer(ctx context.Context, im *batchImage, prompt string, s Setting) (BatchRecord, error) {
	start := time.Now()
	m := b.Model
	info := m.LM.Info()
	rec := BatchRecord{Image: im.path, Model: b.ModelName, Prompt: prompt, Setting: s.String()}
	// The preset's prompt first (it does not depend on the prompt's
	// length), then the preset resolved for that length, as ask.
	pr, _, err := s.Resolve(m, 0)
	if err != nil {
		return rec, err
	}
	text, instruction := m.AnswerPrompt(PromptFor(prompt, im.path), false, pr, true)
	ids, err := m.LM.Tokenize(text, true)
	if err != nil {
		return rec, err
	}
	_, params, err := s.Resolve(m, m.PromptPositions(len(ids)))
	if err != nil {
		return rec, err
	}
	if !m.Vision.Info().QFormer.TextInput {
		instruction = "" // BLIP-2's Q-Former reads no text: one run serves every prompt
	}
	visionTime := im.visionTime // the ViT's, before start
	im.visionTime = 0
	total := visionTime
	soft, ok := im.soft[instruction]
	if !ok {
		qs := time.Now()
		if soft, err = m.Vision.SoftTokens(ctx, im.feat, instruction); err != nil {
			return rec, err
		}
		b.QFormerRuns++
		im.soft[instruction] = soft
		visionTime += time.Since(qs)
	}
	p := generate.Prompt{Soft: soft, NSoft: len(soft) / info.NEmbd, IDs: ids}
	co := lm.ContextOptions{Threads: b.Threads, Exact: b.Exact}
	if n := params.Beams(); n > 1 {
		co.NSeq, co.NSeqNew = n, params.MaxTokens
	}
	cx, err := model.AnswerContext(m.LM, p, params.MaxTokens, 0, co)
	if err != nil {
		return rec, err
	}
	defer cx.Close()
	r, err := generate.New(m.LM, cx).Run(ctx, p, generate.Options{Params: params})
	if err != nil && r.Stop != lm.StopContextFull {
		return rec, err
	}
	rec.Answer, rec.Tokens, rec.Stop = r.Text, len(r.IDs), r.Stop.String()
	rec.PromptText, rec.Params = text, params
	rec.Timings = BatchTimings{VisionMS: ms(visionTime), PrefillMS: ms(r.Prefill), GenerateMS: ms(r.Decode),
		TotalMS: ms(total + time.Since(start))}
	return rec, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
