package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

func init() {
	register(&command{
		name:    "ask",
		summary: "answer one question about an image (for scripts)",
		usage:   "-m MODEL_DIR IMAGE QUESTION [--preset NAME] [--greedy | --num-beams N ... | --temp T ...] [--max-tokens N] [--json] [--exact]",
		run:     runAsk,
	})
}

// llmFlags are the flags every command that loads a language model takes.
type llmFlags struct {
	modelDir, llm, llamaLib *string
	threads                 *int
	verbose                 *bool
	gpuLayers               *int
}

func addLLMFlags(fs *flag.FlagSet) llmFlags {
	f := llmFlags{
		modelDir: fs.String("m", "", "model: an installed name (blip2chat models) or a `folder` made by 'blip2chat convert'"),
		llm:      fs.String("llm", "", "language model GGUF `file` to use instead of MODEL_DIR/llm.gguf (the same frozen model, converted elsewhere)"),
		llamaLib: fs.String("llama-lib", "", "llama.cpp library `folder` (default: $"+"BLIP2CHAT_LLAMA_LIB, lib/ beside the executable, the user data folder)"),
		threads:  fs.Int("threads", 0, "CPU `threads` (default: the usable cores, at most 16; never more than the usable cores)"),
		verbose:  fs.Bool("v", false, "print llama.cpp's log to stderr"),
	}
	f.gpuLayers = addGPULayersFlag(fs)
	return f
}

func (f llmFlags) log(stderr io.Writer) io.Writer {
	if *f.verbose {
		return stderr
	}
	return nil
}

// withLLMHint adds what ask, tokenize and bench can do about a folder
// without a language model.
func withLLMHint(err error) error {
	if errors.Is(err, model.ErrNoLLM) {
		return fmt.Errorf("%w; give one with --llm", err)
	}
	return err
}

// askTimings is the "timings" object of --json.
type askTimings struct {
	VisionMS        float64 `json:"vision_ms"`
	PrefillMS       float64 `json:"prefill_ms"`
	PromptRows      int     `json:"prompt_rows"`
	FirstTokenMS    float64 `json:"first_token_ms"`
	GenerateMS      float64 `json:"generate_ms"`
	Tokens          int     `json:"tokens"`
	TokensPerSecond float64 `json:"tokens_per_second"`
}

