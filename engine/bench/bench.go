// Package bench measures blip2chat's stages on a loaded model: the ViT
// (EncodeImage), the Q-Former with the language projection, and, with a
// language model, prefill, first token and decode; it reports the median and
// the fastest of N runs after one warm-up run, GFLOP/s from the exact
// floating-point operation count of each stage, tokens per second, heap
// allocations per run and the process's peak resident memory.
//
// FLOPs follow the usual convention (and the PyTorch baseline's): 2 per
// multiply-add of every matrix product, attention's QK^T and PV included;
// layer norms, softmax, GELU and bias additions are not counted.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// Stage names, in pipeline order.
const (
	StagePreprocess = "preprocess" // a JPEG photo decoded, resized and normalized (Pipeline)
	StageViT        = "vit"        // EncodeImage
	StageQFormer    = "qformer"    // QFormer (Vision: + Project, as the PyTorch baseline counts it)
	StageProjection = "projection" // Project, the Q-Former's output to soft tokens (Pipeline)
	StageTokenize   = "tokenize"   // the prompt text to token ids (Pipeline)
	// StagePrefill is the soft tokens and the prompt through the language
	// model, up to the last row's logits (T5: the encoder and the decoder
	// start token).
	StagePrefill    = "prefill"
	StageFirstToken = "first_token" // from the first logits to the first token id
	StageDecode     = "decode"      // DecodeTokens generation steps
	// StageTTFT is a new image's first token: the sum of the stages
	// before it, from the JPEG to the token id.
	StageTTFT = "ttft"
	// StageBeam is beam search's steps after the first (BeamWidth beams,
	// one batched forward each): its tokens/s are steps per second.
	StageBeam = "decode_beam5"
)

// BeamWidth is the beams StageBeam runs: the paper's and LAVIS's.
const BeamWidth = 5

// Stage is the measurement of one stage.
type Stage struct {
	Name   string
	Times  []time.Duration // one per timed run (the warm-up run excluded)
	FLOPs  int64           // per run; 0 when not counted
	Tokens int             // tokens per run of a token stage (prefill, decode); 0 otherwise
	Allocs []uint64        // heap allocations per timed run; nil when not measured
	// CPU is the process's CPU time of each timed run (all threads), nil
	// when not measured: on a machine shared with other work it moves
	// less than Times, which include the waits for a core.
	CPU []time.Duration
	// BytesPerToken is the memory a token of this stage reads (the decode
	// stage's weights, see DecodeBytesPerToken); 0 when not known.
	BytesPerToken int64
}

// GBPerSecond is the memory traffic the median run implies: bytes per token
// times tokens per second, in GB/s; 0 when not known.
func (s *Stage) GBPerSecond() float64 {
	return float64(s.BytesPerToken) * s.TokensPerSecond() / 1e9
}

// Median is the median run time (the mean of the two middle ones for an
// even count).
func (s *Stage) Median() time.Duration {
	if len(s.Times) == 0 {
		return 0
	}
	t := slices.Clone(s.Times)
	slices.Sort(t)
	n := len(t)
	if n%2 == 1 {
		return t[n/2]
	}
	return (t[n/2-1] + t[n/2]) / 2
}

// MedianCPU is the median CPU time of the runs (0 when not measured).
func (s *Stage) MedianCPU() time.Duration {
	return (&Stage{Times: s.CPU}).Median()
}

// Min is the fastest run.
func (s *Stage) Min() time.Duration {
	if len(s.Times) == 0 {
		return 0
	}
	return slices.Min(s.Times)
}

// GFLOPS is the speed at the median time, in 10^9 FLOP/s (0 when not
// counted).
func (s *Stage) GFLOPS() float64 {
	if s.FLOPs == 0 || s.Median() <= 0 {
		return 0
	}
	return float64(s.FLOPs) / s.Median().Seconds() / 1e9
}

