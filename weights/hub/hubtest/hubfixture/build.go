package hubfixture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/weights/hub/hubtest"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// tensor is one checkpoint tensor, float32.
type tensor struct {
	shape []int
	v     []float32
}

// builder makes one fixture.
type builder struct {
	spec   Spec
	layout Layout
	golden string // testdata/golden

	tensors map[string]*tensor
	config  map[string]any // config.json as the golden checkpoint has it
	hf      string         // the golden checkpoint folder of the language model
	qf      string         // the golden checkpoint folder of the vision side
	files   []hubtest.File
}

// Vocabulary of a fixture's language model: the tokenizer's own tokens
// (base), the rows stored in the old layout, the placeholders of the new.
type vocab struct {
	base          int // ids the tokenizer gives before any placeholder (Vicuna: with [PAD])
	oldRows       int
	image, video  int // placeholder ids of the new layout; video -1 for BLIP-2
	newline       int // OPT's stop token ("\n"; 50118 in the real one)
	newRowsPadded int
}

func (b *builder) vocab() vocab {
	switch b.spec.Family {
	case OPT:
		// 50265 tokens, 50272 rows; <image> 50265 -> 50304 rows.
		return vocab{base: 1000, oldRows: 1008, image: 1000, video: -1, newline: 202, newRowsPadded: 1024}
	case FlanT5:
		// 32000 pieces + 100 sentinels, 32128 rows in both layouts.
		return vocab{base: 1100, oldRows: 1152, image: 1100, video: -1, newRowsPadded: 1152}
	case InstructFlanT5:
		return vocab{base: 1100, oldRows: 1152, image: 1100, video: 1101, newRowsPadded: 1152}
	case LLaMA:
		return vocab{base: 2000, oldRows: 2000, image: 2000, video: -1, newRowsPadded: 2048}
	case Vicuna:
		// 32000 pieces + [PAD] = 32001 rows; <image> 32001, <video> 32002 -> 32064.
		return vocab{base: 2001, oldRows: 2001, image: 2001, video: 2002, newRowsPadded: 2048}
	}
	return vocab{image: -1, video: -1}
}

// newLayout reports a layout of the 2024 update (or a re-save of one).
func (b *builder) newLayout() bool { return b.layout != Old }

// rows is the number of embedding rows stored at the builder's layout.
func (b *builder) rows() int {
	v := b.vocab()
	switch {
	case !b.newLayout():
		return v.oldRows
	case b.layout == NewUnpadded:
		// resize_token_embeddings(len(tokenizer)) without padding, which
		// shrinks OPT's and T5's.
		if v.video >= 0 {
			return v.video + 1
		}
		return v.image + 1
	}
	return v.newRowsPadded
}

func (b *builder) build() ([]hubtest.File, error) {
	if !map[Layout]bool{Old: true, New: true, NewUnpadded: true, Saved: true}[b.layout] {
		return nil, fmt.Errorf("unknown layout %q", b.layout)
	}
	if err := b.loadWeights(); err != nil {
		return nil, err
	}
	if err := b.loadConfig(); err != nil {
		return nil, err
	}
	if b.spec.Coco {
		b.coco()
	}
	b.embeddings()
	b.visionBias()
	if err := b.weights(); err != nil {
		return nil, err
	}
	if err := b.configs(); err != nil {
		return nil, err
	}
	if err := b.tokenizers(); err != nil {
		return nil, err
	}
	b.extras()
	sort.Slice(b.files, func(i, j int) bool { return b.files[i].Path < b.files[j].Path })
	return b.files, nil
}

func (b *builder) add(path string, data []byte) {
	b.files = append(b.files, hubtest.File{Path: path, Data: data})
}

func (b *builder) addJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b.add(path, append(data, '\n'))
	return nil
}

// readTensors reads a golden checkpoint's tensors.
func readTensors(dir string) (map[string]*tensor, error) {
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]*tensor{}
	for _, n := range f.Names() {
		t, _ := f.Tensor(n)
		v, err := t.Float32()
		if err != nil {
			return nil, err
		}
		out[n] = &tensor{shape: t.Shape, v: v}
	}
	return out, nil
}