// askBeam is one of the sequences beam search returns.
type askBeam struct {
	IDs   []int32 `json:"ids"`
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

// askToken is how sure the model was of one token of the answer: p is
// its probability in the softmax of the raw logits it was chosen from
// (the --logits-out row; before temperature, penalties and the other
// processors), top the 5 most probable tokens of that softmax. A token's
// text is its bytes (a piece of a character shows as U+FFFD).
type askToken struct {
	ID   int32    `json:"id"`
	Text string   `json:"text"`
	P    float64  `json:"p"`
	Top  []askAlt `json:"top"`
}

type askAlt struct {
	Text string  `json:"text"`
	P    float64 `json:"p"`
}

func askTokens(toks []generate.TokenProb) []askToken {
	out := make([]askToken, len(toks))
	for i, t := range toks {
		out[i] = askToken{ID: t.ID, Text: t.Text, P: t.P, Top: make([]askAlt, len(t.Top))}
		for j, a := range t.Top {
			out[i].Top[j] = askAlt{Text: a.Text, P: a.P}
		}
	}
	return out
}

type askResult struct {
	PromptIDs []int32 `json:"prompt_ids"`
	IDs       []int32 `json:"ids"`
	Text      string  `json:"text"`
	// Tokens say how sure the model was of each of IDs.
	Tokens []askToken `json:"tokens"`
	Stop   string     `json:"stop"`
	// Score is beam search's score of the answer (transformers'
	// sequences_scores); Beams the sequences returned, best first, when
	// more than one.
	Score *float64  `json:"score,omitempty"`
	Beams []askBeam `json:"beams,omitempty"`
	// Preset names the settings the flags started from, Changes what the
	// flags changed, Notes where the checkpoint's settings were read
	// loosely.
	Preset   string          `json:"preset"`
	Changes  []string        `json:"changes,omitempty"`
	Notes    []string        `json:"notes,omitempty"`
	Settings generate.Params `json:"settings"` // what decoded the answer
	Timings  askTimings      `json:"timings"`
}

func askMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// askArgs are ask's arguments, checked.
type askArgs struct {
	llm              llmFlags
	decode           *decodeFlags
	raw, exact, json bool
	nctx             int
	logitsOut        string
	force            bool // --force: --logits-out may replace a file
	image, question  string
}

// inputs are the files ask reads, which --logits-out must not overwrite.
func (a askArgs) inputs() []string {
	llm := *a.llm.llm
	if llm == "" {
		llm = filepath.Join(*a.llm.modelDir, model.LLMFile)
	}
	return []string{a.image, llm, filepath.Join(*a.llm.modelDir, model.VisionFile)}
}

func parseAsk(args []string, stderr io.Writer) (a askArgs, err error) {
	fs := newFlagSet(commands["ask"], stderr)
	a.llm = addLLMFlags(fs)
	a.decode = addDecodeFlags(fs)
	raw := fs.Bool("raw-prompt", false, "QUESTION is the whole prompt text after the soft tokens (BOS/EOS added as the model's tokenizer adds them), not put into the model's template")
	exact := fs.Bool("exact", false, "flash attention off and an f32 KV cache: slower, for comparing numbers")
	nctx := fs.Int("ctx", 0, "context `size` in positions (default: what the soft tokens, the prompt and --max-tokens need, which is also the most it takes)")
	asJSON := fs.Bool("json", false, `print {"prompt_ids":[…],"ids":[…],"text":"…","score":…,"beams":[…],"notes":[…],"timings":{…}} instead of the text`)
	force := fs.Bool("force", false, forceUsage+" (--logits-out)")
	logitsOut := fs.String("logits-out", "", "write logits to this .safetensors `file`: \"logits\" [positions, vocab] for every prompt position, soft tokens included (decoder-only models), \"decoder_logits\" [steps, vocab] for each generated step (T5); a decoder-only model's steps too, as \"step_logits\" [steps, vocab] (not with beam search): the rows each answer token was chosen from, the end token's included")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return a, err
	}
	if *a.llm.modelDir, err = resolveModelArg(*a.llm.modelDir); err != nil {
		return a, err
	}
	if len(pos) != 2 || *a.llm.modelDir == "" {
		return a, errUsage
	}
	switch {
	case *nctx < 0:
		return a, badUsage("--ctx %d is negative", *nctx)
	case *a.llm.threads < 0:
		return a, badUsage("--threads %d is negative", *a.llm.threads)
	}
	*a.llm.threads = capThreads("ask", *a.llm.threads, stderr)
	a.decode.visit(fs)
	if err := a.decode.check(); err != nil {
		return a, err
	}
	a.raw, a.exact, a.json, a.nctx, a.logitsOut, a.force = *raw, *exact, *asJSON, *nctx, *logitsOut, *force
	a.image, a.question = pos[0], pos[1]
	if a.logitsOut != "" {
		if err := checkOutputFile(a.logitsOut, a.force, a.inputs()...); err != nil {
			return a, err
		}
	}
	return a, nil
}

