// Package lmconv converts the language model of a BLIP-2 or InstructBLIP
// checkpoint (its tensors under "language_model.") into a GGUF file that
// llama.cpp v0.4.0 loads: architecture "llama" for the LLaMA family (Vicuna
// in InstructBLIP) and "t5" for T5 (FlanT5), with the tokenizer taken from
// the checkpoint's SentencePiece model.
//
// The file is what llama.cpp's own convert_hf_to_gguf.py writes for
// LlamaForCausalLM and T5ForConditionalGeneration: the same architecture
// strings, metadata keys and value types, tensor names, ggml shapes, tensor
// types per --outtype and the Q/K row permutation that llama.cpp's rotary
// embedding expects. Where the script would lose something transformers
// does, this package keeps it: T5's <extra_id_N> sentinels are tokens rather
// than padding, an output scaling by d_model^-0.5 (original tied T5) is
// folded into output.weight, user-defined SentencePiece pieces keep their
// type, and add_bos/add_eos and the special ids are always written (falling
// back to the SentencePiece model's ids). OPT, which llama.cpp cannot run,
// is written for blip2chat's own engine instead (architecture OPTArch).
//
// Conversion has two steps. PlanFile checks the config and every tensor's
// presence, dtype and shape and returns the file's plan.File without
// reading any weight; plan.WriteFiles then streams the tensors one at a
// time. Types other than f32, f16 and q8_0 (q4_k_m) need llama.cpp's
// quantizer, which lives in engine/llamacpp/capi: the converter writes f16
// and Finish quantizes the result through a Quantizer the caller passes.
package lmconv

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/plan"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// FileName is the language model's file in a model folder.
const FileName = "llm.gguf"

// Prefix starts the name of every language-model tensor in a BLIP-2 family
// checkpoint, e.g. "language_model.model.layers.0.self_attn.q_proj.weight".
const Prefix = "language_model."

// Source is the checkpoint whose language model is converted.
type Source struct {
	// Dir is the checkpoint folder; the tokenizer files are read from it
	// (tokenizer.model or spiece.model, tokenizer_config.json,
	// added_tokens.json, tokenizer.json).
	Dir     string
	Text    *hfconfig.TextConfig // config.json's text_config
	Tensors plan.Checkpoint
	// Name is general.name; "" uses the folder's base name, as the script
	// does.
	Name string
	// Placeholders are the ids of the image and video placeholder tokens
	// (config.json's image_token_index and video_token_index, 2024 layout),
	// which the model replaces by the image's embeddings: they are kept
	// out of the vocabulary (see keepRows).
	Placeholders []int
}

// Tensor is one output tensor, of type F32, F16 or Q8_0.
type Tensor = plan.Tensor

// Families lists the text model types PlanFile converts, sorted: "llama" and
// "t5" for llama.cpp, "opt" for blip2chat's own engine (see OPTArch).
func Families() []string { return []string{"llama", "opt", "t5"} }

// PlanFile validates the source's language model for the output type t and
// describes its GGUF file (FileName), reading no weight;
// text_config.model_type picks the family (one of Families, with t from
// ParseFamilyType). Errors name the checkpoint and the tensor or setting at
// fault.
func PlanFile(src Source, t Type) (*plan.File, error) {
	if src.Text == nil {
		return nil, fmt.Errorf("checkpoint %s: no text_config", src.Dir)
	}
	if src.Tensors == nil {
		return nil, fmt.Errorf("checkpoint %s: no tensors", src.Dir)
	}
	if t.Write != gguf.TypeF32 && t.Write != gguf.TypeF16 && t.Write != gguf.TypeQ8_0 {
		return nil, fmt.Errorf("lmconv: cannot write weight type %v (want f32, f16 or q8_0)", t.Write)
	}
	b := &builder{src: src, typ: t}
	var err error
	switch src.Text.ModelType {
	case "llama":
		err = b.llama()
	case "t5":
		err = b.t5()
	case "opt":
		if t.Quantize {
			return nil, fmt.Errorf("lmconv: OPT weights can be f32, f16 or q8_0, not %s", t.Name)
		}
		err = b.opt()
	default:
		return nil, fmt.Errorf("checkpoint %s: language model %q cannot be converted (supported: %s)",
			src.Dir, src.Text.ModelType, strings.Join(Families(), ", "))
	}
	if err != nil {
		return nil, err
	}
	if err := b.checkPlanned(); err != nil {
		return nil, err
	}
	return b.finish(), nil
}

// builder accumulates a plan.File while checking the checkpoint.
type builder struct {
	src     Source
	typ     Type
	arch    string
	kv      []gguf.KV
	tensors []Tensor
	skipped []string
	warn    []string
	tok     *tokenizer // read by readTokenizer
	// keep is the vocabulary size written, the rows kept of the embedding
	// and LM head (keepRows).
	keep int
}

func (b *builder) add(key string, value any) {
	for i := range b.kv {
		if b.kv[i].Key == key {
			b.kv[i].Value = value
			return
		}
	}
	b.kv = append(b.kv, gguf.KV{Key: key, Value: value})
}

// archKey is an architecture-specific key such as "llama.block_count".
func (b *builder) archKey(suffix string) string { return b.arch + "." + suffix }

func (b *builder) finish() *plan.File {
	return &plan.File{Name: FileName, KV: b.kv, Tensors: b.tensors, Skipped: b.skipped, Warnings: b.warn}
}