// loadWeights reads the golden weights: InstructFlanT5 takes the vision
// side of instructblip-llama and the language model of blip2-t5.
func (b *builder) loadWeights() error {
	b.hf = filepath.Join(b.golden, b.spec.Golden(), "hf")
	b.qf = b.hf
	ts, err := readTensors(b.hf)
	if err != nil {
		return err
	}
	if b.spec.Family == InstructFlanT5 {
		b.qf = filepath.Join(b.golden, "instructblip-llama", "hf")
		vis, err := readTensors(b.qf)
		if err != nil {
			return err
		}
		for n, t := range vis {
			if !strings.HasPrefix(n, "language_model.") {
				ts[n] = t
			}
		}
		for n := range ts {
			if !strings.HasPrefix(n, "language_model.") && vis[n] == nil {
				delete(ts, n)
			}
		}
	}
	b.tensors = ts
	return nil
}

func readJSON(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return m, nil
}

func (b *builder) loadConfig() error {
	c, err := readJSON(filepath.Join(b.qf, "config.json"))
	if err != nil {
		return err
	}
	if b.spec.Family == InstructFlanT5 {
		t5, err := readJSON(filepath.Join(b.hf, "config.json"))
		if err != nil {
			return err
		}
		c["text_config"] = t5["text_config"]
		c["is_encoder_decoder"] = true
		c["use_decoder_only_language_model"] = false
	}
	b.config = c
	return nil
}

func sub(m map[string]any, k string) map[string]any {
	s, _ := m[k].(map[string]any)
	if s == nil {
		s = map[string]any{}
		m[k] = s
	}
	return s
}

// coco makes the -coco fine-tune: 364-pixel images, 26x26+1 = 677 vision
// positions, the golden 16x16 grid of position embeddings interpolated
// bilinearly (as the fine-tune's were from the pretrained 224 ones).
func (b *builder) coco() {
	const size, patch = 364, 14
	sub(b.config, "vision_config")["image_size"] = size
	p := b.tensors["vision_model.embeddings.position_embedding"]
	d := p.shape[2]
	from := int(math.Sqrt(float64(p.shape[1] - 1)))
	to := size / patch
	out := make([]float32, (to*to+1)*d)
	copy(out, p.v[:d]) // the class position
	at := func(y, x int) []float32 { return p.v[(1+y*from+x)*d:][:d] }
	for y := 0; y < to; y++ {
		fy := float64(y) * float64(from-1) / float64(to-1)
		y0 := int(fy)
		y1 := min(y0+1, from-1)
		for x := 0; x < to; x++ {
			fx := float64(x) * float64(from-1) / float64(to-1)
			x0 := int(fx)
			x1 := min(x0+1, from-1)
			wy, wx := float32(fy-float64(y0)), float32(fx-float64(x0))
			dst := out[(1+y*to+x)*d:][:d]
			a, bb, c, e := at(y0, x0), at(y0, x1), at(y1, x0), at(y1, x1)
			for i := range dst {
				dst[i] = (1-wy)*((1-wx)*a[i]+wx*bb[i]) + wy*((1-wx)*c[i]+wx*e[i])
			}
		}
	}
	b.tensors["vision_model.embeddings.position_embedding"] = &tensor{shape: []int{1, to*to + 1, d}, v: out}
}

// extendRows resizes a [V, D] tensor to rows rows, new ones the mean row
// (what resize_token_embeddings' mean initialization gives, without its
// noise).
func extendRows(t *tensor, rows int) *tensor {
	v, d := t.shape[0], t.shape[1]
	if rows <= v {
		return &tensor{shape: []int{rows, d}, v: t.v[:rows*d]}
	}
	mean := make([]float32, d)
	for r := 0; r < v; r++ {
		for i := range mean {
			mean[i] += t.v[r*d+i] / float32(v)
		}
	}
	out := append(append([]float32(nil), t.v...), make([]float32, (rows-v)*d)...)
	for r := v; r < rows; r++ {
		copy(out[r*d:], mean)
	}
	return &tensor{shape: []int{rows, d}, v: out}
}

