package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/blip2chat/blip2chat/engine/chat"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

func init() {
	register(&command{
		name:    "ask",
		summary: "answer one question about an image (for scripts)",
		usage:   "-m MODEL_DIR IMAGE QUESTION [--greedy | --temp T --top-k K --top-p P --min-p P --seed N] [--max-tokens N] [--json] [--exact]",
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
		modelDir: fs.String("m", "", "model `folder` (written by 'blip2chat convert')"),
		llm:      fs.String("llm", "", "language model GGUF `file` to use instead of MODEL_DIR/llm.gguf (the same frozen model, converted elsewhere)"),
		llamaLib: fs.String("llama-lib", "", "llama.cpp library `folder` (default: $"+"BLIP2CHAT_LLAMA_LIB, lib/ beside the executable, the user data folder)"),
		threads:  fs.Int("threads", 0, "CPU `threads` (default: the usable cores, at most 16)"),
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

// samplingFlags are ask's sampling options; unset flags keep llama.cpp's
// usual values (lm.DefaultSamplingParams).
type samplingFlags struct {
	greedy                   *bool
	temp, topP, minP, repeat *float64
	topK, repeatLastN        *int
	seed                     *int64
}

func addSamplingFlags(fs *flag.FlagSet) samplingFlags {
	d := lm.DefaultSamplingParams()
	return samplingFlags{
		greedy:      fs.Bool("greedy", false, "always take the most likely token (reproducible; ignores the sampling flags but --repeat-penalty)"),
		temp:        fs.Float64("temp", float64(d.Temperature), "sampling `temperature` (0: greedy)"),
		topK:        fs.Int("top-k", d.TopK, "keep the `K` most likely tokens (0: off)"),
		topP:        fs.Float64("top-p", float64(d.TopP), "nucleus sampling `threshold` (1: off)"),
		minP:        fs.Float64("min-p", float64(d.MinP), "drop tokens below `P` times the most likely one's probability (0: off)"),
		repeat:      fs.Float64("repeat-penalty", float64(d.RepeatPenalty), "penalty for repeating recent tokens (1: off)"),
		repeatLastN: fs.Int("repeat-last-n", d.RepeatLastN, "recent `tokens` the repeat penalty looks at"),
		seed:        fs.Int64("seed", -1, "random `seed` (-1: a new one each run)"),
	}
}

func (f samplingFlags) params() (lm.SamplingParams, error) {
	p := lm.SamplingParams{Greedy: *f.greedy, Temperature: float32(*f.temp), TopK: *f.topK, TopP: float32(*f.topP),
		MinP: float32(*f.minP), RepeatPenalty: float32(*f.repeat), RepeatLastN: *f.repeatLastN, Seed: lm.RandomSeed}
	if *f.temp < 0 {
		// The library takes it as greedy, as llama.cpp does; on the
		// command line it is more likely a typo.
		return p, badUsage("--temp %v is negative (0 means greedy)", *f.temp)
	}
	if *f.seed >= 0 {
		if *f.seed >= int64(lm.RandomSeed) {
			return p, badUsage("--seed %d: must be below %d", *f.seed, lm.RandomSeed)
		}
		p.Seed = uint64(*f.seed)
	}
	if err := p.Validate(); err != nil {
		return p, usageError{err}
	}
	return p, nil
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

type askResult struct {
	PromptIDs []int32    `json:"prompt_ids"`
	IDs       []int32    `json:"ids"`
	Text      string     `json:"text"`
	Stop      string     `json:"stop"`
	Timings   askTimings `json:"timings"`
}

func askMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func runAsk(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["ask"], stderr)
	lf := addLLMFlags(fs)
	sf := addSamplingFlags(fs)
	raw := fs.Bool("raw-prompt", false, "QUESTION is the whole prompt text after the soft tokens (BOS/EOS added as the model's tokenizer adds them), not put into the model's template")
	maxTokens := fs.Int("max-tokens", chat.DefaultMaxTokens, "most `tokens` to generate (0: none, only the prompt is run, e.g. for --logits-out)")
	exact := fs.Bool("exact", false, "flash attention off and an f32 KV cache: slower, for comparing numbers")
	nctx := fs.Int("ctx", 0, "context `size` in positions (default: what the soft tokens, the prompt and --max-tokens need)")
	asJSON := fs.Bool("json", false, `print {"prompt_ids":[…],"ids":[…],"text":"…","timings":{…}} instead of the text`)
	logitsOut := fs.String("logits-out", "", "write logits to this .safetensors `file`: \"logits\" [positions, vocab] for every prompt position, soft tokens included (decoder-only models), \"decoder_logits\" [steps, vocab] for each generated step (T5)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || *lf.modelDir == "" {
		return errUsage
	}
	switch {
	case *maxTokens < 0:
		return badUsage("--max-tokens %d is negative", *maxTokens)
	case *nctx < 0:
		return badUsage("--ctx %d is negative", *nctx)
	case *lf.threads < 0:
		return badUsage("--threads %d is negative", *lf.threads)
	}
	sp, err := sf.params()
	if err != nil {
		return err
	}
	if *logitsOut != "" {
		if err := checkOutput(*logitsOut); err != nil {
			return err
		}
	}
	image, question := pos[0], pos[1]

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m, err := model.Open(*lf.modelDir, model.Options{LlamaLib: *lf.llamaLib, LLMPath: *lf.llm, Threads: *lf.threads, Exact: *exact, Log: lf.log(stderr),
		GPULayers: *lf.gpuLayers})
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.LM.Info()
	if info.Notice != "" {
		fmt.Fprintln(stderr, "note: "+info.Notice)
	}

	prompt := question
	instruction := question
	if !*raw {
		tmpl := m.DefaultSettings().Template
		prompt = tmpl.Format(nil, question)
		if strings.TrimSpace(question) == "" {
			instruction = tmpl.Caption
		}
	}
	start := time.Now()
	soft, err := m.SoftTokens(image, instruction)
	if err != nil {
		return err
	}
	visionTime := time.Since(start)
	nSoft := len(soft) / info.NEmbd
	ids, err := m.LM.Tokenize(prompt, true)
	if err != nil {
		return err
	}

	// Decoder-only: soft tokens, prompt and answer share the context, which
	// must hold the prompt and one more position; T5: the encoder takes soft
	// tokens and prompt, the decoder the answer.
	rows := nSoft + len(ids)
	need, room := rows+max(*maxTokens, 1), rows+1
	if info.EncoderDecoder {
		need, room = max(rows, *maxTokens+1), rows
	}
	n, limit := *nctx, "--ctx"
	if n == 0 {
		// One question: no room for a conversation needed, but no more
		// than the model was trained on (a longer answer stops, with a
		// note, when the context is full).
		n = need
		if t := info.NCtxTrain; t > 0 && n > t {
			n, limit = t, "the model's training context"
		}
	}
	tooLong := func(n int) error {
		return fmt.Errorf("the question is too long: with the image it takes %d positions (%d image tokens, %d text tokens) and the context holds %d (%s); shorten it",
			room, nSoft, len(ids), n, limit)
	}
	if room > n {
		return tooLong(n)
	}
	all := *logitsOut != "" && !info.EncoderDecoder
	cx, err := m.LM.NewContext(lm.ContextOptions{NCtx: n, Threads: *lf.threads, Exact: *exact, AllLogits: all})
	if err != nil {
		return err
	}
	defer cx.Close()
	if cx.NCtx() < room { // a backend caps the context at what the model can hold
		limit = "the model's limit"
		return tooLong(cx.NCtx())
	}

	var logits []float32 // rows of NVocab
	keep := func(rows int) {
		for i := range rows {
			logits = append(logits, cx.Logits(i)...)
		}
	}
	prefillStart := time.Now()
	if info.EncoderDecoder {
		emb, err := m.LM.TokenEmbeddings(ids)
		if err != nil {
			return err
		}
		if err := cx.Encode(append(soft, emb...), nSoft+len(ids)); err != nil {
			return err
		}
		if err := cx.AppendTokens([]int32{info.DecoderStart}, false); err != nil {
			return err
		}
	} else {
		if err := cx.AppendEmbeddings(soft, nSoft, all); err != nil {
			return err
		}
		if all {
			keep(nSoft)
		}
		if err := cx.AppendTokens(ids, all); err != nil {
			return err
		}
		if all {
			keep(len(ids))
		}
	}
	prefill := time.Since(prefillStart)

	sampler, err := cx.NewSampler(sp)
	if err != nil {
		return err
	}
	defer sampler.Close()
	if sp.Penalized() {
		for _, id := range ids[max(0, len(ids)-sp.RepeatLastN):] {
			sampler.Accept(id)
		}
	}
	opts := lm.GenerateOptions{MaxTokens: *maxTokens}
	if !*asJSON {
		first := true
		opts.OnText = func(s string) {
			if first {
				if s = strings.TrimPrefix(s, " "); s == "" {
					return
				}
				first = false
			}
			io.WriteString(stdout, s)
		}
	}
	if *logitsOut != "" && info.EncoderDecoder {
		opts.OnStep = func(_ int, l []float32, _ int32) { logits = append(logits, l...) }
	}
	r, genErr := lm.GenerateWith(ctx, m.LM, cx, sampler, opts)
	if genErr != nil && r.Stop != lm.StopCancelled && r.Stop != lm.StopContextFull {
		return genErr
	}

	if *logitsOut != "" {
		name := "logits"
		if info.EncoderDecoder {
			name = "decoder_logits"
		}
		rows := len(logits) / info.NVocab
		t := safetensors.F32Tensor(name, []int{rows, info.NVocab}, logits)
		meta := map[string]string{"prompt": prompt, "model": info.Desc}
		if err := safetensors.WriteFile(*logitsOut, []safetensors.WriteTensor{t}, meta); err != nil {
			return err
		}
	}
	text := strings.TrimPrefix(r.Text, " ")
	if *asJSON {
		res := askResult{PromptIDs: ids, IDs: r.IDs, Text: text, Stop: r.Stop.String(), Timings: askTimings{
			VisionMS: askMS(visionTime), PrefillMS: askMS(prefill), PromptRows: nSoft + len(ids),
			FirstTokenMS: askMS(prefillStart.Sub(start) + prefill + r.FirstToken), GenerateMS: askMS(r.Elapsed),
			Tokens: len(r.IDs), TokensPerSecond: r.TokensPerSecond()}}
		if res.IDs == nil {
			res.IDs = []int32{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout)
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