// TokensPerSecond is the token rate at the median time (0 for a stage
// without tokens).
func (s *Stage) TokensPerSecond() float64 {
	if s.Tokens == 0 || s.Median() <= 0 {
		return 0
	}
	return float64(s.Tokens) / s.Median().Seconds()
}

// MaxAllocs is the most heap allocations of one timed run (-1 when not
// measured).
func (s *Stage) MaxAllocs() int64 {
	if len(s.Allocs) == 0 {
		return -1
	}
	return int64(slices.Max(s.Allocs))
}

// Report is a whole benchmark.
type Report struct {
	Model      string // what ran, e.g. "synthetic vision" or the model folder
	VisionType string // the vision matrices' type
	LLM        string // the language model's description; "" without one
	Threads    int
	Runs       int
	Features   string // engine/kernels.Features()
	Stages     []*Stage
	PeakRSS    int64 // bytes; 0 when unknown
	// Bandwidth is the machine's measured memory read bandwidth in bytes
	// per second with the same threads, the limit for decoding; 0 if not
	// measured.
	Bandwidth float64
	LoadAvg   []float64 // the machine's 1, 5, 15 minute load averages at the end; nil when unknown
}

// BeamStepRatio is how many greedy steps one BeamWidth-beam step costs (at
// the median times); 0 without both stages.
func (r *Report) BeamStepRatio() float64 {
	g, b := r.Stage(StageDecode), r.Stage(StageBeam)
	if g == nil || b == nil || g.TokensPerSecond() == 0 || b.TokensPerSecond() == 0 {
		return 0
	}
	return g.TokensPerSecond() / b.TokensPerSecond()
}

