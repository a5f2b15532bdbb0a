package lmconv

import (
	"fmt"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
)

// OPT language models (BLIP-2 OPT-2.7b, OPT-6.7b) are not run by llama.cpp,
// which has no OPT architecture, but by blip2chat's own engine (engine/lm/opt).
// Their llm.gguf uses the architecture name OPTArch and follows llama.cpp's
// conventions where they apply: tensor and key names, ggml dims, and the
// tokenizer.ggml.* keys of a GPT-2 byte-level BPE tokenizer.
//
// Metadata (besides general.* and tokenizer.ggml.*):
//
//	blip2-opt.vocab_size                   uint32  rows of token_embd
//	blip2-opt.context_length               uint32  max_position_embeddings
//	blip2-opt.embedding_length             uint32  hidden_size
//	blip2-opt.word_embedding_length        uint32  word_embed_proj_dim (token embedding width)
//	blip2-opt.feed_forward_length          uint32  ffn_dim
//	blip2-opt.block_count                  uint32  num_hidden_layers
//	blip2-opt.attention.head_count         uint32  num_attention_heads
//	blip2-opt.attention.layer_norm_epsilon float32 1e-5 (nn.LayerNorm's default)
//	blip2-opt.position_offset              uint32  2: position p reads row p+2 of position_embd
//	blip2-opt.layer_norm_before            bool    do_layer_norm_before (false: post-LN, opt-350m)
//	blip2-opt.final_norm                   bool    output_norm present
//	blip2-opt.bias                         bool    enable_bias: linear layers have biases
//	blip2-opt.layer_norm_affine            bool    layer norms have weight and bias
//	blip2-opt.activation                   string  "relu" or "gelu"
//
// Tensors (PyTorch shapes; ggml dims reversed): token_embd.weight [V, E]
// (also the LM head, tied), position_embd.weight [P+2, H] (always F32),
// project_in.weight [H, E] and project_out.weight [E, H] when E != H,
// blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_up,
// ffn_down}.{weight, bias}, output_norm.{weight, bias}, and output.weight
// [V, E] only for an untied head.

// OPTArch is general.architecture of an OPT llm.gguf.
const OPTArch = "blip2-opt"

// Metadata keys of an OPT llm.gguf, written here and read by engine/lm/opt.
const (
	OPTKeyVocabSize           = OPTArch + ".vocab_size"
	OPTKeyContextLength       = OPTArch + ".context_length"
	OPTKeyEmbeddingLength     = OPTArch + ".embedding_length"
	OPTKeyWordEmbeddingLength = OPTArch + ".word_embedding_length"
	OPTKeyFeedForwardLength   = OPTArch + ".feed_forward_length"
	OPTKeyBlockCount          = OPTArch + ".block_count"
	OPTKeyHeadCount           = OPTArch + ".attention.head_count"
	OPTKeyLayerNormEpsilon    = OPTArch + ".attention.layer_norm_epsilon"
	OPTKeyPositionOffset      = OPTArch + ".position_offset"
	OPTKeyLayerNormBefore     = OPTArch + ".layer_norm_before"
	OPTKeyFinalNorm           = OPTArch + ".final_norm"
	OPTKeyBias                = OPTArch + ".bias"
	OPTKeyLayerNormAffine     = OPTArch + ".layer_norm_affine"
	OPTKeyActivation          = OPTArch + ".activation"
)

// Tensor names of an OPT llm.gguf. Norms and linear layers are named
// without their ".weight" / ".bias" suffix.
const (
	OPTTokenEmbd    = "token_embd.weight"
	OPTPositionEmbd = "position_embd.weight"
	OPTProjectIn    = "project_in.weight"
	OPTProjectOut   = "project_out.weight"
	OPTOutputNorm   = "output_norm"
	OPTOutput       = "output.weight"
)

// OPTBlockNames are the tensor names of one decoder block, without their
// ".weight" / ".bias" suffix.
type OPTBlockNames struct {
	AttnNorm, AttnQ, AttnK, AttnV, AttnOutput string
	FFNNorm, FFNUp, FFNDown                   string
}

// OPTBlock names the tensors of decoder block i: "blk.i.attn_q", ...
func OPTBlock(i int) OPTBlockNames {
	p := fmt.Sprintf("blk.%d.", i)
	return OPTBlockNames{
		AttnNorm: p + "attn_norm", AttnQ: p + "attn_q", AttnK: p + "attn_k", AttnV: p + "attn_v",
		AttnOutput: p + "attn_output", FFNNorm: p + "ffn_norm", FFNUp: p + "ffn_up", FFNDown: p + "ffn_down",
	}
}

