package opt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/blip2chat/blip2chat/weights/dtype"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// Synthetic models: random weights in the shape of a real OPT, in the same
// llm.gguf format as a converted checkpoint, for benchmarks (`blip2chat
// bench --synthetic opt-2.7b`) and tests. Their text is noise, their speed
// is the real model's.

// syntheticShapes are the published OPT sizes (facebook/opt-*
// config.json); BLIP-2 uses opt-2.7b and opt-6.7b.
var syntheticShapes = map[string]Hyper{
	"opt-125m": optShape(768, 12, 12, 3072, 768),
	"opt-350m": postLN(optShape(1024, 24, 16, 4096, 512)),
	"opt-1.3b": optShape(2048, 24, 32, 8192, 2048),
	"opt-2.7b": optShape(2560, 32, 32, 10240, 2560),
	"opt-6.7b": optShape(4096, 32, 32, 16384, 4096),
}

func optShape(hidden, layers, heads, ffn, wordEmbed int) Hyper {
	return Hyper{Vocab: 50272, Hidden: hidden, WordEmbed: wordEmbed, FFN: ffn, Layers: layers, Heads: heads,
		MaxPositions: 2048, PosOffset: 2, Eps: 1e-5, PreLN: true, FinalNorm: true, Bias: true, NormAffine: true,
		Activation: "relu"}
}

// postLN is opt-350m: layer norms after the residual adds, no final norm.
func postLN(h Hyper) Hyper {
	h.PreLN, h.FinalNorm = false, false
	return h
}

// SyntheticShape returns the hyperparameters of a published OPT size:
// "opt-125m", "opt-350m", "opt-1.3b", "opt-2.7b" or "opt-6.7b".
func SyntheticShape(name string) (Hyper, bool) {
	h, ok := syntheticShapes[name]
	return h, ok
}