// Stage returns the stage called name, or nil.
func (r *Report) Stage(name string) *Stage {
	for _, s := range r.Stages {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// jsonStage is a stage in WriteJSON's output.
type jsonStage struct {
	MedianS      float64   `json:"median_s"`
	MinS         float64   `json:"min_s"`
	GFLOPS       float64   `json:"gflops,omitempty"`
	GFLOP        float64   `json:"gflop,omitempty"`
	TokensPerS   float64   `json:"tokens_per_s,omitempty"`
	Tokens       int       `json:"tokens,omitempty"`
	AllocsPerRun *int64    `json:"allocs_per_run,omitempty"`
	GBPerS       float64   `json:"gb_per_s,omitempty"`
	CPUS         float64   `json:"cpu_s,omitempty"` // median CPU time, all threads
	RunsS        []float64 `json:"runs_s"`
}

// WriteJSON writes the report as one line:
//
//	{"stages":{"vit":{"median_s":…,"min_s":…,"gflops":…},…},"peak_rss_mib":…,…}
func (r *Report) WriteJSON(w io.Writer) error {
	out := struct {
		Stages     map[string]jsonStage `json:"stages"`
		PeakRSSMiB float64              `json:"peak_rss_mib"`
		Model      string               `json:"model"`
		VisionType string               `json:"vision_type,omitempty"`
		LLM        string               `json:"llm,omitempty"`
		Threads    int                  `json:"threads"`
		Runs       int                  `json:"runs"`
		Features   string               `json:"features,omitempty"`
		LoadAvg    []float64            `json:"loadavg,omitempty"`
		Bandwidth  float64              `json:"machine_gb_per_s,omitempty"`
		BeamRatio  float64              `json:"beam5_step_per_greedy_step,omitempty"`
	}{Stages: map[string]jsonStage{}, PeakRSSMiB: round(float64(r.PeakRSS)/(1<<20), 1), Model: r.Model,
		VisionType: r.VisionType, LLM: r.LLM, Threads: r.Threads, Runs: r.Runs, Features: r.Features, LoadAvg: r.LoadAvg,
		Bandwidth: round(r.Bandwidth/1e9, 2), BeamRatio: round(r.BeamStepRatio(), 3)}
	for _, s := range r.Stages {
		js := jsonStage{MedianS: round(s.Median().Seconds(), 6), MinS: round(s.Min().Seconds(), 6),
			GFLOPS: round(s.GFLOPS(), 2), GFLOP: round(float64(s.FLOPs)/1e9, 3),
			TokensPerS: round(s.TokensPerSecond(), 2), Tokens: s.Tokens, GBPerS: round(s.GBPerSecond(), 2),
			CPUS: round(s.MedianCPU().Seconds(), 6)}
		if a := s.MaxAllocs(); a >= 0 {
			js.AllocsPerRun = &a
		}
		for _, t := range s.Times {
			js.RunsS = append(js.RunsS, round(t.Seconds(), 6))
		}
		out.Stages[s.Name] = js
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteTable writes the report as a table for people.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.Model)
	if r.VisionType != "" {
		fmt.Fprintf(&b, ", vision weights %s", r.VisionType)
	}
	if r.LLM != "" {
		fmt.Fprintf(&b, ", language model %s", r.LLM)
	}
	fmt.Fprintf(&b, "\n%d threads (%s), %d runs after 1 warm-up\n\n", r.Threads, r.Features, r.Runs)
	fmt.Fprintf(&b, "%-12s %10s %10s %10s %9s %10s %11s\n", "stage", "median", "min", "cpu", "GFLOP/s", "tokens/s", "allocs/run")
	for _, s := range r.Stages {
		gf, tps, al, cpu := "-", "-", "-", "-"
		if len(s.CPU) > 0 {
			cpu = formatDuration(s.MedianCPU())
		}
		if s.FLOPs > 0 {
			gf = fmt.Sprintf("%.1f", s.GFLOPS())
		}
		if s.Tokens > 0 {
			tps = fmt.Sprintf("%.1f", s.TokensPerSecond())
		}
		if a := s.MaxAllocs(); a >= 0 {
			al = fmt.Sprint(a)
		}
		fmt.Fprintf(&b, "%-12s %10s %10s %10s %9s %10s %11s\n", s.Name, formatDuration(s.Median()), formatDuration(s.Min()), cpu, gf, tps, al)
	}
	for _, s := range r.Stages {
		if gbs := s.GBPerSecond(); gbs > 0 {
			fmt.Fprintf(&b, "\n%s reads %.2f GB of weights per token: %.1f GB/s", s.Name, float64(s.BytesPerToken)/1e9, gbs)
			if r.Bandwidth > 0 {
				fmt.Fprintf(&b, ", %.0f%% of the %.1f GB/s this machine reads with %d threads", 100*gbs*1e9/r.Bandwidth, r.Bandwidth/1e9, r.Threads)
			}
			b.WriteString("\n")
		}
	}
	if q := r.BeamStepRatio(); q > 0 {
		g, bs := r.Stage(StageDecode), r.Stage(StageBeam)
		fmt.Fprintf(&b, "\na %d-beam step takes %.2f× a greedy step (%s vs %s at the median)\n", BeamWidth, q,
			formatDuration(time.Duration(float64(time.Second)/bs.TokensPerSecond())), formatDuration(time.Duration(float64(time.Second)/g.TokensPerSecond())))
	}
	if r.PeakRSS > 0 {
		fmt.Fprintf(&b, "\npeak RSS %.0f MiB\n", float64(r.PeakRSS)/(1<<20))
	} else {
		fmt.Fprintf(&b, "\npeak RSS unknown on this system\n")
	}
	if len(r.LoadAvg) == 3 {
		fmt.Fprintf(&b, "load average %.2f %.2f %.2f (more than %d means other work shared the cores)\n", r.LoadAvg[0], r.LoadAvg[1], r.LoadAvg[2], r.Threads)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatDuration(d time.Duration) string {
	switch s := d.Seconds(); {
	case s >= 1:
		return fmt.Sprintf("%.3f s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.2f ms", s*1e3)
	default:
		return fmt.Sprintf("%.1f µs", s*1e6)
	}
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// ViTFLOPs counts the FLOPs of one EncodeImage: the patch embedding as a
// matrix product, and per layer the fused qkv, the output projection, the
// two feed-forward matrices and attention's two products.
func ViTFLOPs(in *vision.Info) int64 {
	v := in.Vision
	N, D, F := int64(v.Tokens), int64(v.HiddenSize), int64(v.IntermediateSize)
	patch := 2 * (N - 1) * int64(v.Channels*v.PatchSize*v.PatchSize) * D
	layer := 2*N*D*(3*D+D+2*F) + 2*(2*N*N*D)
	return patch + int64(v.Layers)*layer
}

// QFormerFLOPs counts the FLOPs of one QFormer call with textTokens
// instruction tokens (InstructBLIP; 0 for BLIP-2) and of Project: per layer
// self-attention over all rows, cross-attention of the query rows to the
// image (every CrossAttentionFreq-th layer, its keys and values computed
// from all image tokens), the feed-forward of the query rows and of the
// text rows; then the projection of the query rows.
func QFormerFLOPs(in *vision.Info, textTokens int) int64 {
	q := in.QFormer
	Q, T := int64(in.NumQueryTokens), int64(in.NumQueryTokens+textTokens)
	H, F, E, N := int64(q.HiddenSize), int64(q.IntermediateSize), int64(q.EncoderHiddenSize), int64(in.Vision.Tokens)
	self := 2*T*H*4*H + 2*(2*T*T*H)
	cross := 2*Q*H*2*H + 2*N*E*2*H + 2*(2*Q*N*H)
	ffn := 2 * T * H * 2 * F
	var total int64
	for i := 0; i < q.Layers; i++ {
		total += self + ffn
		if i%q.CrossAttentionFreq == 0 {
			total += cross
		}
	}
	return total + ProjectionFLOPs(in)
}

// ProjectionFLOPs counts the FLOPs of Project (0 without a projection).
func ProjectionFLOPs(in *vision.Info) int64 {
	return 2 * int64(in.NumQueryTokens) * int64(in.QFormer.HiddenSize) * int64(in.ProjectionSize)
}

// VisionOptions configure Vision and Pipeline's vision stages.
type VisionOptions struct {
	Runs int // timed runs after one warm-up; <= 0 means 5
	// InstructionIDs are Q-Former token ids for an InstructBLIP model (nil
	// for BLIP-2); DefaultInstruction gives some.
	InstructionIDs []int
	Seed           uint64 // of the random image
}

// DefaultInstruction is a 12-token Q-Former instruction for InstructBLIP
// models without a vocabulary (ids of ordinary words in BERT's vocabulary).
func DefaultInstruction(in *vision.Info) []int {
	if !in.QFormer.TextInput {
		return nil
	}
	ids := []int{101, 2054, 2003, 1999, 1996, 3746, 1029, 6235, 2009, 1999, 6987, 102}
	for i := range ids {
		ids[i] %= in.QFormer.VocabSize
	}
	return ids
}

// RandomPixels is an image's worth of pixel values for m, uniform in [-2, 2]
// (the range of normalized pixels), from seed.
func RandomPixels(in *vision.Info, seed uint64) []float32 {
	v := in.Vision
	px := make([]float32, v.Channels*v.ImageSize*v.ImageSize)
	r := synth.NewRand(seed)
	for i := range px {
		px[i] = 2 * r.Float32()
	}
	return px
}

// mallocs returns the heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// timed runs f, returning its duration, heap allocations and the
// process's CPU time meanwhile.
func timed(f func() error) (time.Duration, uint64, time.Duration, error) {
	a := mallocs()
	c := processCPU()
	start := time.Now()
	err := f()
	d := time.Since(start)
	return d, mallocs() - a, processCPU() - c, err
}

// Vision times the vision side on a random image: "vit" (EncodeImage) and
// "qformer" (QFormer + Project, when the model has a projection; QFormer
// alone otherwise), one warm-up run then o.Runs timed runs.
func Vision(m *vision.Model, o VisionOptions) ([]*Stage, error) {
	runs := o.Runs
	if runs <= 0 {
		runs = 5
	}
	in := m.Info()
	px := RandomPixels(in, o.Seed)
	vit := &Stage{Name: StageViT, FLOPs: ViTFLOPs(in)}
	qf := &Stage{Name: StageQFormer, FLOPs: QFormerFLOPs(in, len(o.InstructionIDs))}
	for r := -1; r < runs; r++ {
		var feat *vision.ImageFeatures
		dv, av, cv, err := timed(func() (err error) { feat, err = m.EncodeImage(context.Background(), px); return })
		if err != nil {
			return nil, err
		}
		var soft []float32
		dq, aq, cq, err := timed(func() error {
			q, err := m.QFormer(context.Background(), feat, o.InstructionIDs)
			if err != nil || in.ProjectionSize == 0 {
				soft = q
				return err
			}
			soft, err = m.Project(q)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := checkFinite("the Q-Former's output", soft); err != nil {
			return nil, err
		}
		if r < 0 {
			continue // warm-up
		}
		vit.Times, vit.Allocs, vit.CPU = append(vit.Times, dv), append(vit.Allocs, av), append(vit.CPU, cv)
		qf.Times, qf.Allocs, qf.CPU = append(qf.Times, dq), append(qf.Allocs, aq), append(qf.CPU, cq)
	}
	return []*Stage{vit, qf}, nil
}

func checkFinite(what string, x []float32) error {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("bench: %s is not finite (NaN or Inf)", what)
		}
	}
	return nil
}

// LMOptions configure Pipeline.
type LMOptions struct {
	VisionOptions
	PromptTokens int // text tokens after the soft tokens; <= 0 means 32
	DecodeTokens int // greedy steps timed in decode; <= 0 means 64
	Threads      int // language model threads (lm.ContextOptions.Threads)
}

// Pipeline times what a new image's first answer costs, stage by stage
// as chat and ask run them: preprocess (a photo-sized JPEG decoded,
// resized and normalized), vit, qformer and projection, tokenize (the
// prompt text to PromptTokens ids), then with the language model lmm,
// through engine/generate's driver: prefill (a new prompt of the soft
// tokens and the prompt tokens into a context, up to the logits of its
// last row: the decoder-only KV cache, or T5's encoder and its decoder
// start token), first_token (the first greedy token chosen from them),
// decode (DecodeTokens more greedy steps, the end tokens kept out as
// min_new_tokens does: only speed is measured) and ttft, each run's sum of
// the stages up to first_token.
func Pipeline(ctx context.Context, vm *vision.Model, lmm lm.Model, o LMOptions) ([]*Stage, error) {
	runs := o.Runs
	if runs <= 0 {
		runs = 5
	}
	nPrompt, nDecode := o.PromptTokens, o.DecodeTokens
	if nPrompt <= 0 {
		nPrompt = 32
	}
	if nDecode <= 0 {
		nDecode = 64
	}
	in := vm.Info()
	info := lmm.Info()
	Q := in.NumQueryTokens
	if in.ProjectionSize != info.NEmbd {
		return nil, fmt.Errorf("bench: the vision side projects to %d values per soft token, the language model takes %d", in.ProjectionSize, info.NEmbd)
	}
	text, err := promptText(lmm, nPrompt)
	if err != nil {
		return nil, err
	}
	_, need := generate.Need(info, Q+nPrompt, nDecode+1)
	co := lm.ContextOptions{NCtx: Q + nPrompt + nDecode + 8, Threads: o.Threads}
	c, err := lmm.NewContext(co)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if c.NCtx() < need {
		return nil, fmt.Errorf("bench: the language model's context holds %d positions, %d needed", c.NCtx(), need)
	}
	d := generate.New(lmm, c)
	decode := generate.Options{Params: generate.DefaultParams()}
	decode.MaxTokens, decode.MinNewTokens = nDecode, nDecode
	// Beam search on a context of its own, one sequence per beam (on the
	// backends that run it).
	co.NSeq, co.NSeqNew = BeamWidth, nDecode
	bc, err := lmm.NewContext(co)
	if err != nil {
		return nil, err
	}
	defer bc.Close()
	var bd *generate.Driver
	if _, ok := bc.(lm.MultiSeq); ok {
		bd = generate.New(lmm, bc)
	}
	beam := decode
	beam.NumBeams = BeamWidth

	photo, err := PhotoJPEG(o.Seed)
	if err != nil {
		return nil, err
	}
	st := map[string]*Stage{
		StagePreprocess: {Name: StagePreprocess},
		StageViT:        {Name: StageViT, FLOPs: ViTFLOPs(in)},
		StageQFormer:    {Name: StageQFormer, FLOPs: QFormerFLOPs(in, len(o.InstructionIDs)) - ProjectionFLOPs(in)},
		StageProjection: {Name: StageProjection, FLOPs: ProjectionFLOPs(in)},
		StageTokenize:   {Name: StageTokenize, Tokens: nPrompt},
		StagePrefill:    {Name: StagePrefill, Tokens: Q + nPrompt},
		StageFirstToken: {Name: StageFirstToken},
		StageDecode:     {Name: StageDecode, Tokens: nDecode},
		StageTTFT:       {Name: StageTTFT},
		StageBeam:       {Name: StageBeam, Tokens: nDecode - 1},
	}
	add := func(name string, d time.Duration, allocs uint64, cpu time.Duration) {
		x := st[name]
		x.Times, x.Allocs, x.CPU = append(x.Times, d), append(x.Allocs, allocs), append(x.CPU, cpu)
	}
	ttftStages := []string{StagePreprocess, StageViT, StageQFormer, StageProjection, StageTokenize, StagePrefill, StageFirstToken}
	for r := -1; r < runs; r++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		times, cpu := map[string]time.Duration{}, map[string]time.Duration{}
		allocs := map[string]uint64{}
		step := func(name string, f func() error) error {
			var err error
			times[name], allocs[name], cpu[name], err = timed(f)
			return err
		}
		var px []float32
		if err := step(StagePreprocess, func() error {
			img, err := imageprep.Decode(bytes.NewReader(photo), "photo.jpg")
			if err == nil {
				px, err = imageprep.PixelValues(ctx, img, in.ImageOptions())
			}
			return err
		}); err != nil {
			return nil, fmt.Errorf("bench: preprocess: %w", err)
		}
		var feat *vision.ImageFeatures
		if err := step(StageViT, func() (err error) { feat, err = vm.EncodeImage(ctx, px); return }); err != nil {
			return nil, err
		}
		var q, soft []float32
		if err := step(StageQFormer, func() (err error) { q, err = vm.QFormer(ctx, feat, o.InstructionIDs); return }); err != nil {
			return nil, err
		}
		if err := step(StageProjection, func() (err error) { soft, err = vm.Project(q); return }); err != nil {
			return nil, err
		}
		if err := checkFinite("the Q-Former's output", soft); err != nil {
			return nil, err
		}
		var prompt []int32
		if err := step(StageTokenize, func() (err error) { prompt, err = lmm.Tokenize(text, false); return }); err != nil {
			return nil, err
		}
		if len(prompt) < nPrompt {
			return nil, fmt.Errorf("bench: the prompt text gives %d tokens, not %d", len(prompt), nPrompt)
		}
		prompt = prompt[:nPrompt]
		d.Reset() // as for a new image: nothing of the last run's cache is reused
		if err := step(StagePrefill, func() error {
			return d.Prefill(ctx, generate.Prompt{Soft: soft, NSoft: Q, IDs: prompt}, nil)
		}); err != nil {
			return nil, fmt.Errorf("bench: prefill: %w", err)
		}
		// The first token is chosen at step 0; decode runs from there to
		// the end (the step hook reads the clock and the allocations once).
		var first time.Time
		var firstAllocs uint64
		var firstCPU time.Duration
		start, startAllocs, startCPU := time.Now(), mallocs(), processCPU()
		decode.OnStep = func(step int, _ []float32, _ int32) {
			if step == 0 {
				first, firstAllocs, firstCPU = time.Now(), mallocs(), processCPU()
			}
		}
		res, err := d.Decode(ctx, decode)
		end, endAllocs, endCPU := time.Now(), mallocs(), processCPU()
		if err == nil && len(res.IDs) != nDecode {
			err = fmt.Errorf("%d tokens (%v), not %d", len(res.IDs), res.Stop, nDecode)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: decode: %w", err)
		}
		times[StageFirstToken], allocs[StageFirstToken], cpu[StageFirstToken] = first.Sub(start), firstAllocs-startAllocs, firstCPU-startCPU
		// Beam search over the same prompt: the steps after the first,
		// each a forward of the five beams' rows (the last step chooses
		// without one, the first forward follows the first step).
		var beamTime time.Duration
		if bd != nil {
			bd.Reset()
			br, err := bd.Run(ctx, generate.Prompt{Soft: soft, NSoft: Q, IDs: prompt}, beam)
			if err == nil && len(br.IDs) != nDecode {
				err = fmt.Errorf("%d tokens (%v), not %d", len(br.IDs), br.Stop, nDecode)
			}
			if err != nil {
				return nil, fmt.Errorf("bench: beam search: %w", err)
			}
			beamTime = br.Decode - br.FirstToken
		}
		if r < 0 {
			continue
		}
		if bd != nil {
			add(StageBeam, beamTime, 0, 0)
		}
		var ttft, ttftCPU time.Duration
		for _, n := range ttftStages {
			add(n, times[n], allocs[n], cpu[n])
			ttft, ttftCPU = ttft+times[n], ttftCPU+cpu[n]
		}
		add(StageDecode, end.Sub(first), endAllocs-firstAllocs, endCPU-firstCPU)
		st[StageTTFT].Times = append(st[StageTTFT].Times, ttft)
		st[StageTTFT].CPU = append(st[StageTTFT].CPU, ttftCPU)
	}
	var out []*Stage
	st[StageBeam].Allocs, st[StageBeam].CPU = nil, nil // not measured: a whole search
	for _, n := range append(ttftStages, StageDecode, StageTTFT, StageBeam) {
		if n != StageBeam || bd != nil {
			out = append(out, st[n])
		}
	}
	return out, nil
}

// promptText is an ordinary question repeated until the language model's
// tokenizer gives at least n tokens for it (without specials).
func promptText(m lm.Model, n int) (string, error) {
	const sentence = "Question: what is shown in this picture, and what are the people in it doing? Answer:"
	text := sentence
	for range n {
		ids, err := m.Tokenize(text, false)
		if err != nil {
			return "", err
		}
		if len(ids) >= n {
			return text, nil
		}
		text += " " + sentence
	}
	return "", fmt.Errorf("bench: the language model's tokenizer gives fewer than %d tokens for %d questions", n, n)
}

// PhotoJPEG is a 640x480 JPEG (quality 90) standing in for a photo: smooth
// colour gradients with some noise from seed, about what a camera's
// picture costs to decode and resize per pixel.
func PhotoJPEG(seed uint64) ([]byte, error) {
	const w, h = 640, 480
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := synth.NewRand(seed)
	for y := range h {
		for x := range w {
			n := uint8(r.Uint64() % 32)
			img.SetRGBA(x, y, color.RGBA{R: uint8(x*200/w) + n, G: uint8(y*200/h) + n, B: uint8((x+y)*100/(w+h)) + n, A: 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
