package lmconv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
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

// OPTDefaultType is the --llm-type used for OPT when none is given: q8_0
// halves the memory read per token against f16 at near-f16 quality, and
// q4_k_m (the llama.cpp default) cannot be used since the OPT engine reads
// only f32, f16 and q8_0.
const OPTDefaultType = "q8_0"

// optPositionOffset is OPTLearnedPositionalEmbedding's offset: position p
// reads row p+2 (a fairseq leftover).
const optPositionOffset = 2

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

// PlanOPT is Plan for a checkpoint whose language model must be OPT
// (text_config.model_type "opt"); its llm.gguf has the architecture
// OPTArch. The tokenizer is read from the checkpoint folder: vocab.json and
// merges.txt, or tokenizer.json.
func PlanOPT(src Source, t Type) (*File, error) {
	if src.Text != nil && src.Text.ModelType != "opt" {
		return nil, fmt.Errorf("checkpoint %s: language model %q is not OPT", src.Dir, src.Text.ModelType)
	}
	return Plan(src, t)
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

	b.general()
	const p = "model.decoder."
	if err := b.copyTensor("token_embd.weight", p+"embed_tokens.weight", []int{nVocab, nProj}, nil); err != nil {
		return err
	}
	// Positions stay F32 whatever the type: one row is read per token, and
	// the table is small (21 MB for OPT-2.7b).
	if err := b.copyTensor("position_embd.weight", p+"embed_positions.weight", []int{nPos + optPositionOffset, nEmbd}, nil); err != nil {
		return err
	}
	b.tensors[len(b.tensors)-1].Type = gguf.TypeF32
	if nProj != nEmbd {
		if err := b.copyTensor("project_in.weight", p+"project_in.weight", []int{nEmbd, nProj}, nil); err != nil {
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
		var steps []step
		steps = append(steps, norm("attn_norm", "self_attn_layer_norm")...)
		steps = append(steps, linear("attn_q", "self_attn.q_proj", nEmbd, nEmbd)...)
		steps = append(steps, linear("attn_k", "self_attn.k_proj", nEmbd, nEmbd)...)
		steps = append(steps, linear("attn_v", "self_attn.v_proj", nEmbd, nEmbd)...)
		steps = append(steps, linear("attn_output", "self_attn.out_proj", nEmbd, nEmbd)...)
		steps = append(steps, norm("ffn_norm", "final_layer_norm")...)
		steps = append(steps, linear("ffn_up", "fc1", nFF, nEmbd)...)
		steps = append(steps, linear("ffn_down", "fc2", nEmbd, nFF)...)
		if err := b.steps(fmt.Sprintf("blk.%d.", i), fmt.Sprintf("%slayers.%d.", p, i), steps); err != nil {
			return err
		}
	}
	if finalNorm {
		if err := b.steps("", p, norm("output_norm", "final_layer_norm")); err != nil {
			return err
		}
	}
	if nProj != nEmbd {
		if err := b.copyTensor("project_out.weight", p+"project_out.weight", []int{nProj, nEmbd}, nil); err != nil {
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
		if err := b.copyTensor("output.weight", "lm_head.weight", []int{nVocab, nProj}, nil); err != nil {
			return err
		}
	default:
		_, err := b.expect("lm_head.weight", nVocab, nProj)
		return err
	}

	b.sizeLabel()
	b.add(b.archKey("vocab_size"), uint32(nVocab))
	b.add(b.archKey("context_length"), uint32(nPos))
	b.add(b.archKey("embedding_length"), uint32(nEmbd))
	b.add(b.archKey("word_embedding_length"), uint32(nProj))
	b.add(b.archKey("feed_forward_length"), uint32(nFF))
	b.add(b.archKey("block_count"), uint32(nLayer))
	b.add(b.archKey("attention.head_count"), uint32(nHead))
	b.add(b.archKey("attention.layer_norm_epsilon"), float32(eps))
	b.add(b.archKey("position_offset"), uint32(optPositionOffset))
	b.add(b.archKey("layer_norm_before"), tc.DoLayerNormBefore)
	b.add(b.archKey("final_norm"), finalNorm)
	b.add(b.archKey("bias"), bias)
	b.add(b.archKey("layer_norm_affine"), affine)
	b.add(b.archKey("activation"), act)
	b.fileType()
	b.add("general.quantization_version", uint32(2))
	return b.gpt2Vocab()
}

// gpt2Vocab adds the tokenizer.ggml.* keys of a GPT-2 byte-level BPE
// tokenizer: tokens (padded with [PADn] up to vocab_size), token types,
// merges, special ids and whether BOS is added (OPT prepends </s>).
func (b *builder) gpt2Vocab() error {
	dir := b.src.Dir
	vocab, merges, added, srcName, err := readGPT2Tokenizer(dir)
	if err != nil {
		return err
	}
	tcfg, err := hfconfig.LoadTokenizerConfig(dir)
	if err != nil {
		return err
	}
	for _, a := range tcfg.AddedTokens {
		added = append(added, gpt2Added{ID: a.ID, Content: a.Content, Special: a.Special})
	}
	if data, err := os.ReadFile(filepath.Join(dir, "added_tokens.json")); err == nil {
		var m map[string]int
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("%s: %v", filepath.Join(dir, "added_tokens.json"), err)
		}
		for content, id := range m {
			added = append(added, gpt2Added{ID: id, Content: content})
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	n := b.src.Text.VocabSize
	tokens := make([]string, n)
	types := make([]int32, n)
	filled := make([]bool, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("[PAD%d]", i)
		types[i] = tokUnused
	}
	dropped := 0
	for tok, id := range vocab {
		if id >= n {
			dropped++
			continue
		}
		if filled[id] {
			return b.errorf("%s: tokens %q and %q both have id %d", srcName, tokens[id], tok, id)
		}
		tokens[id], types[id], filled[id] = tok, tokNormal, true
	}
	if dropped > 0 {
		b.warn = append(b.warn, fmt.Sprintf("%s has %d tokens with ids >= vocab_size %d; they are dropped", srcName, dropped, n))
	}
	for _, a := range added {
		if a.ID < 0 || a.ID >= n {
			continue
		}
		if filled[a.ID] && tokens[a.ID] != a.Content {
			return b.errorf("added token %q has id %d, which is %q in %s", a.Content, a.ID, tokens[a.ID], srcName)
		}
		tokens[a.ID], filled[a.ID] = a.Content, true
		if a.Special || types[a.ID] == tokUnused {
			types[a.ID] = tokUserDefined
		}
		if a.Special {
			types[a.ID] = tokControl
		}
	}
	// Every merge must combine two known tokens into a known token, as
	// the tokenizers library requires.
	index := make(map[string]int, n)
	for i, t := range tokens {
		if filled[i] {
			index[t] = i
		}
	}
	for i, m := range merges {
		l, r, ok := strings.Cut(m, " ")
		if !ok || l == "" || r == "" || strings.Contains(r, " ") {
			return b.errorf("%s: merge %d %q is not two tokens", srcName, i+1, m)
		}
		for _, t := range []string{l, r, l + r} {
			if _, ok := index[t]; !ok {
				return b.errorf("%s: merge %d %q uses %q, which is not in the vocabulary", srcName, i+1, m, t)
			}
		}
	}

	// Special tokens: the text of tokenizer_config.json, else config.json's
	// id, else GPT2Tokenizer's defaults for OPT.
	specials := []struct {
		typ, key, content, def string
	}{
		{"bos", "tokenizer.ggml.bos_token_id", tcfg.BOSToken, "</s>"},
		{"eos", "tokenizer.ggml.eos_token_id", tcfg.EOSToken, "</s>"},
		{"unk", "tokenizer.ggml.unknown_token_id", tcfg.UNKToken, "<unk>"},
		{"pad", "tokenizer.ggml.padding_token_id", tcfg.PadToken, "<pad>"},
	}
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
			ids[s.typ] = id
			if types[id] == tokNormal {
				types[id] = tokControl
			}
		}
	}
	addBOS := true // OPT's tokenizer prepends </s>
	if tcfg.AddBOSToken != nil && !*tcfg.AddBOSToken {
		addBOS = false
		b.warn = append(b.warn, "tokenizer_config.json sets add_bos_token false; OPT was trained with </s> in front of every text")
	}
	if _, ok := ids["bos"]; addBOS && !ok {
		return b.errorf("the OPT tokenizer adds a BOS token but none is defined (tokenizer_config.json, config.json, %s)", srcName)
	}
	if _, ok := ids["eos"]; !ok {
		return b.errorf("no EOS token defined (tokenizer_config.json, config.json, %s)", srcName)
	}

	b.add("tokenizer.ggml.model", "gpt2")
	b.add("tokenizer.ggml.pre", "gpt-2")
	b.add("tokenizer.ggml.tokens", tokens)
	b.add("tokenizer.ggml.token_type", types)
	b.add("tokenizer.ggml.merges", merges)
	for _, s := range specials {
		if id, ok := ids[s.typ]; ok {
			b.add(s.key, uint32(id))
		}
	}
	b.add("tokenizer.ggml.add_bos_token", addBOS)
	b.add("tokenizer.ggml.add_eos_token", false)
	return nil
}

// gpt2Added is an added token of a GPT-2 tokenizer.
type gpt2Added struct {
	ID      int    `json:"id"`
	Content string `json:"content"`
	Special bool   `json:"special"`
}

// readGPT2Tokenizer reads a byte-level BPE tokenizer from dir: vocab.json
// and merges.txt when both exist, else tokenizer.json. It returns the
// vocabulary, the merges as "a b" strings in rank order, the added tokens
// and the name of the file read (for errors).
func readGPT2Tokenizer(dir string) (map[string]int, []string, []gpt2Added, string, error) {
	vPath, mPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	if fileExists(vPath) && fileExists(mPath) {
		data, err := os.ReadFile(vPath)
		if err != nil {
			return nil, nil, nil, "", err
		}
		vocab, err := parseGPT2Vocab(data)
		if err != nil {
			return nil, nil, nil, "", fmt.Errorf("%s: %v", vPath, err)
		}
		data, err = os.ReadFile(mPath)
		if err != nil {
			return nil, nil, nil, "", err
		}
		merges, err := parseGPT2Merges(data)
		if err != nil {
			return nil, nil, nil, "", fmt.Errorf("%s: %v", mPath, err)
		}
		// tokenizer.json's added tokens, if any, complete the vocabulary.
		var added []gpt2Added
		if tj := filepath.Join(dir, "tokenizer.json"); fileExists(tj) {
			data, err := os.ReadFile(tj)
			if err != nil {
				return nil, nil, nil, "", err
			}
			var j struct {
				AddedTokens []gpt2Added `json:"added_tokens"`
			}
			if err := json.Unmarshal(data, &j); err != nil {
				return nil, nil, nil, "", fmt.Errorf("%s: %v", tj, err)
			}
			added = j.AddedTokens
		}
		return vocab, merges, added, "vocab.json", nil
	}
	tj := filepath.Join(dir, "tokenizer.json")
	data, err := os.ReadFile(tj)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, "", fmt.Errorf("checkpoint %s: no GPT-2 tokenizer (vocab.json and merges.txt, or tokenizer.json) for the OPT language model", dir)
	}
	if err != nil {
		return nil, nil, nil, "", err
	}
	vocab, merges, added, err := parseGPT2TokenizerJSON(data)
	if err != nil {
		return nil, nil, nil, "", fmt.Errorf("%s: %v", tj, err)
	}
	return vocab, merges, added, "tokenizer.json", nil
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// parseGPT2Vocab parses vocab.json: {"token": id, ...}.
func parseGPT2Vocab(data []byte) (map[string]int, error) {
	var v map[string]int
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("not a vocabulary (token -> id): %v", err)
	}
	if len(v) == 0 {
		return nil, errors.New("empty vocabulary")
	}
	for t, id := range v {
		if id < 0 {
			return nil, fmt.Errorf("token %q has negative id %d", t, id)
		}
	}
	return v, nil
}

