package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/charmbracelet/x/term"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/weights/convert"
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
		if lib, err = app.LoadQuantizer(pos[0], *llmType, *llamaLib); err != nil {
			return err
		}
	}

	// Ctrl-C stops between two tensors (or while quantizing); the
	// temporary files are removed and the model folder is left as it was.
	ctx, stop := interruptContext()
	defer stop()
	res, err := convert.Convert(ctx, pos[0], *out, convert.Options{
		VisionType: *visionType,
		LLMType:    *llmType,
		VisionOnly: *visionOnly,
		Progress:   stderr,
		Terminal:   isTerminal(stderr),
		Warnings:   stderr,
		Quantizer:  app.Quantizer(ctx, lib, stderr),
	})
	if errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "blip2chat convert: interrupted; nothing written to %s\n", safefile.Name(*out))
		return exitError{130}
	}
	if err != nil {
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

// isTerminal reports whether w is a terminal (where progress is redrawn in
// place rather than printed line by line), on every platform.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