// embeddings sets the language model's embedding rows (and the Q-Former's
// [DEC] row for InstructBLIP) for the layout, and which tied copies are
// stored. Rows grow from the golden count to the old layout's, then to the
// new layout's, so that every layout holds the same rows below each count.
func (b *builder) embeddings() {
	const lm = "language_model."
	v := b.vocab()
	grow := func(name string) {
		if t, ok := b.tensors[name]; ok {
			b.tensors[name] = extendRows(extendRows(t, v.oldRows), b.rows())
		}
	}
	switch b.spec.Family {
	case OPT:
		emb := lm + "model.decoder.embed_tokens.weight"
		grow(emb)
		if !b.newLayout() {
			// The 2023 shards store the tied head.
			b.tensors[lm+"lm_head.weight"] = b.tensors[emb]
		}
	case FlanT5, InstructFlanT5:
		grow(lm + "shared.weight")
		grow(lm + "lm_head.weight")
		shared := b.tensors[lm+"shared.weight"]
		switch b.layout {
		case Old: // three copies of the shared embedding
			b.tensors[lm+"encoder.embed_tokens.weight"] = shared
			b.tensors[lm+"decoder.embed_tokens.weight"] = shared
		case New, NewUnpadded: // one fewer
			b.tensors[lm+"encoder.embed_tokens.weight"] = shared
		}
	case LLaMA, Vicuna:
		grow(lm + "model.embed_tokens.weight")
		grow(lm + "lm_head.weight")
	}
	// InstructBLIP's Q-Former tokenizer: bert-base-uncased + [DEC].
	if b.spec.Family == Vicuna || b.spec.Family == InstructFlanT5 {
		const we = "qformer.embeddings.word_embeddings.weight"
		t := b.tensors[we]
		b.tensors[we] = extendRows(t, t.shape[0]+1)
		sub(b.config, "qformer_config")["vocab_size"] = t.shape[0] + 1
	}
}

// visionBias stores the ViT's q/k/v bias as the layout spells it: q_bias
// and v_bias (transformers 4, both Salesforce layouts) or one fused
// qkv.bias with a zero key part (transformers 5's save_pretrained).
func (b *builder) visionBias() {
	for i := 0; ; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.self_attn.", i)
		q, v, fused := b.tensors[p+"q_bias"], b.tensors[p+"v_bias"], b.tensors[p+"qkv.bias"]
		switch {
		case fused == nil && q == nil:
			return
		case fused != nil && b.layout != Saved:
			d := fused.shape[0] / 3
			b.tensors[p+"q_bias"] = &tensor{shape: []int{d}, v: fused.v[:d]}
			b.tensors[p+"v_bias"] = &tensor{shape: []int{d}, v: fused.v[2*d:]}
			delete(b.tensors, p+"qkv.bias")
		case q != nil && b.layout == Saved:
			d := q.shape[0]
			all := make([]float32, 3*d)
			copy(all, q.v)
			copy(all[2*d:], v.v)
			b.tensors[p+"qkv.bias"] = &tensor{shape: []int{3 * d}, v: all}
			delete(b.tensors, p+"q_bias")
			delete(b.tensors, p+"v_bias")
		}
	}
}

// weights writes the shards (or one model.safetensors) and their index.
// Every tensor is stored float32, whatever the config's torch_dtype says,
// as in the Salesforce repositories.
func (b *builder) weights() error {
	names := make([]string, 0, len(b.tensors))
	for n := range b.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	shards := b.spec.OldShards
	if b.newLayout() {
		shards = b.spec.NewShards
	}
	if b.layout == Saved {
		shards = 0
	}
	write := func(names []string) ([]byte, int64, error) {
		var ws []safetensors.WriteTensor
		var size int64
		for _, n := range names {
			t := b.tensors[n]
			ws = append(ws, safetensors.F32Tensor(n, t.shape, t.v))
			size += int64(4 * len(t.v))
		}
		var buf bytes.Buffer
		err := safetensors.Write(&buf, ws, map[string]string{"format": "pt"})
		return buf.Bytes(), size, err
	}
	if shards == 0 {
		data, _, err := write(names)
		if err != nil {
			return err
		}
		b.files = append(b.files, hubtest.File{Path: "model.safetensors", Data: data, LFS: true})
		return nil
	}
	weightMap := map[string]string{}
	var total int64
	per := (len(names) + shards - 1) / shards
	for i := 0; i < shards; i++ {
		part := names[min(i*per, len(names)):min((i+1)*per, len(names))]
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, shards)
		data, size, err := write(part)
		if err != nil {
			return err
		}
		total += size
		for _, n := range part {
			weightMap[n] = name
		}
		b.files = append(b.files, hubtest.File{Path: name, Data: data, LFS: true})
	}
	return b.addJSON("model.safetensors.index.json", map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap})
}
