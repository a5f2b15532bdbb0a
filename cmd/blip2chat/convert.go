package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/charmbracelet/x/term"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert a downloaded Hugging Face BLIP-2 / InstructBLIP checkpoint into a model folder",
		usage:   "HF_DIR -o MODEL_DIR [--force] [--vision-type f32|f16|q8_0] [--llm-type f32|f16|q8_0|q4_k_m] [--vision-only]",
		run:     runConvert,
	})
}

func runConvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["convert"], stderr)
	out := fs.String("o", "", "output model `folder` (created if needed; vision.gguf and llm.gguf are written there)")
	visionType := fs.String("vision-type", convert.DefaultVisionType, "vision weight `type`: f32, f16 or q8_0 (norms, biases and embeddings stay f32; q8_0 is fastest, f16 closest to the checkpoint)")
	llmType := fs.String("llm-type", "", "language model weight `type`: f32, f16, q8_0 or q4_k_m (default: q4_k_m for LLaMA and T5, made by the llama.cpp library; q8_0 for OPT, which has no q4_k_m)")
	llamaLib := fs.String("llama-lib", "", "`folder` holding the llama.cpp library (used to quantize to q4_k_m)")
	visionOnly := fs.Bool("vision-only", false, "convert only the vision side (ViT, Q-Former, projection)")
	force := fs.Bool("force", false, forceUsage+" (the model folder's vision.gguf and llm.gguf)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errUsage
	}
	if err := checkConvertOutputs(pos[0], *out, *visionOnly, *force); err != nil {
		return err
	}

	// A quantization the llama.cpp library must make is checked first: a
	// missing library should not cost a whole conversion.
	var lib *capi.Library
	if !*visionOnly {
		if lib, err = quantizerFor(pos[0], *llmType, *llamaLib); err != nil {
			return err
		}
	}

	// Ctrl-C stops between two tensors; the temporary files are removed and
	// the model folder is left as it was.
	ctx, stop := interruptContext()
	defer stop()
	res, err := convert.Convert(ctx, pos[0], *out, convert.Options{
		VisionType: *visionType,
		LLMType:    *llmType,
		VisionOnly: *visionOnly,
		Progress:   stderr,
		Terminal:   isTerminal(stderr),
		Warnings:   stderr,
	})
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "blip2chat convert: interrupted; nothing written to %s\n", safefile.Name(*out))
		return exitError{130}
	}
	if err != nil {
		return err
	}
	if err := quantizeLLM(ctx, lib, *out, res.LLMFamily, *llmType, stderr); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "blip2chat convert: interrupted while quantizing; %s is complete but f16 (run convert again to quantize it)\n", safefile.Name(filepath.Join(*out, "llm.gguf")))
			return exitError{130}
		}
		return err
	}
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "wrote %s\n", safefile.Name(f))
	}
	if *visionOnly {
		// An llm.gguf already in the folder is kept; say so if it is not
		// the new vision side's language model.
		if _, err := os.Stat(filepath.Join(*out, model.LLMFile)); err == nil {
			if err := model.Check(*out, model.Options{LlamaLib: *llamaLib}); err != nil {
				fmt.Fprintf(stderr, "warning: the %s kept in %s does not fit the new %s: %s\n", model.LLMFile, safefile.Name(*out), model.VisionFile, escapeControls(err.Error()))
			}
		}
	}
	return nil
}

// checkConvertOutputs vets the files convert writes into the model folder
// out (when it exists) as checkOutputFile does: not a checkpoint file of
// hfDir, a link or a device, and replaced only with force.
func checkConvertOutputs(hfDir, out string, visionOnly, force bool) error {
	if st, err := os.Stat(out); err != nil || !st.IsDir() {
		return nil // a new folder, or not a folder (the converter says so)
	}
	files := []string{model.VisionFile}
	if !visionOnly {
		files = append(files, model.LLMFile)
	}
	inputs := folderFiles(hfDir)
	for _, f := range files {
		if err := checkOutputFile(filepath.Join(out, f), force, inputs...); err != nil {
			return err
		}
	}
	return nil
}

// quantizerFor loads the llama.cpp library when the checkpoint in hfDir
// converts to a language-model type only llama.cpp's quantizer makes
// (q4_k_m); otherwise, or when the config cannot be read (Convert reports
// that), it returns nil.
func quantizerFor(hfDir, llmType, llamaLib string) (*capi.Library, error) {
	cfg, err := hfconfig.Load(hfDir)
	if err != nil || !slices.Contains(lmconv.Families(), cfg.Text.ModelType) {
		return nil, nil
	}
	t, err := lmconv.ParseFamilyType(cfg.Text.ModelType, llmType)
	if err != nil || !t.Quantize {
		return nil, nil // Convert reports a bad --llm-type
	}
	lib, err := capi.Load(capi.Options{Dir: llamaLib})
	if err != nil {
		return nil, fmt.Errorf("quantizing the language model to %s needs the llama.cpp library: %v (or choose --llm-type f16 or q8_0)", t.Name, err)
	}
	return lib, nil
}

// quantizeLLM finishes llm.gguf (of the language-model family, "" when none
// was written): the converter wrote it as f16 when the requested type is one
// only llama.cpp's quantizer makes (q4_k_m, for the llama.cpp families). On
// failure or interruption the f16 file stays in place, so the folder still
// works.
func quantizeLLM(ctx context.Context, lib *capi.Library, modelDir, family, llmType string, stderr io.Writer) error {
	if family == "" {
		return nil
	}
	t, err := lmconv.ParseFamilyType(family, llmType)
	if err != nil || !t.Quantize {
		return err
	}
	path := filepath.Join(modelDir, "llm.gguf")
	if lib == nil {
		return fmt.Errorf("%s is f16, not %s: no llama.cpp library to quantize it", path, t.Name)
	}
	fmt.Fprintf(stderr, "quantizing %s to %s with llama.cpp...\n", filepath.Base(path), t.Name)
	return lmconv.Finish(path, t, func(in, out string, ftype int32) error {
		p := lib.DefaultQuantizeParams()
		p.FType = ftype
		// llama.cpp cannot be stopped midway: on Ctrl-C the command returns
		// at once (Finish removes out) and the process exits under it.
		done := make(chan error, 1)
		go func() { done <- lib.Quantize(in, out, p) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// isTerminal reports whether w is a terminal (where progress is redrawn in
// place rather than printed line by line), on every platform.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