// parseGPT2Merges parses merges.txt: an optional "#version" line, then one
// "a b" pair per line in rank order; blank lines are skipped.
func parseGPT2Merges(data []byte) ([]string, error) {
	var out []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || (i == 0 && strings.HasPrefix(line, "#version")) {
			continue
		}
		if len(strings.Split(line, " ")) != 2 {
			return nil, fmt.Errorf("line %d %q is not two tokens separated by a space", i+1, line)
		}
		out = append(out, line)
	}
	return out, nil
}

// parseGPT2TokenizerJSON reads the vocabulary, merges (as "a b" strings or
// ["a", "b"] pairs) and added tokens of a tokenizer.json with a BPE model.
func parseGPT2TokenizerJSON(data []byte) (map[string]int, []string, []gpt2Added, error) {
	var j struct {
		AddedTokens []gpt2Added `json:"added_tokens"`
		Model       struct {
			Type   string            `json:"type"`
			Vocab  map[string]int    `json:"vocab"`
			Merges []json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, nil, nil, err
	}
	if j.Model.Type != "" && j.Model.Type != "BPE" {
		return nil, nil, nil, fmt.Errorf("tokenizer model %q is not BPE", j.Model.Type)
	}
	if len(j.Model.Vocab) == 0 {
		return nil, nil, nil, errors.New("no model.vocab")
	}
	merges := make([]string, 0, len(j.Model.Merges))
	for i, raw := range j.Model.Merges {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			if len(strings.Split(s, " ")) != 2 {
				return nil, nil, nil, fmt.Errorf("merge %d %q is not two tokens", i+1, s)
			}
			merges = append(merges, s)
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return nil, nil, nil, fmt.Errorf("merge %d is neither \"a b\" nor [a, b]", i+1)
		}
		if strings.Contains(pair[0], " ") || strings.Contains(pair[1], " ") || pair[0] == "" || pair[1] == "" {
			return nil, nil, nil, fmt.Errorf("merge %d %q cannot be stored as \"a b\"", i+1, pair)
		}
		merges = append(merges, pair[0]+" "+pair[1])
	}
	sort.SliceStable(j.AddedTokens, func(a, b int) bool { return j.AddedTokens[a].ID < j.AddedTokens[b].ID })
	return j.Model.Vocab, merges, j.AddedTokens, nil
}
