package lmconv

import (
	"fmt"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// Limits of llama.cpp v0.4.0 that it asserts (aborting the process) rather
// than reports.
const (
	// MaxLayers is LLAMA_MAX_LAYERS.
	MaxLayers = 512
	// maxRopeBase bounds rope.freq_base: real models use 1e4 to 1e7.
	maxRopeBase = 1e12
	// maxRopeScale bounds rope.scaling.factor.
	maxRopeScale = 1e6
	// maxNormEps bounds a norm epsilon: a small positive number.
	maxNormEps = 1
)

// CheckMetadata checks the metadata of a language model file against what
// its consumer needs: every size in range (hfconfig's limits, llama.cpp's
// layer limit), head counts that divide, and finite norm epsilons and rope
// settings (llama.cpp asserts eps >= 0 and aborts the process on a NaN; a
// NaN rope base, or an epsilon rounded to 0 or +Inf in f32, silently gives
// empty answers). The converter runs it on what it is about to write
// (PlanFile) and the loaders (engine/lm/llamacpp, engine/lm/opt) before the
// file reaches llama.cpp or sizes anything, so that a damaged or crafted
// llm.gguf is refused as its checkpoint would have been.
//
// The families convert writes (llama, t5, OPTArch) are checked in full;
// another llama.cpp architecture (a GGUF given with --llm) has the keys
// llama.cpp shares across architectures checked where present.
func CheckMetadata(f *gguf.File) error {
	c := gguf.NewChecker(f)
	arch := c.String(gguf.KeyArchitecture)
	if err := c.Err(); err != nil {
		return err
	}
	k := func(suffix string) string { return arch + "." + suffix }
	nTokens := 0
	if toks, ok := f.Strings(gguf.KeyTokens); ok {
		nTokens = len(toks)
	}
	// Special token ids, where the converter writes them.
	ids := func() {
		if nTokens == 0 {
			return
		}
		for _, key := range []string{gguf.KeyBOSID, gguf.KeyEOSID, gguf.KeyUnknownID, gguf.KeyPaddingID} {
			c.OptInt(key, 0, 0, nTokens-1)
		}
	}
	switch arch {
	case OPTArch:
		c.Int(OPTKeyVocabSize, 1, hfconfig.MaxVocab)
		c.Int(OPTKeyContextLength, 1, hfconfig.MaxPositions)
		hidden := c.Int(OPTKeyEmbeddingLength, 1, hfconfig.MaxWidth)
		c.Int(OPTKeyWordEmbeddingLength, 1, hfconfig.MaxWidth)
		c.Int(OPTKeyFeedForwardLength, 1, hfconfig.MaxWidth)
		c.Int(OPTKeyBlockCount, 1, hfconfig.MaxLayers)
		heads := c.Int(OPTKeyHeadCount, 1, hfconfig.MaxWidth)
		c.Float(OPTKeyLayerNormEpsilon, 0, maxNormEps, true)
		c.Int(OPTKeyPositionOffset, 0, 1<<16)
		c.String(OPTKeyActivation, "relu", "gelu")
		divides(c, OPTKeyEmbeddingLength, hidden, OPTKeyHeadCount, heads)
		ids()
	case "llama":
		c.Int(k("block_count"), 1, MaxLayers)
		c.Int(k("context_length"), 1, hfconfig.MaxPositions)
		width := c.Int(k("embedding_length"), 1, hfconfig.MaxWidth)
		c.Int(k("feed_forward_length"), 1, hfconfig.MaxWidth)
		heads := c.Int(k("attention.head_count"), 1, hfconfig.MaxWidth)
		kv := c.OptInt(k("attention.head_count_kv"), heads, 1, max(heads, 1))
		divides(c, k("attention.head_count"), heads, k("attention.head_count_kv"), kv)
		headDim := 0
		if heads > 0 {
			headDim = width / heads
		}
		headDim = c.OptInt(k("attention.key_length"), headDim, 1, hfconfig.MaxWidth)
		c.OptInt(k("attention.value_length"), headDim, 1, hfconfig.MaxWidth)
		if rope := c.OptInt(k("rope.dimension_count"), headDim, 1, max(headDim, 1)); c.Err() == nil && rope%2 != 0 {
			c.Failf("metadata %s = %d is odd; rotary embeddings rotate pairs", k("rope.dimension_count"), rope)
		}
		c.OptInt(k("vocab_size"), 1, 1, hfconfig.MaxVocab)
		c.Float(k("attention.layer_norm_rms_epsilon"), 0, maxNormEps, true)
		c.OptFloat(k("rope.freq_base"), 10000, 0, maxRopeBase, true)
		c.OptFloat(k("rope.scaling.factor"), 0, 0, maxRopeScale, false)
		ids()
	case "t5":
		c.Int(k("block_count"), 1, MaxLayers)
		c.OptInt(k("decoder_block_count"), 1, 1, MaxLayers)
		c.Int(k("context_length"), 1, hfconfig.MaxPositions)
		c.Int(k("embedding_length"), 1, hfconfig.MaxWidth)
		c.Int(k("feed_forward_length"), 1, hfconfig.MaxWidth)
		c.Int(k("attention.head_count"), 1, hfconfig.MaxWidth)
		c.Int(k("attention.key_length"), 1, hfconfig.MaxWidth)
		c.Int(k("attention.value_length"), 1, hfconfig.MaxWidth)
		c.Int(k("attention.relative_buckets_count"), 1, 1<<16)
		c.Float(k("attention.layer_norm_epsilon"), 0, maxNormEps, true)
		c.Float(k("attention.layer_norm_rms_epsilon"), 0, maxNormEps, true)
		if nTokens > 0 {
			c.OptInt(k("decoder_start_token_id"), 0, 0, nTokens-1)
		}
		ids()
	default:
		// Keys llama.cpp reads for most architectures; head counts may be
		// per-layer arrays, and some architectures have no attention.
		c.OptInt(k("block_count"), 1, 1, MaxLayers)
		c.OptInt(k("context_length"), 1, 0, 1<<31-1)
		c.Ints(k("attention.head_count"), false, 0, hfconfig.MaxWidth)
		c.Ints(k("attention.head_count_kv"), false, 0, hfconfig.MaxWidth)
		for _, e := range []string{"attention.layer_norm_epsilon", "attention.layer_norm_rms_epsilon"} {
			c.OptFloat(k(e), 0, 0, maxNormEps, true)
		}
		c.OptFloat(k("rope.freq_base"), 10000, 0, maxRopeBase, true)
		c.OptFloat(k("rope.scaling.factor"), 0, 0, maxRopeScale, false)
	}
	return c.Err()
}

// divides records an error unless b divides a (both positive).
func divides(c *gguf.Checker, keyA string, a int, keyB string, b int) {
	if c.Err() == nil && b > 0 && a%b != 0 {
		c.Failf("metadata %s %d is not a multiple of %s %d", keyA, a, keyB, b)
	}
}

// checkPlanned checks the metadata the builder is about to write as a
// loader will read it.
func (b *builder) checkPlanned() error {
	md, err := gguf.ParseMetadata(b.kv)
	if err == nil {
		err = CheckMetadata(md)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %s: %v", b.src.Dir, FileName, err)
	}
	return nil
}