// OPTDefaultType is the --llm-type used for OPT when none is given: q8_0
// halves the memory read per token against f16 at near-f16 quality, and
// q4_k_m (the llama.cpp default) cannot be used since the OPT engine reads
// only f32, f16 and q8_0.
const OPTDefaultType = "q8_0"

// OPTPositionOffset is OPTLearnedPositionalEmbedding's offset: position p
// reads row p+2 (a fairseq leftover). It is written as OPTKeyPositionOffset.
const OPTPositionOffset = 2

// ParseOPTType parses an --llm-type value for OPT: f32, f16 or q8_0; ""
// means OPTDefaultType.
func ParseOPTType(s string) (Type, error) {
	if strings.TrimSpace(s) == "" {
		s = OPTDefaultType
	}
	t, err := ParseType(s)
	if err != nil {
		return Type{}, err
	}
	if t.Quantize {
		return Type{}, fmt.Errorf("language-model type %s is not available for OPT, which blip2chat runs itself (want f32, f16 or q8_0)", t.Name)
	}
	return t, nil
}

// opt plans an OPTForCausalLM as arch OPTArch.
func (b *builder) opt() error {
	b.arch = OPTArch
	tc := b.src.Text
	nEmbd, nProj, nFF, nLayer := tc.HiddenSize, tc.WordEmbedProjDim, tc.FFNDim, tc.NumHiddenLayers
	nHead, nVocab, nPos := tc.NumAttentionHeads, tc.VocabSize, tc.MaxPositionEmbeddings
	if nProj == 0 {
		nProj = nEmbd
	}
	switch {
	case nEmbd <= 0 || nProj <= 0 || nFF <= 0 || nLayer <= 0 || nHead <= 0 || nVocab <= 0 || nPos <= 0:
		return b.errorf("text_config: hidden_size %d, word_embed_proj_dim %d, ffn_dim %d, num_hidden_layers %d, num_attention_heads %d, vocab_size %d, max_position_embeddings %d: all must be positive",
			nEmbd, nProj, nFF, nLayer, nHead, nVocab, nPos)
	case nEmbd%nHead != 0:
		return b.errorf("text_config: hidden_size %d is not a multiple of num_attention_heads %d", nEmbd, nHead)
	}
	act := strings.ToLower(tc.ActivationFunction)
	if act == "" {
		act = "relu"
	}
	if act != "relu" && act != "gelu" {
		return b.errorf("text_config: activation_function %q: the OPT engine runs relu or gelu", tc.ActivationFunction)
	}
	eps := tc.LayerNormEps
	if eps <= 0 {
		eps = 1e-5
	}
	bias, affine := tc.EnableBias, tc.LayerNormElementwiseAffine
	finalNorm := tc.DoLayerNormBefore && !tc.RemoveFinalLayerNorm

	if err := b.vocabulary(); err != nil {
		return err
	}
	b.general()
	const p = "model.decoder."
	if err := b.copyRows(OPTTokenEmbd, p+"embed_tokens.weight", []int{nVocab, nProj}, b.keep, nil); err != nil {
		return err
	}
	// Positions stay F32 whatever the type: one row is read per token, and
	// the table is small (21 MB for OPT-2.7b).
	if err := b.copyTensor(OPTPositionEmbd, p+"embed_positions.weight", []int{nPos + OPTPositionOffset, nEmbd}, nil); err != nil {
		return err
	}
	b.tensors[len(b.tensors)-1].Type = gguf.TypeF32
	if nProj != nEmbd {
		if err := b.copyTensor(OPTProjectIn, p+"project_in.weight", []int{nEmbd, nProj}, nil); err != nil {
			return err
		}
	}
	norm := func(out, src string) []step {
		if !affine {
			return nil
		}
		return []step{{out + ".weight", src + ".weight", []int{nEmbd}, nil}, {out + ".bias", src + ".bias", []int{nEmbd}, nil}}
	}
	linear := func(out, src string, rows, cols int) []step {
		s := []step{{out + ".weight", src + ".weight", []int{rows, cols}, nil}}
		if bias {
			s = append(s, step{out + ".bias", src + ".bias", []int{rows}, nil})
		}
		return s
	}
	for i := 0; i < nLayer; i++ {
		n := OPTBlock(i)
		var steps []step
		steps = append(steps, norm(n.AttnNorm, "self_attn_layer_norm")...)
		steps = append(steps, linear(n.AttnQ, "self_attn.q_proj", nEmbd, nEmbd)...)
		steps = append(steps, linear(n.AttnK, "self_attn.k_proj", nEmbd, nEmbd)...)
		steps = append(steps, linear(n.AttnV, "self_attn.v_proj", nEmbd, nEmbd)...)
		steps = append(steps, linear(n.AttnOutput, "self_attn.out_proj", nEmbd, nEmbd)...)
		steps = append(steps, norm(n.FFNNorm, "final_layer_norm")...)
		steps = append(steps, linear(n.FFNUp, "fc1", nFF, nEmbd)...)
		steps = append(steps, linear(n.FFNDown, "fc2", nEmbd, nFF)...)
		if err := b.steps("", fmt.Sprintf("%slayers.%d.", p, i), steps); err != nil {
			return err
		}
	}
	if finalNorm {
		if err := b.steps("", p, norm(OPTOutputNorm, "final_layer_norm")); err != nil {
			return err
		}
	}
	if nProj != nEmbd {
		if err := b.copyTensor(OPTProjectOut, p+"project_out.weight", []int{nProj, nEmbd}, nil); err != nil {
			return err
		}
	}
	switch {
	case tc.TieWordEmbeddings:
		// transformers ties lm_head to embed_tokens and ignores a stored copy.
		if b.has("lm_head.weight") {
			b.skipped = append(b.skipped, Prefix+"lm_head.weight")
		}
	case b.has("lm_head.weight"):
		if err := b.copyRows(OPTOutput, "lm_head.weight", []int{nVocab, nProj}, b.keep, nil); err != nil {
			return err
		}
	default:
		_, err := b.expect("lm_head.weight", nVocab, nProj)
		return err
	}

	b.sizeLabel()
	b.add(OPTKeyVocabSize, uint32(b.keep))
	b.add(OPTKeyContextLength, uint32(nPos))
	b.add(OPTKeyEmbeddingLength, uint32(nEmbd))
	b.add(OPTKeyWordEmbeddingLength, uint32(nProj))
	b.add(OPTKeyFeedForwardLength, uint32(nFF))
	b.add(OPTKeyBlockCount, uint32(nLayer))
	b.add(OPTKeyHeadCount, uint32(nHead))
	b.add(OPTKeyLayerNormEpsilon, float32(eps))
	b.add(OPTKeyPositionOffset, uint32(OPTPositionOffset))
	b.add(OPTKeyLayerNormBefore, tc.DoLayerNormBefore)
	b.add(OPTKeyFinalNorm, finalNorm)
	b.add(OPTKeyBias, bias)
	b.add(OPTKeyLayerNormAffine, affine)
	b.add(OPTKeyActivation, act)
	b.fileType()
	b.add(gguf.KeyQuantizationVersion, uint32(2))
	return b.gpt2Vocab()
}