func (b *builder) errorf(format string, args ...any) error {
	return fmt.Errorf("checkpoint %s: "+format, append([]any{b.src.Dir}, args...)...)
}

// expect checks that the checkpoint tensor Prefix+name exists, is a
// floating-point tensor and has exactly the given shape.
func (b *builder) expect(name string, shape ...int) (safetensors.Tensor, error) {
	return plan.Expect(b.src.Tensors, b.src.Dir, Prefix+name, shape...)
}

// has reports whether the checkpoint holds Prefix+name.
func (b *builder) has(name string) bool {
	_, ok := b.src.Tensors.Tensor(Prefix + name)
	return ok
}

// copyTensor plans output tensor out as checkpoint tensor Prefix+src of the
// given shape, passed through transform (nil: unchanged).
func (b *builder) copyTensor(out, src string, shape []int, transform func([]float32) []float32) error {
	return b.copyRows(out, src, shape, shape[0], transform)
}

// copyRows plans output tensor out as the first keep rows of checkpoint
// tensor Prefix+src, whose shape is checked to be shape: an embedding or LM
// head cut to the vocabulary kept (see keepRows). Only those rows are read,
// and their mapped pages are released once converted, so that streaming a
// checkpoint keeps one tensor resident, not all of it.
func (b *builder) copyRows(out, src string, shape []int, keep int, transform func([]float32) []float32) error {
	if _, err := b.expect(src, shape...); err != nil {
		return err
	}
	full := Prefix + src
	tensors := b.src.Tensors
	outShape := append([]int{keep}, shape[1:]...)
	b.tensors = append(b.tensors, Tensor{
		Name:    out,
		Type:    b.weightType(out, outShape),
		Shape:   outShape,
		Sources: []string{full},
		Values: func() ([]float32, error) {
			t, ok := tensors.Tensor(full)
			if !ok {
				return nil, fmt.Errorf("%s vanished from the checkpoint", full)
			}
			if keep != shape[0] {
				var err error
				if t, err = t.Rows(keep); err != nil {
					return nil, err
				}
			}
			v, err := t.Float32()
			t.Release()
			if err != nil {
				return nil, fmt.Errorf("%s: %v", full, err)
			}
			if transform != nil {
				v = transform(v)
			}
			return v, nil
		},
	})
	return nil
}

// weightType is the type convert_hf_to_gguf.py gives a tensor: vectors and
// norms stay F32; matrices get the asked type, and Q8_0 falls back to F16
// when the row length is not a multiple of its block size.
func (b *builder) weightType(name string, shape []int) gguf.Type {
	if len(shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || !strings.HasSuffix(name, ".weight") {
		return gguf.TypeF32
	}
	want := b.typ.Write
	if bs := want.BlockSize(); bs > 1 && shape[len(shape)-1]%bs != 0 {
		return gguf.TypeF16
	}
	return want
}

// general adds the general.* keys the script writes before the
// architecture's parameters.
func (b *builder) general() {
	b.add(gguf.KeyArchitecture, b.arch)
	b.add(gguf.KeyType, "model")
	name := b.src.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(b.src.Dir))
	}
	b.add(gguf.KeyName, name)
}

// sizeLabel adds general.size_label from the parameter count, formatted as
// gguf-py's size_label does ("6.7B", "250M", "230K").
func (b *builder) sizeLabel() {
	var n int64
	for _, t := range b.tensors {
		n += int64(t.NumElements())
	}
	b.add(gguf.KeySizeLabel, sizeLabel(n))
}

func sizeLabel(n int64) string {
	x := float64(n)
	var scaled float64
	var suffix string
	switch {
	case x > 1e12:
		scaled, suffix = x*1e-12, "T"
	case x > 1e9:
		scaled, suffix = x*1e-9, "B"
	case x > 1e6:
		scaled, suffix = x*1e-6, "M"
	default:
		scaled, suffix = x*1e-3, "K"
	}
	// Two significant digits before the point, as min_digits=2.
	digits := len(strings.TrimLeft(fmt.Sprintf("%d", int64(math.RoundToEven(scaled))), "0"))
	fix := max(2-digits, 0)
	return fmt.Sprintf("%.*f%s", fix, scaled, suffix)
}

// fileType adds general.file_type (enum llama_ftype) of what is written.
func (b *builder) fileType() {
	var ft uint32
	switch b.typ.Write {
	case gguf.TypeF32:
		ft = ftypeAllF32
	case gguf.TypeF16:
		ft = ftypeMostlyF16
	case gguf.TypeQ8_0:
		ft = ftypeMostlyQ8_0
	}
	b.add(gguf.KeyFileType, ft)
}

// rawInt returns an integer field of text_config exactly as in the file.
func rawInt(raw map[string]any, key string) (int, bool) {
	v, ok := raw[key]
	if !ok {
		return 0, false
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, false
	}
	return int(f), true
}

func rawHas(raw map[string]any, key string) bool {
	_, ok := raw[key]
	return ok
}

// step maps checkpoint tensor src (under a block prefix) to output tensor
// out of the given shape, through fn (nil: unchanged).
type step struct {
	out, src string
	shape    []int
	fn       func([]float32) []float32
}

// steps plans every step, prefixing outputs with outPrefix and sources with
// srcPrefix.
func (b *builder) steps(outPrefix, srcPrefix string, steps []step) error {
	for _, s := range steps {
		if err := b.copyTensor(outPrefix+s.out, srcPrefix+s.src, s.shape, s.fn); err != nil {
			return err
		}
	}
	return nil
}
