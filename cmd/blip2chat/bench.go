package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/engine/bench"
	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/synth"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "time the vision side and the language model (per stage: median, min, GFLOP/s, tokens/s, peak RSS)",
		usage: "(--synthetic " + strings.Join(synth.Names(), "|") + " | -m MODEL_DIR) [--threads N] [--runs N] " +
			"[--vision-type f32|f16|q8_0] [--llm-type TYPE] [--prompt-tokens N] [--decode-tokens N] [--vision-only] [--index] [--cache DIR] [--json]",
		run: runBench,
	})
}

// maxBenchRuns bounds --runs: timings that need more repetitions than this
// are noise, and a typo of 10000000 would run for days.
const maxBenchRuns = 1000

// maxBenchTokens bounds --prompt-tokens and --decode-tokens: the longest
// context of the models benchmarked.
const maxBenchTokens = 2048

func runBench(args []string, stdout, stderr io.Writer) error {
	fl := newFlagSet(commands["bench"], stderr)
	synthetic := fl.String("synthetic", "", "benchmark a random-weight model with the real shapes: `NAME` is one of "+strings.Join(synth.Names(), ", ")+" (written once into the cache folder)")
	modelDir := fl.String("m", "", "benchmark the model: an installed name (blip2chat models) or a `folder` made by 'blip2chat convert'")
	threads := fl.Int("threads", 0, "compute threads (0: all usable cores; never more)")
	runs := fl.Int("runs", 5, "timed runs per stage, after one warm-up run")
	visionType := fl.String("vision-type", "", "synthetic vision weight `type`: f32, f16 or q8_0 (default: convert's, "+convert.DefaultVisionType+")")
	llmType := fl.String("llm-type", "", "synthetic language model weight `type` (default: convert's for the family)")
	promptTokens := fl.Int("prompt-tokens", 32, "prompt text tokens after the soft tokens")
	decodeTokens := fl.Int("decode-tokens", 64, "greedy (and beam) steps timed after the first token")
	visionOnly := fl.Bool("vision-only", false, "time only the vision stages, even when there is a language model")
	cacheDir := fl.String("cache", "", "`folder` of the synthetic models (default: the user cache folder's blip2chat/synthetic)")
	seed := fl.Uint64("seed", 0, "seed of the synthetic weights and of the random image")
	asJSON := fl.Bool("json", false, "print one JSON line instead of a table")
	llamaLib := fl.String("llama-lib", "", "`folder` holding the llama.cpp library (runs LLaMA and T5; quantizes synthetic ones to q4_k_m)")
	indexMode := fl.Bool("index", false, "time index and search instead: images/s through an index update, and a query over --embeddings images (default --synthetic "+synth.ITM+")")
	embeddings := fl.Int("embeddings", 10000, "with --index: the images of synthetic embeddings a query ranks")
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if *indexMode && *synthetic == "" && *modelDir == "" {
		*synthetic = synth.ITM
	}
	if len(pos) != 0 || (*synthetic == "") == (*modelDir == "") {
		return errUsage
	}
	if *runs < 1 {
		return fmt.Errorf("--runs must be at least 1, is %d", *runs)
	}
	if *runs > maxBenchRuns {
		return fmt.Errorf("--runs must be at most %d (the median settles long before), is %d", maxBenchRuns, *runs)
	}
	if *promptTokens < 1 || *promptTokens > maxBenchTokens || *decodeTokens < 1 || *decodeTokens > maxBenchTokens {
		return fmt.Errorf("--prompt-tokens and --decode-tokens must be from 1 to %d, are %d and %d", maxBenchTokens, *promptTokens, *decodeTokens)
	}
	if *threads < 0 {
		return fmt.Errorf("--threads must not be negative, is %d", *threads)
	}
	if *visionType != "" {
		if _, err := convert.ParseWeightType(*visionType); err != nil {
			return err
		}
	}

	ctx, stop := interruptContext()
	defer stop()

	nThreads := capThreads("bench", *threads, stderr)
	if nThreads == 0 {
		nThreads = kernels.DefaultThreads()
	}

	rep := &bench.Report{Threads: nThreads, Runs: *runs, Features: kernels.Features()}
	if *indexMode {
		return runBenchIndex(ctx, rep, benchIndexArgs{synthetic: *synthetic, modelDir: *modelDir, cacheDir: *cacheDir,
			visionType: *visionType, seed: *seed, embeddings: *embeddings, asJSON: *asJSON}, stdout, stderr)
	}
	var visionPath, llmPath string
	if *synthetic != "" {
		files, err := synth.Ensure(ctx, *synthetic, synth.Options{
			CacheDir: *cacheDir, Seed: *seed, VisionType: *visionType, LLMType: *llmType,
			Quantizer: func() (lmconv.Quantizer, error) { return llamaQuantizer(*llamaLib) },
			Progress:  stderr, Terminal: isTerminal(stderr),
		})
		if err != nil {
			return err
		}
		visionPath, llmPath = files.Vision, files.LLM
		rep.Model = "synthetic " + *synthetic
	} else {
		if *llmType != "" {
			return fmt.Errorf("--llm-type applies to --synthetic models; %s is benchmarked as converted", *modelDir)
		}
		visionPath = filepath.Join(*modelDir, convert.VisionFile)
		llmPath = filepath.Join(*modelDir, "llm.gguf")
		if _, err := os.Stat(llmPath); errors.Is(err, fs.ErrNotExist) {
			llmPath = ""
		}
		rep.Model = *modelDir
	}
	if *visionOnly {
		llmPath = ""
	}

	// Generating a synthetic model is not part of the measurement.
	bench.ResetPeakRSS()

	vm, err := vision.Load(visionPath, vision.Options{Threads: nThreads})
	if err != nil {
		return err
	}
	defer vm.Close()
	info := vm.Info()
	rep.VisionType = info.WeightType
	if *modelDir != "" && *visionType != "" && !strings.EqualFold(*visionType, info.WeightType) {
		return fmt.Errorf("%s has %s weights; --vision-type applies to --synthetic models (convert again to change it)", visionPath, info.WeightType)
	}
	vo := bench.VisionOptions{Runs: *runs, InstructionIDs: bench.DefaultInstruction(info), Seed: *seed}

	if llmPath == "" {
		rep.Stages, err = bench.Vision(vm, vo)
		if err != nil {
			return err
		}
	} else {
		lmm, err := model.OpenLLM(llmPath, *llamaLib, lm.OpenOptions{})
		if err != nil {
			return fmt.Errorf("%v (use --vision-only to time the vision side alone)", err)
		}
		defer lmm.Close()
		rep.LLM = lmm.Info().Desc
		rep.Stages, err = bench.Pipeline(ctx, vm, lmm, bench.LMOptions{VisionOptions: vo, Threads: nThreads,
			PromptTokens: *promptTokens, DecodeTokens: *decodeTokens})
		if err != nil {
			return err
		}
	}
	if rss, err := bench.PeakRSS(); err == nil {
		rep.PeakRSS = rss
	}
	if d := rep.Stage(bench.StageDecode); d != nil {
		if d.BytesPerToken, err = bench.DecodeBytesPerToken(llmPath); err != nil {
			return err
		}
		// After the peak RSS is read: the 1 GiB buffer is not the model's.
		rep.Bandwidth = bench.MeasureBandwidth(1<<30, nThreads, 3)
	}
	rep.LoadAvg, _ = bench.LoadAverage()
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}

// llamaQuantizer is llama.cpp's model quantizer, from the library in dir
// ("" searches).
func llamaQuantizer(dir string) (lmconv.Quantizer, error) {
	lib, err := capi.Load(capi.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	return func(in, out string, ftype int32) error {
		p := lib.DefaultQuantizeParams()
		p.FType = ftype
		return lib.Quantize(in, out, p)
	}, nil
}