// SyntheticNames lists the names SyntheticShape knows, sorted.
func SyntheticNames() []string {
	var s []string
	for k := range syntheticShapes {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// syntheticVersion changes when WriteSynthetic writes different bytes for
// the same arguments, so that cached files are regenerated.
const syntheticVersion = 1

// SyntheticFile returns the path of the synthetic model name (see
// SyntheticShape) with matrices of type typ and the given seed, cached in
// os.UserCacheDir()/blip2chat/synthetic/, writing it first if it is not
// there (opt-2.7b in q8_0 is about 2.9 GB and takes a minute or so).
func SyntheticFile(name string, typ gguf.Type, seed uint64) (string, error) {
	hp, ok := SyntheticShape(name)
	if !ok {
		return "", fmt.Errorf("no synthetic OPT model %q (have %v)", name, SyntheticNames())
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("synthetic model: %v", err)
	}
	dir = filepath.Join(dir, "blip2chat", "synthetic")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-seed%d-v%d.gguf", name, typ, seed, syntheticVersion))
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := WriteSynthetic(path, hp, typ, seed); err != nil {
		return "", err
	}
	return path, nil
}

// synthTensor is one tensor of a synthetic file.
type synthTensor struct {
	name       string
	typ        gguf.Type
	rows, cols int
	// values: uniform in center ± spread
	center, spread float32
}

// WriteSynthetic writes an OPT llm.gguf with the hyperparameters hp (used
// as given: take them from SyntheticShape) and random weights, matrices of
// type typ (F32, F16 or Q8_0; norms, biases and positions stay F32), to
// path through a temporary file. It streams: at most a few rows are in
// memory at a time. The same arguments write the same bytes. The
// vocabulary is </s>-style specials, the 256 byte-level tokens and
// placeholders, with no merges.
func WriteSynthetic(path string, hp Hyper, typ gguf.Type, seed uint64) error {
	if typ != gguf.TypeF32 && typ != gguf.TypeF16 && typ != gguf.TypeQ8_0 {
		return fmt.Errorf("synthetic model: weight type %s (want F32, F16 or Q8_0)", typ)
	}
	switch {
	case hp.Vocab < 4+256 || hp.Hidden <= 0 || hp.WordEmbed <= 0 || hp.FFN <= 0 || hp.Layers <= 0 ||
		hp.Heads <= 0 || hp.MaxPositions <= 0 || hp.PosOffset < 0:
		return fmt.Errorf("synthetic model: bad shape %+v (vocab must hold 260 tokens)", hp)
	case hp.Hidden%hp.Heads != 0:
		return fmt.Errorf("synthetic model: hidden %d is not a multiple of heads %d", hp.Hidden, hp.Heads)
	}
	if hp.Eps == 0 {
		hp.Eps = 1e-5
	}
	if hp.Activation == "" {
		hp.Activation = "relu"
	}
	H, E := hp.Hidden, hp.WordEmbed
	mat := func(cols int) gguf.Type {
		if typ == gguf.TypeQ8_0 && cols%dtype.Q8_0BlockSize != 0 {
			return gguf.TypeF16 // as the converter does
		}
		return typ
	}
	const wStd = 0.02 // OPT's init_std
	spread := float32(wStd * math.Sqrt(3))
	var ts []synthTensor
	add := func(name string, t gguf.Type, rows, cols int, center, spread float32) {
		ts = append(ts, synthTensor{name, t, rows, cols, center, spread})
	}
	addLinear := func(name string, out, in int) {
		add(name+".weight", mat(in), out, in, 0, spread)
		if hp.Bias {
			add(name+".bias", gguf.TypeF32, 1, out, 0, spread)
		}
	}
	addNorm := func(name string) {
		if hp.NormAffine {
			add(name+".weight", gguf.TypeF32, 1, H, 1, 0.1)
			add(name+".bias", gguf.TypeF32, 1, H, 0, spread)
		}
	}
	add("token_embd.weight", mat(E), hp.Vocab, E, 0, spread)
	add("position_embd.weight", gguf.TypeF32, hp.MaxPositions+hp.PosOffset, H, 0, spread)
	if E != H {
		add("project_in.weight", mat(E), H, E, 0, spread)
	}
	for i := 0; i < hp.Layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		addNorm(p + "attn_norm")
		addLinear(p+"attn_q", H, H)
		addLinear(p+"attn_k", H, H)
		addLinear(p+"attn_v", H, H)
		addLinear(p+"attn_output", H, H)
		addNorm(p + "ffn_norm")
		addLinear(p+"ffn_up", hp.FFN, H)
		addLinear(p+"ffn_down", H, hp.FFN)
	}
	if hp.FinalNorm {
		addNorm("output_norm")
	}
	if E != H {
		add("project_out.weight", mat(H), E, H, 0, spread)
	}

	w := gguf.NewWriter()
	key := func(s string) string { return Arch + "." + s }
	w.Add("general.architecture", Arch)
	w.Add("general.type", "model")
	w.Add("general.name", "synthetic OPT (random weights)")
	var params int64
	for _, t := range ts {
		params += int64(t.rows) * int64(t.cols)
	}
	w.Add("general.size_label", sizeLabel(params))
	w.Add(key("vocab_size"), uint32(hp.Vocab))
	w.Add(key("context_length"), uint32(hp.MaxPositions))
	w.Add(key("embedding_length"), uint32(H))
	w.Add(key("word_embedding_length"), uint32(E))
	w.Add(key("feed_forward_length"), uint32(hp.FFN))
	w.Add(key("block_count"), uint32(hp.Layers))
	w.Add(key("attention.head_count"), uint32(hp.Heads))
	w.Add(key("attention.layer_norm_epsilon"), hp.Eps)
	w.Add(key("position_offset"), uint32(hp.PosOffset))
	w.Add(key("layer_norm_before"), hp.PreLN)
	w.Add(key("final_norm"), hp.FinalNorm)
	w.Add(key("bias"), hp.Bias)
	w.Add(key("layer_norm_affine"), hp.NormAffine)
	w.Add(key("activation"), hp.Activation)
	tokens, types := syntheticVocab(hp.Vocab)
	w.Add("tokenizer.ggml.model", "gpt2")
	w.Add("tokenizer.ggml.pre", "gpt-2")
	w.Add("tokenizer.ggml.tokens", tokens)
	w.Add("tokenizer.ggml.token_type", types)
	w.Add("tokenizer.ggml.merges", []string{})
	w.Add("tokenizer.ggml.bos_token_id", uint32(2))
	w.Add("tokenizer.ggml.eos_token_id", uint32(2))
	w.Add("tokenizer.ggml.unknown_token_id", uint32(3))
	w.Add("tokenizer.ggml.padding_token_id", uint32(1))
	w.Add("tokenizer.ggml.add_bos_token", true)
	w.Add("tokenizer.ggml.add_eos_token", false)
	for _, t := range ts {
		dims := []uint64{uint64(t.cols), uint64(t.rows)}
		if t.rows == 1 {
			dims = dims[:1]
		}
		if err := w.AddTensor(t.name, t.typ, dims); err != nil {
			return fmt.Errorf("synthetic model: %v", err)
		}
	}
	err := gguf.WriteFile(path, w, func(i int, _ gguf.TensorInfo, out io.Writer) error {
		return writeSynthTensor(out, ts[i], seed^uint64(i+1)*0x9E3779B97F4A7C15)
	})
	if err != nil {
		return fmt.Errorf("writing synthetic model %s: %w", filepath.Base(path), err)
	}
	return nil
}

// writeSynthTensor streams a tensor's random values, about 1 MB at a time.
func writeSynthTensor(out io.Writer, t synthTensor, seed uint64) error {
	rng := splitmix{seed}
	rowsPer := max(1, (1<<18)/t.cols)
	vals := make([]float32, rowsPer*t.cols)
	var buf []byte
	for r := 0; r < t.rows; r += rowsPer {
		n := min(rowsPer, t.rows-r)
		v := vals[:n*t.cols]
		for i := 0; i < len(v); i += 2 {
			x := rng.next()
			// Two uniforms in [-1, 1) from the two halves of x.
			v[i] = t.center + t.spread*(float32(int32(uint32(x)))*(1.0/(1<<31)))
			if i+1 < len(v) {
				v[i+1] = t.center + t.spread*(float32(int32(uint32(x>>32)))*(1.0/(1<<31)))
			}
		}
		switch t.typ {
		case gguf.TypeF32:
			buf = grow(buf, 4*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
			}
		case gguf.TypeF16:
			buf = grow(buf, 2*len(v))
			for i, f := range v {
				binary.LittleEndian.PutUint16(buf[2*i:], dtype.F32ToF16(f))
			}
		case gguf.TypeQ8_0:
			buf = grow(buf, len(v)/dtype.Q8_0BlockSize*dtype.Q8_0BlockBytes)
			dtype.QuantizeQ8_0(buf, v)
		}
		if _, err := out.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// splitmix is SplitMix64: fast, and good enough for random weights.
type splitmix struct{ s uint64 }

func (r *splitmix) next() uint64 {
	r.s += 0x9E3779B97F4A7C15
	z := r.s
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// syntheticVocab is <s> <pad> </s> <unk> (OPT's ids 0-3), the 256
// byte-level tokens, then placeholders up to n.
func syntheticVocab(n int) ([]string, []int32) {
	tokens := make([]string, n)
	types := make([]int32, n)
	for i, s := range []string{"<s>", "<pad>", "</s>", "<unk>"} {
		tokens[i], types[i] = s, tokControl
	}
	id := 4
	nb := 0
	for b := 0; b < 256; b++ {
		var r rune
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			r = rune(b)
		} else {
			r = rune(256 + nb)
			nb++
		}
		tokens[id], types[id] = string(r), tokNormal
		id++
	}
	for ; id < n; id++ {
		tokens[id], types[id] = fmt.Sprintf("<synthetic%d>", id), tokUserDefined
	}
	return tokens, types
}

// sizeLabel formats a parameter count as "2.7B", "125M", like general.size_label.
func sizeLabel(n int64) string {
	x := float64(n)
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.1fB", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.0fM", x/1e6)
	}
	return fmt.Sprintf("%.0fK", x/1e3)
}
