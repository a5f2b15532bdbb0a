package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/blip2chat/blip2chat/engine/llamacpp"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

func init() {
	register(&command{
		name:    "convert",
		summary: "convert a downloaded Hugging Face BLIP-2 / InstructBLIP checkpoint into a model folder",
		usage:   "HF_DIR -o MODEL_DIR [--vision-type f32|f16|q8_0] [--llm-type f32|f16|q8_0|q4_k_m] [--vision-only]",
		run:     runConvert,
	})
}

func runConvert(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["convert"], stderr)
	out := fs.String("o", "", "output model `folder` (created if needed; vision.gguf and llm.gguf are written there)")
	visionType := fs.String("vision-type", "f16", "vision weight `type`: f32, f16 or q8_0 (norms, biases and embeddings stay f32)")
	llmType := fs.String("llm-type", "", "language model weight `type`: f32, f16, q8_0 or q4_k_m (default: q4_k_m for LLaMA and T5, made by the llama.cpp library; q8_0 for OPT, which has no q4_k_m)")
	llamaLib := fs.String("llama-lib", "", "`folder` holding the llama.cpp library (used to quantize to q4_k_m)")
	visionOnly := fs.Bool("vision-only", false, "convert only the vision side (ViT, Q-Former, projection)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return errUsage
	}

	// Ctrl-C stops between two tensors; the temporary files are removed and
	// the model folder is left as it was.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := convert.Convert(ctx, pos[0], *out, convert.Options{
		VisionType: *visionType,
		LLMType:    *llmType,
		VisionOnly: *visionOnly,
		Progress:   stderr,
		Terminal:   writerIsTerminal(stderr),
		Warnings:   stderr,
	})
	if err != nil {
		return err
	}
	if err := quantizeLLM(*out, res.LLMFamily, *llmType, *llamaLib, stderr); err != nil {
		return err
	}
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	return nil
}

// quantizeLLM finishes llm.gguf (of the language-model family, "" when none
// was written): the converter wrote it as f16 when the requested type is one
// only llama.cpp's quantizer makes (q4_k_m, for the llama.cpp families). On
// failure the f16 file stays in place, so the folder still works.
func quantizeLLM(modelDir, family, llmType, llamaLib string, stderr io.Writer) error {
	if family == "" {
		return nil
	}
	t, err := lmconv.ParseFamilyType(family, llmType)
	if err != nil || !t.Quantize {
		return err
	}
	path := filepath.Join(modelDir, "llm.gguf")
	lib, err := llamacpp.Load(llamacpp.Options{Dir: llamaLib})
	if err != nil {
		return fmt.Errorf("%s is f16, not %s: %v", path, t.Name, err)
	}
	fmt.Fprintf(stderr, "quantizing %s to %s with llama.cpp...\n", filepath.Base(path), t.Name)
	return lmconv.Finish(path, t, func(in, out string, ftype int32) error {
		p := lib.DefaultQuantizeParams()
		p.FType = ftype
		return lib.Quantize(in, out, p)
	})
}

// writerIsTerminal reports whether w is a terminal, where progress is
// redrawn in place rather than printed line by line.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
