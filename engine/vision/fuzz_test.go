package vision

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

// tinyInstructBLIP writes a minimal random InstructBLIP checkpoint in
// Hugging Face layout (ViT width 32, 4x4 images of 2x2 patches, Q-Former
// width 32 with cross-attention in every layer, 2 queries, 10-word vocab)
// and converts its vision side; the result is a vision.gguf of a few tens
// of kilobytes, small enough to fuzz.
func tinyInstructBLIP(t testing.TB, weightType string) string {
	t.Helper()
	const (
		D, Dff, H, Hff, Q, V, P, E = 32, 64, 32, 64, 2, 10, 6, 16
		image, patch, N            = 4, 2, 5
	)
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	os.MkdirAll(filepath.Join(hf, "qformer_tokenizer"), 0o755)
	cfg := fmt.Sprintf(`{"architectures": ["InstructBlipForConditionalGeneration"], "model_type": "instructblip", "num_query_tokens": %d,
 "vision_config": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": 1, "num_attention_heads": 2,
   "image_size": %d, "patch_size": %d, "hidden_act": "gelu", "layer_norm_eps": 1e-6, "qkv_bias": true},
 "qformer_config": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": 2, "num_attention_heads": 4,
   "cross_attention_frequency": 1, "vocab_size": %d, "max_position_embeddings": %d, "hidden_act": "gelu", "layer_norm_eps": 1e-12},
 "text_config": {"model_type": "llama", "hidden_size": %d, "intermediate_size": 32, "num_hidden_layers": 1,
   "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 50}}`, Q, D, Dff, image, patch, H, Hff, V, P, E)
	os.WriteFile(filepath.Join(hf, "config.json"), []byte(cfg), 0o644)
	vocab := "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\ncat\ndog\n##s\nwhat\n"
	os.WriteFile(filepath.Join(hf, "qformer_tokenizer", "vocab.txt"), []byte(vocab), 0o644)

	rng := rand.New(rand.NewSource(1))
	var ts []safetensors.WriteTensor
	add := func(name string, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.2)
			if strings.Contains(name, "norm") && strings.HasSuffix(name, "weight") {
				v[i] += 1
			}
		}
		ts = append(ts, safetensors.F32Tensor(name, shape, v))
	}
	lin := func(name string, out, in int) { add(name+".weight", out, in); add(name+".bias", out) }
	ln := func(name string, n int) { add(name+".weight", n); add(name+".bias", n) }
	add("vision_model.embeddings.class_embedding", 1, 1, D)
	add("vision_model.embeddings.patch_embedding.weight", D, 3, patch, patch)
	add("vision_model.embeddings.patch_embedding.bias", D)
	add("vision_model.embeddings.position_embedding", 1, N, D)
	p := "vision_model.encoder.layers.0."
	ln(p+"layer_norm1", D)
	ln(p+"layer_norm2", D)
	add(p+"self_attn.qkv.weight", 3*D, D)
	add(p+"self_attn.q_bias", D)
	add(p+"self_attn.v_bias", D)
	lin(p+"self_attn.projection", D, D)
	lin(p+"mlp.fc1", Dff, D)
	lin(p+"mlp.fc2", D, Dff)
	ln("vision_model.post_layernorm", D)
	add("query_tokens", 1, Q, H)
	ln("qformer.embeddings.layernorm", H)
	add("qformer.embeddings.word_embeddings.weight", V, H)
	add("qformer.embeddings.position_embeddings.weight", P, H)
	for i := 0; i < 2; i++ {
		p := fmt.Sprintf("qformer.encoder.layer.%d.", i)
		for _, a := range []string{"attention", "crossattention"} {
			in := H
			lin(p+a+".attention.query", H, H)
			if a == "crossattention" {
				in = D
			}
			lin(p+a+".attention.key", H, in)
			lin(p+a+".attention.value", H, in)
			lin(p+a+".output.dense", H, H)
			ln(p+a+".output.LayerNorm", H)
		}
		for _, s := range []string{"", "_query"} {
			lin(p+"intermediate"+s+".dense", Hff, H)
			lin(p+"output"+s+".dense", H, Hff)
			ln(p+"output"+s+".LayerNorm", H)
		}
	}
	lin("language_projection", E, H)
	if err := safetensors.WriteFile(filepath.Join(hf, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "model")
	if _, err := convert.Convert(context.Background(), hf, out, convert.Options{VisionType: weightType, VisionOnly: true}); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(out, convert.VisionFile)
}

// TestTinyModel runs the tiny model of another geometry (patch 2, 4
// Q-Former heads, cross-attention in every layer, q8_0 on every matrix):
// the three weight types agree with each other.
func TestTinyModel(t *testing.T) {
	px := make([]float32, 3*4*4)
	for i := range px {
		px[i] = float32(i%7) - 3
	}
	var ref []float32
	for _, wt := range []string{"f32", "f16", "q8_0"} {
		m, err := Load(tinyInstructBLIP(t, wt), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ids, err := m.Tokenize("what cats")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ids) != "[2 9 6 8 3]" {
			t.Errorf("Tokenize = %v", ids)
		}
		feat, err := m.EncodeImage(context.Background(), px)
		if err != nil {
			t.Fatal(err)
		}
		q, err := m.QFormer(context.Background(), feat, ids)
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Project(q)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = out
			continue
		}
		d, r := diff(out, ref)
		t.Logf("%s vs f32: relative %.3g", wt, d/r)
		if d/r > 3e-2 || d == 0 {
			t.Errorf("%s vs f32: relative difference %.3g", wt, d/r)
		}
	}
}

// FuzzLoad: a corrupted vision.gguf is an error at load, or loads into a
// model that runs without panicking. The fuzzed input is the file's header
// (metadata and tensor table, where the parsing is); the tensor data of the
// tiny model is appended after it at the default alignment, so that
// mutations are spent on the header, not on weights.
func FuzzLoad(f *testing.F) {
	file, err := os.ReadFile(tinyInstructBLIP(f, "q8_0"))
	if err != nil {
		f.Fatal(err)
	}
	gf, err := gguf.Parse(file)
	if err != nil {
		f.Fatal(err)
	}
	start := len(file)
	for _, ti := range gf.Tensors {
		if _, b, ok := gf.Tensor(ti.Name); ok && len(b) > 0 {
			start = min(start, int(uintptr(unsafe.Pointer(&b[0]))-uintptr(unsafe.Pointer(&file[0]))))
		}
	}
	header, body := file[:start], file[start:]
	f.Add(header)
	f.Add(header[:len(header)/2])
	flipped := append([]byte(nil), header...)
	flipped[len(flipped)/3] ^= 0x10
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, header []byte) {
		data := append([]byte(nil), header...)
		for len(data)%32 != 0 {
			data = append(data, 0)
		}
		data = append(data, body...)
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		m, err := newModel(gf, "fuzz", Options{Threads: 1})
		if err != nil {
			return
		}
		in := m.Info()
		px := make([]float32, in.Vision.Channels*in.Vision.ImageSize*in.Vision.ImageSize)
		feat, err := m.EncodeImage(context.Background(), px)
		if err != nil {
			return
		}
		q, err := m.QFormer(context.Background(), feat, []int{2, 3})
		if err != nil {
			q, err = m.QFormer(context.Background(), feat, nil)
		}
		if err == nil && in.ProjectionSize > 0 {
			m.Project(q)
		}
	})
}
