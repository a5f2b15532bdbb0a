package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

func init() {
	register(&command{
		name:    "encode",
		summary: "run the vision side on an image and save its tensors (for checking against transformers)",
		usage:   "-m MODEL_DIR IMAGE -o OUT.safetensors [--force] [--instruction TEXT | --instruction-ids 2,45,3] [--pixel-values FILE.safetensors] [--attention-out FILE.safetensors [--text TEXT]]",
		run:     runEncode,
	})
}

func runEncode(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["encode"], stderr)
	modelDir := fs.String("m", "", "model: an installed name (blip2chat models) or a `folder` made by 'blip2chat convert'")
	out := fs.String("o", "", "output `file` (.safetensors)")
	instruction := fs.String("instruction", "", "InstructBLIP instruction `text` for the Q-Former")
	instructionIDs := fs.String("instruction-ids", "", "InstructBLIP instruction as comma-separated Q-Former token `ids`")
	pixelFile := fs.String("pixel-values", "", "take pixel_values [1,3,H,W] from this safetensors `file` instead of an image")
	attentionOut := fs.String("attention-out", "", "also write the Q-Former's cross-attention probabilities to this .safetensors `file`: \"qformer_cross_attentions\" [cross-attention layers, heads, queries, vision tokens (class token first)], as transformers returns them with output_attentions=True")
	text := fs.String("text", "", "retrieval models: --attention-out holds the image-text matching pass's attention for this `text` (what the queries looked at to match it), and itm_logits are written")
	force := fs.Bool("force", false, forceUsage)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if *modelDir == "" || *out == "" || len(pos) > 1 || (len(pos) == 1) == (*pixelFile != "") {
		return errUsage
	}
	if *text != "" && (*instruction != "" || *instructionIDs != "") {
		return badUsage("--text is a retrieval model's; --instruction an InstructBLIP model's: give one")
	}
	if *attentionOut != "" && filepath.Clean(*attentionOut) == filepath.Clean(*out) {
		return badUsage("--attention-out and -o name the same file")
	}
	if *instruction != "" && *instructionIDs != "" {
		return badUsage("give --instruction or --instruction-ids, not both")
	}
	// The inputs the output must not overwrite: the image or the pixel
	// values, and the model's vision file.
	inputs := append([]string{*pixelFile, filepath.Join(*modelDir, model.VisionFile)}, pos...)
	if err := checkOutputFile(*out, *force, inputs...); err != nil {
		return err
	}
	if *attentionOut != "" {
		if err := checkOutputFile(*attentionOut, *force, inputs...); err != nil {
			return err
		}
	}
	var ids []int
	if *instructionIDs != "" {
		if ids, err = parseIDs(*instructionIDs); err != nil {
			return err
		}
	}

	var stages []string
	stage := func(name string, start time.Time) {
		stages = append(stages, fmt.Sprintf("%s %s", name, time.Since(start).Round(time.Microsecond)))
	}

	ctx, stop := interruptContext()
	defer stop()
	start := time.Now()
	m, err := model.OpenVision(*modelDir, vision.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	info := m.Info()
	stage("load", start)

	start = time.Now()
	S := info.Vision.ImageSize
	var pixels []float32
	if *pixelFile != "" {
		pixels, err = readPixelValues(*pixelFile, info.Vision.Channels, S)
	} else {
		pixels, err = pixelValuesFile(ctx, pos[0], info.ImageOptions())
	}
	if err != nil {
		return err
	}
	stage("preprocess", start)

	if *instruction != "" {
		if ids, err = m.Tokenize(*instruction); err != nil {
			return err
		}
	}

	feat, err := m.EncodeImage(ctx, pixels)
	if err != nil {
		return err
	}
	var qf []float32
	var att *vision.CrossAttention
	if *attentionOut != "" && *text == "" {
		qf, att, err = m.QFormerAttention(ctx, feat, ids)
	} else {
		qf, err = m.QFormer(ctx, feat, ids)
	}
	if err != nil {
		return err
	}
	var itmLogits []float32
	if *text != "" {
		if !info.IsRetrieval() {
			return badUsage("--text: %s is not a retrieval model (image-text matching needs Blip2ForImageTextRetrieval)", *modelDir)
		}
		tids, err := m.TokenizeText(*text)
		if err != nil {
			return err
		}
		logits, a, err := m.ITMAttention(ctx, feat, tids)
		if err != nil {
			return err
		}
		att, itmLogits = a, logits[:]
	}
	t := m.Timings()
	stages = append(stages, fmt.Sprintf("patch-embed %s", t.Embed.Round(time.Microsecond)),
		fmt.Sprintf("vit %s", t.ViT.Round(time.Microsecond)),
		fmt.Sprintf("qformer %s", t.QFormer.Round(time.Microsecond)))

	Q, H := info.NumQueryTokens, info.QFormer.HiddenSize
	tensors := []safetensors.WriteTensor{
		safetensors.F32Tensor("pixel_values", []int{1, info.Vision.Channels, S, S}, pixels),
		safetensors.F32Tensor("vision_last_hidden_state", []int{1, feat.Tokens, feat.Dim}, feat.Data),
		safetensors.F32Tensor("qformer_last_hidden_state", []int{1, Q, H}, qf),
	}
	if info.ProjectionSize > 0 {
		proj, err := m.Project(qf)
		if err != nil {
			return err
		}
		stages = append(stages, fmt.Sprintf("project %s", m.Timings().Project.Round(time.Microsecond)))
		tensors = append(tensors, safetensors.F32Tensor("language_model_inputs", []int{1, Q, info.ProjectionSize}, proj))
	}
	if len(ids) > 0 {
		tensors = append(tensors, int64Tensor("qformer_input_ids", []int{1, len(ids)}, ids))
	}

	if itmLogits != nil {
		tensors = append(tensors, safetensors.F32Tensor("itm_logits", []int{2}, itmLogits))
	}

	start = time.Now()
	if err := checkOutputFile(*out, *force, inputs...); err != nil { // again: the work took a while
		return err
	}
	if err := safetensors.WriteFile(*out, tensors, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if att != nil {
		if err := writeAttention(*attentionOut, *force, att, *text, inputs); err != nil {
			return err
		}
	}
	stage("write", start)
	fmt.Fprintf(stderr, "encode: %s\n", strings.Join(stages, "  "))
	return nil
}

// writeAttention writes --attention-out: the cross-attention
// probabilities, with what they are in the metadata.
func writeAttention(path string, force bool, att *vision.CrossAttention, text string, inputs []string) error {
	if err := checkOutputFile(path, force, inputs...); err != nil {
		return err
	}
	t := safetensors.F32Tensor("qformer_cross_attentions", []int{att.Layers, att.Heads, att.Queries, att.Tokens}, att.Probs)
	meta := map[string]string{"format": "pt", "axes": "cross-attention layer, head, query, vision token (0: class token, then the patches row by row)"}
	if side := int(math.Round(math.Sqrt(float64(att.Tokens - 1)))); side*side == att.Tokens-1 {
		meta["patch_grid"] = fmt.Sprintf("%dx%d", side, side)
	}
	if text != "" {
		meta["itm_text"] = text
	}
	return safetensors.WriteFile(path, []safetensors.WriteTensor{t}, meta)
}

// readPixelValues reads the pixel_values tensor [1, C, S, S] of a
// safetensors file (e.g. a golden.safetensors).
func readPixelValues(path string, channels, size int) ([]float32, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, ok := f.Tensor("pixel_values")
	if !ok {
		return nil, fmt.Errorf("%s: no pixel_values tensor", path)
	}
	want := []int{1, channels, size, size}
	if len(t.Shape) != 4 || t.Shape[0] != 1 || t.Shape[1] != channels || t.Shape[2] != size || t.Shape[3] != size {
		return nil, fmt.Errorf("%s: pixel_values has shape %v, the model takes %v", path, t.Shape, want)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return v, nil
}

// parseIDs parses "2,45,3" (spaces allowed).
func parseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, badUsage("--instruction-ids: %q is not a token id", f)
		}
		ids = append(ids, n)
	}
	return ids, nil
}

func int64Tensor(name string, shape []int, v []int) safetensors.WriteTensor {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(int64(x)))
	}
	return safetensors.WriteTensor{Name: name, DType: safetensors.I64, Shape: shape, Data: b}
}

// pixelValuesFile is the model input of the image file at path.
func pixelValuesFile(ctx context.Context, path string, o imageprep.Options) ([]float32, error) {
	img, err := imageprep.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	px, err := imageprep.PixelValues(ctx, img, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return px, nil
}
