package opt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// The tests' OPT models are synthetic: random weights, written by
// weights/synth through the converter (weights/lmconv), as a checkpoint of
// the same shape would be converted.

// optShape is an OPT of the given sizes with OPTConfig's other defaults.
func optShape(hidden, layers, heads, ffn, wordEmbed int) Hyper {
	return Hyper{Vocab: 50272, Hidden: hidden, WordEmbed: wordEmbed, FFN: ffn, Layers: layers, Heads: heads,
		MaxPositions: 2048, PosOffset: 2, Eps: 1e-5, PreLN: true, FinalNorm: true, Bias: true, NormAffine: true,
		Activation: "relu"}
}

// configJSON is the config.json of a BLIP-2 checkpoint whose language
// model has the hyperparameters hp (position offset and epsilon are
// OPT's, 2 and 1e-5).
func configJSON(hp Hyper) []byte {
	text := map[string]any{
		"model_type": "opt", "vocab_size": hp.Vocab, "hidden_size": hp.Hidden, "word_embed_proj_dim": hp.WordEmbed,
		"ffn_dim": hp.FFN, "num_hidden_layers": hp.Layers, "num_attention_heads": hp.Heads,
		"max_position_embeddings": hp.MaxPositions, "do_layer_norm_before": hp.PreLN,
		"_remove_final_layer_norm": hp.PreLN && !hp.FinalNorm, "enable_bias": hp.Bias,
		"layer_norm_elementwise_affine": hp.NormAffine, "activation_function": hp.Activation,
	}
	b, _ := json.Marshal(map[string]any{"model_type": "blip-2", "text_config": text})
	return b
}

// writeSynthetic writes an OPT llm.gguf of shape hp with matrices of type
// typ and random weights from seed to path, of OPT's init_std 0.02.
func writeSynthetic(tb testing.TB, path string, hp Hyper, typ gguf.Type, seed uint64) {
	tb.Helper()
	m := synth.Model{Config: configJSON(hp), Seed: seed, Init: synth.Init{Std: 0.02}}
	if err := m.WriteLLM(context.Background(), path, strings.ToLower(typ.String())); err != nil {
		tb.Fatal(err)
	}
}

// publishedShapes are facebook/opt-* sizes; BLIP-2 uses opt-2.7b and
// opt-6.7b.
var publishedShapes = map[string]Hyper{
	"opt-125m": optShape(768, 12, 12, 3072, 768),
	"opt-2.7b": optShape(2560, 32, 32, 10240, 2560),
}

// cachedSynthetic returns a synthetic model of a published shape, written
// once into the user cache folder (opt-2.7b in q8_0 is 2.9 GB).
func cachedSynthetic(tb testing.TB, name string, typ gguf.Type) string {
	tb.Helper()
	hp, ok := publishedShapes[name]
	if !ok {
		tb.Fatalf("no shape %s", name)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		tb.Skip(err)
	}
	path := filepath.Join(dir, "blip2chat", "synthetic", fmt.Sprintf("%s-llm-%s-seed1-v%d", name, strings.ToLower(typ.String()), synth.Version), "llm.gguf")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		writeSynthetic(tb, path, hp, typ, 1)
	}
	return path
}
