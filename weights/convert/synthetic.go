package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// Synthetic vision files: what `convert` would write for a checkpoint with a
// given config, but with random weights, for benchmarks at the real shapes
// (`blip2chat bench --synthetic vision`) without downloading 4-15 GB.
//
// So that a synthetic file has exactly a converted file's layout, it is
// planned by the converter itself (planVision) over a stand-in checkpoint:
// a safetensors file holding only a header, with the tensor names and shapes
// of a Hugging Face BLIP-2 checkpoint of that config, whose data section is
// a hole (a sparse file: nothing is stored and nothing is read). Every
// tensor's values then come from a seeded generator instead of the
// checkpoint.

// PlanSyntheticVision plans the vision.gguf that converting a checkpoint
// with config cfg would give, with matrices of type visionType ("f32",
// "f16", "q8_0"; "" is convert's default) and random weights drawn from
// seed: matrices uniform with variance 1/fan_in (so that activations stay
// of order one through the layers), layer-norm gains near 1, biases and
// embeddings small. The same arguments give the same bytes. Nothing is
// written but a header-only stand-in checkpoint in os.TempDir(), removed
// before returning.
func PlanSyntheticVision(cfg *hfconfig.Config, visionType string, seed uint64) (*Plan, error) {
	wt, err := ParseWeightType(visionType)
	if err != nil {
		return nil, err
	}
	if wt == gguf.TypeBF16 {
		return nil, fmt.Errorf("vision weight type bf16 is not supported (want f32, f16 or q8_0)")
	}
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("synthetic model: %v", err)
	}
	dir, err := os.MkdirTemp("", "blip2chat-synthetic-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	pre := fmt.Sprintf(`{"size": {"height": %d, "width": %d}}`, cfg.Vision.ImageSize, cfg.Vision.ImageSize)
	if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(pre), 0o644); err != nil {
		return nil, err
	}
	if err := writeHeaderOnlyCheckpoint(filepath.Join(dir, "model.safetensors"), SyntheticCheckpointTensors(cfg)); err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	arch := "Blip2ForConditionalGeneration"
	if cfg.ModelType == "instructblip" {
		arch = "InstructBlipForConditionalGeneration"
	}
	if len(cfg.Architectures) > 0 {
		arch = cfg.Architectures[0]
	}
	src := &Source{Dir: dir, Config: cfg, Architecture: arch, Checkpoint: ck}
	p, err := planVision(src, wt, func(string) {})
	if err != nil {
		return nil, err
	}
	for i := range p.KV {
		switch p.KV[i].Key {
		case "general.name":
			p.KV[i].Value = "synthetic (random weights)"
		case "blip2.llm.family":
			// The stand-in has no language model; the real one would.
			p.KV[i].Value = cfg.Text.ModelType
		}
	}
	for i := range p.Tensors {
		t := &p.Tensors[i]
		t.Sources = nil
		t.Values = RandomValues(t.Name, t.Shape, seed)
	}
	return p, nil
}

// Bytes is the size of the plan's tensors in the file (the header adds a
// few kB, or a few MB with a vocabulary).
func (p *Plan) Bytes() (int64, error) {
	var n int64
	for _, t := range p.Tensors {
		b, err := t.Bytes()
		if err != nil {
			return 0, fmt.Errorf("%s: %v", p.File, err)
		}
		n += b
	}
	return n, nil
}

// Write writes the plan as modelDir/p.File (modelDir is created if
// needed) through a temporary file renamed at the end, with the
// conversion's progress display (opt.Progress, opt.Terminal; the other
// fields of opt are not used). On error or cancellation nothing is left
// behind.
func (p *Plan) Write(ctx context.Context, modelDir string, opt Options) error {
	_, _, _, err := writePlans(ctx, modelDir, []*Plan{p}, Options{Progress: opt.Progress, Terminal: opt.Terminal})
	return err
}

// CheckpointTensor is a tensor name and shape of a Hugging Face checkpoint.
type CheckpointTensor struct {
	Name  string
	Shape []int
}