func runAsk(args []string, stdout, stderr io.Writer) error {
	a, err := parseAsk(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := interruptContext()
	defer stop()
	m, err := model.Open(*a.llm.modelDir, model.Options{LlamaLib: *a.llm.llamaLib, LLMPath: *a.llm.llm,
		Threads: *a.llm.threads, Exact: a.exact, Log: a.llm.log(stderr), GPULayers: *a.llm.gpuLayers})
	if err != nil {
		return withLLMHint(err)
	}
	defer m.Close()
	info := m.LM.Info()
	if info.Notice != "" {
		fmt.Fprintln(stderr, "note: "+info.Notice)
	}

	// The preset is resolved for the prompt (generation_config's
	// max_length counts it), then the flags change it.
	start := time.Now()
	preset, err := m.Preset(*a.decode.preset, 0)
	if err != nil {
		return err
	}
	named := a.decode.set["preset"]
	text, instruction := m.AnswerPrompt(a.question, a.raw, preset, named)
	ids, err := m.LM.Tokenize(text, true)
	if err != nil {
		return err
	}
	if preset, err = m.Preset(*a.decode.preset, m.PromptPositions(len(ids))); err != nil {
		return err
	}
	params, err := a.decode.apply(preset.Params, info.NVocab)
	if err != nil {
		return err
	}
	if params.Beams() > 1 && a.logitsOut != "" && info.EncoderDecoder {
		return badUsage("--logits-out writes a T5 model's decoder logits step by step, which beam search has several of: use --greedy")
	}
	soft, err := m.SoftTokens(ctx, a.image, instruction)
	if err != nil {
		return err
	}
	visionTime := time.Since(start)
	prompt := generate.Prompt{Soft: soft, NSoft: len(soft) / info.NEmbd, IDs: ids}
	all := a.logitsOut != "" && !info.EncoderDecoder
	co := lm.ContextOptions{Threads: *a.llm.threads, Exact: a.exact, AllLogits: all}
	if n := params.Beams(); n > 1 {
		co.NSeq, co.NSeqNew = n, params.MaxTokens
	}
	cx, err := model.AnswerContext(m.LM, prompt, params.MaxTokens, a.nctx, co)
	if err != nil {
		return err
	}
	defer cx.Close()
	if err := a.decode.checkContext(params, cx.NCtx()); err != nil {
		return err
	}

	var logits, steps []float32 // rows of NVocab
	o := generate.Options{Params: params}
	write := answerWriter(stdout)
	if !a.json && params.Beams() == 1 {
		o.Stream.Text = write
	}
	if all {
		o.OnPrompt = func(_ int, l []float32) { logits = append(logits, l...) }
		o.OnStep = func(_ int, l []float32, _ int32) { steps = append(steps, l...) }
	} else if a.logitsOut != "" {
		o.OnStep = func(_ int, l []float32, _ int32) { logits = append(logits, l...) }
	}
	runStart := time.Now()
	r, genErr := generate.New(m.LM, cx).Run(ctx, prompt, o)
	if genErr != nil && r.Stop != lm.StopCancelled && r.Stop != lm.StopContextFull {
		return genErr
	}
	if a.logitsOut != "" {
		if err := checkOutputFile(a.logitsOut, a.force, a.inputs()...); err != nil { // again: the work took a while
			return err
		}
		if err := writeLogits(a.logitsOut, logits, steps, info, text); err != nil {
			return err
		}
	}
	if a.json {
		res := askResult{PromptIDs: ids, IDs: r.IDs, Text: r.Text, Tokens: askTokens(r.Tokens), Stop: r.Stop.String(),
			Preset: preset.Name, Changes: params.Changes(preset.Params), Notes: preset.Notes, Settings: params,
			Timings: askTimings{VisionMS: askMS(visionTime), PrefillMS: askMS(r.Prefill), PromptRows: prompt.Rows(),
				FirstTokenMS: askMS(runStart.Sub(start) + r.Prefill + r.FirstToken), GenerateMS: askMS(r.Decode),
				Tokens: len(r.IDs), TokensPerSecond: r.TokensPerSecond()}}
		if params.Beams() > 1 {
			res.Score = &r.Score
			if len(r.Sequences) > 1 {
				for _, s := range r.Sequences {
					res.Beams = append(res.Beams, askBeam{IDs: nonNil(s.IDs), Text: s.Text, Score: s.Score})
				}
			}
		}
		err = writeAskJSON(stdout, res)
	} else {
		if params.Beams() > 1 {
			write(r.Text)
		}
		_, err = fmt.Fprintln(stdout)
	}
	if err != nil {
		return err
	}
	if r.Stop == lm.StopContextFull {
		fmt.Fprintf(stderr, "blip2chat ask: note: the answer stops after %d tokens: the context of %d positions is full\n", len(r.IDs), cx.NCtx())
	}
	if errors.Is(genErr, context.Canceled) {
		fmt.Fprintln(stderr, "blip2chat ask: interrupted")
		return exitError{130}
	}
	return nil
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

// answerWriter streams the answer to w. On a terminal the text goes
// through the interface's display policy (app.Printable): a model's
// vocabulary may hold escape sequences (a title, the clipboard, a
// hyperlink, a screen clear) that the terminal would act on. Into a pipe
// or a file the text is written as generated, byte for byte: a script
// reading it wants the model's exact text, and the danger is the terminal
// (whoever prints the file later decides how), as with --json, which
// escapes every control character.
func answerWriter(w io.Writer) func(string) {
	if isTerminal(w) {
		return func(s string) { io.WriteString(w, app.Printable(s)) }
	}
	return func(s string) { io.WriteString(w, s) }
}

// writeLogits writes --logits-out: "logits" (decoder-only: the prompt's
// positions) or "decoder_logits" (T5: the generated steps), and for a
// decoder-only model the generated steps' rows, "step_logits" (none when
// there are none: beam search, --max-tokens 0).
func writeLogits(path string, logits, steps []float32, info lm.Info, prompt string) error {
	name := "logits"
	if info.EncoderDecoder {
		name = "decoder_logits"
	}
	ts := []safetensors.WriteTensor{safetensors.F32Tensor(name, []int{len(logits) / info.NVocab, info.NVocab}, logits)}
	if len(steps) > 0 {
		ts = append(ts, safetensors.F32Tensor("step_logits", []int{len(steps) / info.NVocab, info.NVocab}, steps))
	}
	meta := map[string]string{"prompt": prompt, "model": info.Desc}
	return safetensors.WriteFile(path, ts, meta)
}

func writeAskJSON(w io.Writer, r askResult) error {
	if r.IDs == nil {
		r.IDs = []int32{}
	}
	if r.Tokens == nil {
		r.Tokens = []askToken{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