// gpt2Vocab adds the tokenizer.ggml.* keys of a GPT-2 byte-level BPE
// tokenizer: tokens (padded with [PADn] up to vocab_size), token types,
// merges, special ids and whether BOS is added (OPT prepends </s>).
func (b *builder) gpt2Vocab() error {
	bpe, from, tcfg := b.tok.bpe, b.tok.bpeFrom, b.tok.cfg
	// Added tokens: tokenizer.json's, tokenizer_config.json's, added_tokens.json's.
	added := bpe.Added
	for _, a := range tcfg.AddedTokens {
		added = append(added, hftok.AddedToken{ID: a.ID, Content: a.Content, Special: a.Special})
	}
	tokens, types, index, err := b.gpt2Tokens(bpe, from, append(added, b.tok.addedJSON...))
	if err != nil {
		return err
	}
	merges, err := b.gpt2Merges(bpe.Merges, index, from)
	if err != nil {
		return err
	}
	ids := b.gpt2Specials(tcfg, index, types)
	addBOS := true // OPT's tokenizer prepends </s>
	if tcfg.AddBOSToken != nil && !*tcfg.AddBOSToken {
		addBOS = false
		b.warn = append(b.warn, "tokenizer_config.json sets add_bos_token false; OPT was trained with </s> in front of every text")
	}
	if _, ok := ids[gguf.KeyBOSID]; addBOS && !ok {
		return b.errorf("the OPT tokenizer adds a BOS token but none is defined (tokenizer_config.json, config.json, %s)", from)
	}
	if _, ok := ids[gguf.KeyEOSID]; !ok {
		return b.errorf("no EOS token defined (tokenizer_config.json, config.json, %s)", from)
	}

	b.add(gguf.KeyTokenizerModel, "gpt2")
	b.add(gguf.KeyTokenizerPre, "gpt-2")
	b.add(gguf.KeyTokens, tokens)
	b.add(gguf.KeyTokenType, types)
	b.add(gguf.KeyMerges, merges)
	for _, key := range []string{gguf.KeyBOSID, gguf.KeyEOSID, gguf.KeyUnknownID, gguf.KeyPaddingID} {
		if id, ok := ids[key]; ok {
			b.add(key, uint32(id))
		}
	}
	b.add(gguf.KeyAddBOS, addBOS)
	b.add(gguf.KeyAddEOS, false)
	return nil
}