// SyntheticCheckpointTensors lists the vision-side tensors (ViT, Q-Former,
// query tokens, language projection) of a Hugging Face BLIP-2 or
// InstructBLIP checkpoint with config cfg, in the hub layout (separate
// q_bias and v_bias), as Salesforce's checkpoints store them.
func SyntheticCheckpointTensors(cfg *hfconfig.Config) []CheckpointTensor {
	v, q := cfg.Vision, cfg.QFormer
	C := v.NumChannels
	if C == 0 {
		C = 3
	}
	D, Dff, P := v.HiddenSize, v.IntermediateSize, v.PatchSize
	N := (v.ImageSize/P)*(v.ImageSize/P) + 1
	H, Hff, E := q.HiddenSize, q.IntermediateSize, q.EncoderHiddenSize
	instruct := cfg.ModelType == "instructblip"
	var ts []CheckpointTensor
	add := func(name string, shape ...int) { ts = append(ts, CheckpointTensor{name, shape}) }
	linear := func(name string, out, in int) {
		add(name+".weight", out, in)
		add(name+".bias", out)
	}
	norm := func(name string, n int) {
		add(name+".weight", n)
		add(name+".bias", n)
	}
	add("vision_model.embeddings.class_embedding", 1, 1, D)
	add("vision_model.embeddings.patch_embedding.weight", D, C, P, P)
	add("vision_model.embeddings.patch_embedding.bias", D)
	add("vision_model.embeddings.position_embedding", 1, N, D)
	for i := 0; i < v.NumHiddenLayers; i++ {
		p := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		norm(p+"layer_norm1", D)
		add(p+"self_attn.qkv.weight", 3*D, D)
		if v.QKVBias {
			add(p+"self_attn.q_bias", D)
			add(p+"self_attn.v_bias", D)
		}
		linear(p+"self_attn.projection", D, D)
		norm(p+"layer_norm2", D)
		linear(p+"mlp.fc1", Dff, D)
		linear(p+"mlp.fc2", D, Dff)
	}
	norm("vision_model.post_layernorm", D)
	add("query_tokens", 1, cfg.NumQueryTokens, H)
	if instruct {
		norm("qformer.embeddings.layernorm", H)
		add("qformer.embeddings.word_embeddings.weight", q.VocabSize, H)
		add("qformer.embeddings.position_embeddings.weight", q.MaxPositionEmbeddings, H)
	} else {
		norm("qformer.layernorm", H)
	}
	for i := 0; i < q.NumHiddenLayers; i++ {
		p := fmt.Sprintf("qformer.encoder.layer.%d.", i)
		linear(p+"attention.attention.query", H, H)
		linear(p+"attention.attention.key", H, H)
		linear(p+"attention.attention.value", H, H)
		linear(p+"attention.output.dense", H, H)
		norm(p+"attention.output.LayerNorm", H)
		if q.CrossAttentionFrequency > 0 && i%q.CrossAttentionFrequency == 0 {
			linear(p+"crossattention.attention.query", H, H)
			linear(p+"crossattention.attention.key", H, E)
			linear(p+"crossattention.attention.value", H, E)
			linear(p+"crossattention.output.dense", H, H)
			norm(p+"crossattention.output.LayerNorm", H)
		}
		linear(p+"intermediate_query.dense", Hff, H)
		linear(p+"output_query.dense", H, Hff)
		norm(p+"output_query.LayerNorm", H)
		if instruct {
			linear(p+"intermediate.dense", Hff, H)
			linear(p+"output.dense", H, Hff)
			norm(p+"output.LayerNorm", H)
		}
	}
	if T := cfg.Text.HiddenSize; T > 0 {
		linear("language_projection", T, H)
	}
	return ts
}

// writeHeaderOnlyCheckpoint writes a safetensors file declaring ts as F16
// tensors whose data section is left as a hole: the file has its full
// size but occupies only the header's blocks.
func writeHeaderOnlyCheckpoint(path string, ts []CheckpointTensor) error {
	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	header := map[string]entry{}
	var off int64
	for _, t := range ts {
		n := int64(2)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		header[t.Name] = entry{"F16", t.Shape, [2]int64{off, off + n}}
		off += n
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], uint64(len(h)))
	_, err = f.Write(append(size[:], h...))
	if err == nil {
		err = f.Truncate(int64(8+len(h)) + off)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// RandomValues returns the generator of a synthetic tensor's values
// (row-major, a new slice per call), chosen from its name and shape: a 2-D ".weight" is a linear layer's matrix
// (uniform, variance 1/fan_in), a 1-D ".weight" a layer norm's gain
// (1 ± 0.1), a ".bias" small (± 0.02), anything else an embedding (std
// 0.02, as BLIP-2's initializer). The stream depends on seed and name only.
func RandomValues(name string, shape []int, seed uint64) func() ([]float32, error) {
	center, spread := float32(0), float32(0.02*math.Sqrt(3))
	switch {
	case strings.HasSuffix(name, ".weight") && len(shape) == 2:
		spread = float32(math.Sqrt(3 / float64(shape[1])))
	case strings.HasSuffix(name, ".weight") && len(shape) == 1:
		center, spread = 1, 0.1
	case strings.HasSuffix(name, ".bias"):
		spread = 0.02
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	s := seed ^ h.Sum64()
	return func() ([]float32, error) {
		n := product(shape)
		out := make([]float32, n)
		for i := range out {
			// SplitMix64; the top 24 bits give a uniform in [-1, 1).
			s += 0x9E3779B97F4A7C15
			z := s
			z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
			z = (z ^ (z >> 27)) * 0x94D049BB133111EB
			z ^= z >> 31
			u := float32(int64(z>>40)-(1<<23)) / (1 << 23)
			out[i] = center + spread*u
		}
		return out, nil
	}
}
