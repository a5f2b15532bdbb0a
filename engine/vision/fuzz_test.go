package vision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// tinyInstructBLIP writes the vision side of a minimal random InstructBLIP
// (ViT width 32, 4x4 images of 2x2 patches, Q-Former width 32 with
// cross-attention in every layer, 2 queries, 10-word vocab), made by
// weights/synth as the converter writes a checkpoint of that config; the
// result is a vision.gguf of a few tens of kilobytes, small enough to fuzz.
func tinyInstructBLIP(t testing.TB, weightType string) string {
	t.Helper()
	const (
		D, Dff, H, Hff, Q, V, P, E = 32, 64, 32, 64, 2, 10, 6, 16
		image, patch               = 4, 2
	)
	cfg := fmt.Sprintf(`{"architectures": ["InstructBlipForConditionalGeneration"], "model_type": "instructblip", "num_query_tokens": %d,
 "vision_config": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": 1, "num_attention_heads": 2,
   "image_size": %d, "patch_size": %d, "hidden_act": "gelu", "layer_norm_eps": 1e-6, "qkv_bias": true},
 "qformer_config": {"hidden_size": %d, "intermediate_size": %d, "num_hidden_layers": 2, "num_attention_heads": 4,
   "cross_attention_frequency": 1, "vocab_size": %d, "max_position_embeddings": %d, "hidden_act": "gelu", "layer_norm_eps": 1e-12},
 "text_config": {"model_type": "llama", "hidden_size": %d, "intermediate_size": 32, "num_hidden_layers": 1,
   "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 50}}`, Q, D, Dff, image, patch, H, Hff, V, P, E)
	m := synth.Model{Config: []byte(cfg), Seed: 1, Init: synth.Init{Std: 0.2},
		Files: map[string][]byte{"qformer_tokenizer/vocab.txt": []byte("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\ncat\ndog\n##s\nwhat\n")}}
	out := filepath.Join(t.TempDir(), "model")
	if _, err := m.Write(context.Background(), out, convert.Options{VisionType: weightType, VisionOnly: true}); err != nil {
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