// gpt2Tokens lays the vocabulary out over the ids kept (keepRows): the
// model's tokens, then the added tokens (control when special or an image
// or video placeholder, user-defined otherwise), [PADn] placeholders for
// the rest. index maps every token that is there to its id.
func (b *builder) gpt2Tokens(bpe *hftok.BPE, from string, added []hftok.AddedToken) (tokens []string, types []int32, index map[string]int, err error) {
	n := b.keep
	tokens = make([]string, n)
	types = make([]int32, n)
	filled := make([]bool, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("[PAD%d]", i)
		types[i] = tokUnused
	}
	dropped := 0
	for tok, id := range bpe.Vocab {
		if id >= n {
			if id >= b.src.Text.VocabSize {
				dropped++
			}
			continue
		}
		if filled[id] {
			return nil, nil, nil, b.errorf("%s: tokens %q and %q both have id %d", from, tokens[id], tok, id)
		}
		tokens[id], types[id], filled[id] = tok, tokNormal, true
	}
	if dropped > 0 {
		b.warn = append(b.warn, fmt.Sprintf("%s has %d tokens with ids >= vocab_size %d; they are dropped", from, dropped, b.src.Text.VocabSize))
	}
	for _, a := range added {
		if a.ID < 0 || a.ID >= n {
			continue
		}
		if filled[a.ID] && tokens[a.ID] != a.Content {
			return nil, nil, nil, b.errorf("added token %q has id %d, which is %q in %s", a.Content, a.ID, tokens[a.ID], from)
		}
		tokens[a.ID], filled[a.ID] = a.Content, true
		if a.Special || types[a.ID] == tokUnused {
			types[a.ID] = tokUserDefined
		}
		if a.Special || b.isPlaceholder(a.ID) {
			types[a.ID] = tokControl
		}
	}
	index = make(map[string]int, n)
	for i, t := range tokens {
		if filled[i] {
			index[t] = i
		}
	}
	return tokens, types, index, nil
}

// gpt2Merges writes the merges as GGUF stores them ("a b"), checking that
// each combines two known tokens into a known token, as the tokenizers
// library requires.
func (b *builder) gpt2Merges(pairs [][2]string, index map[string]int, from string) ([]string, error) {
	merges := make([]string, len(pairs))
	for i, p := range pairs {
		l, r := p[0], p[1]
		if l == "" || r == "" || strings.Contains(l, " ") || strings.Contains(r, " ") {
			return nil, b.errorf("%s: merge %d %q cannot be stored as \"a b\"", from, i+1, p)
		}
		merges[i] = l + " " + r
		for _, t := range []string{l, r, l + r} {
			if _, ok := index[t]; !ok {
				return nil, b.errorf("%s: merge %d %q uses %q, which is not in the vocabulary", from, i+1, merges[i], t)
			}
		}
	}
	return merges, nil
}

// gpt2Specials resolves the special token ids, by key: the text of
// tokenizer_config.json, else config.json's id, else GPT2Tokenizer's
// defaults for OPT. A special token that is a normal token becomes control.
func (b *builder) gpt2Specials(tcfg *hfconfig.TokenizerConfig, index map[string]int, types []int32) map[string]int {
	specials := []struct {
		typ, key, content, def string
	}{
		{"bos", gguf.KeyBOSID, tcfg.BOSToken, "</s>"},
		{"eos", gguf.KeyEOSID, tcfg.EOSToken, "</s>"},
		{"unk", gguf.KeyUnknownID, tcfg.UNKToken, "<unk>"},
		{"pad", gguf.KeyPaddingID, tcfg.PadToken, "<pad>"},
	}
	n := len(types)
	ids := map[string]int{}
	for _, s := range specials {
		id := -1
		if s.content != "" {
			if i, ok := index[s.content]; ok {
				id = i
			}
		}
		if id < 0 {
			if i, ok := rawInt(b.src.Text.Raw, s.typ+"_token_id"); ok && i >= 0 && i < n {
				id = i
			}
		}
		if id < 0 {
			if i, ok := index[s.def]; ok {
				id = i
			}
		}
		if id >= 0 {
			ids[s.key] = id
			if types[id] == tokNormal {
				types[id] = tokControl
			}
		}
	}
	return ids
}
