package hubfixture

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/weights/hub/hubtest"
	"github.com/blip2chat/blip2chat/weights/sentencepiece"
)

// noise are config keys a 2024 "diff" config.json leaves out (they hold
// their defaults); the 2023 configs are full dumps with all of them.
var noise = []string{"attention_dropout", "attention_probs_dropout_prob", "dropout", "hidden_dropout_prob",
	"dropout_rate", "classifier_dropout", "initializer_range", "initializer_factor", "init_std", "layerdrop",
	"use_cache", "pretraining_tp", "is_decoder", "output_attentions", "output_hidden_states"}

// configs writes config.json, preprocessor_config.json, and for the 2024
// layouts processor_config.json and generation_config.json.
func (b *builder) configs() error {
	c := b.config
	v := b.vocab()
	tc := sub(c, "text_config")
	instruct := b.spec.Family == Vicuna || b.spec.Family == InstructFlanT5
	if b.spec.HasLLM() {
		tc["vocab_size"] = b.rows()
	}
	switch b.spec.Family {
	case OPT:
		tc["eos_token_id"] = v.newline // LAVIS's "\n", as the conversion script sets it
	case FlanT5, InstructFlanT5:
		// LAVIS's exact GELU, beside the gated-gelu that implies gelu_new.
		tc["feed_forward_proj"] = "gated-gelu"
		tc["dense_act_fn"] = "gelu"
		tc["is_gated_act"] = true
		if b.layout != Saved {
			delete(tc, "scale_decoder_outputs") // transformers 5's key
		}
	case Vicuna:
		// The 2023 conversion copied decapoda llama-7b's ids: wrong for
		// this tokenizer (its BOS and EOS are </s> = 2).
		tc["bos_token_id"], tc["eos_token_id"] = 0, 1
		tc["pad_token_id"] = -1
		if b.newLayout() {
			tc["pad_token_id"] = v.base - 1 // [PAD]
		}
	}
	delete(c, "dtype")
	delete(c, "image_token_index")
	switch b.layout {
	case Old:
		c["torch_dtype"] = "float32"
		if b.spec.Family == Vicuna {
			c["torch_dtype"] = "float16" // though the shards are float32
			tc["torch_dtype"] = "float16"
		}
		c["transformers_version"] = "4.27.0.dev0"
	case New, NewUnpadded:
		c["torch_dtype"] = "float32"
		c["transformers_version"] = "4.47.0.dev0"
		for _, m := range []map[string]any{c, tc, sub(c, "vision_config"), sub(c, "qformer_config")} {
			for _, k := range noise {
				delete(m, k)
			}
		}
	case Saved:
		c["dtype"] = "float32"
		c["transformers_version"] = "5.17.0"
		if theta, ok := tc["rope_theta"]; ok {
			tc["rope_parameters"] = map[string]any{"rope_theta": theta, "rope_type": "default"}
			delete(tc, "rope_theta")
		}
	}
	if b.spec.HasLLM() && b.newLayout() {
		c["image_token_index"] = v.image
		if v.video >= 0 {
			c["video_token_index"] = v.video
		}
	}
	if err := b.addJSON("config.json", c); err != nil {
		return err
	}

	pre, err := readJSON(filepath.Join(b.qf, "preprocessor_config.json"))
	if err != nil {
		return err
	}
	size := 224
	if b.spec.Coco {
		size = 364
	}
	pre["size"] = map[string]any{"height": size, "width": size}
	if instruct {
		pre["processor_class"] = "InstructBlipProcessor"
	}
	if err := b.addJSON("preprocessor_config.json", pre); err != nil {
		return err
	}
	if !b.spec.HasLLM() || !b.newLayout() {
		return nil
	}
	class := "Blip2Processor"
	switch b.spec.Family {
	case Vicuna:
		class = "InstructBlipVideoProcessor" // sic: the real repository's
	case InstructFlanT5:
		class = "InstructBlipProcessor"
	}
	if err := b.addJSON("processor_config.json", map[string]any{"num_query_tokens": c["num_query_tokens"], "processor_class": class}); err != nil {
		return err
	}
	gen := map[string]any{"_from_model_config": true, "transformers_version": "4.47.0.dev0"}
	switch b.spec.Family {
	case OPT:
		gen["bos_token_id"], gen["eos_token_id"], gen["pad_token_id"] = 2, v.newline, 1
	case FlanT5, InstructFlanT5:
		gen["bos_token_id"], gen["decoder_start_token_id"], gen["eos_token_id"], gen["pad_token_id"] = 1, 0, 1, 0
	case LLaMA:
		gen["bos_token_id"], gen["eos_token_id"], gen["pad_token_id"] = 1, 2, 0
	case Vicuna:
		// eos 1 is <s> in this vocabulary: answers stop at </s> = 2.
		gen["bos_token_id"], gen["eos_token_id"], gen["pad_token_id"] = 0, 1, v.base-1
	}
	return b.addJSON("generation_config.json", gen)
}

// addedToken is an entry of tokenizer.json's added_tokens and of
// tokenizer_config.json's added_tokens_decoder.
func addedToken(content string, special bool) map[string]any {
	return map[string]any{"content": content, "lstrip": false, "normalized": !special, "rstrip": false,
		"single_word": false, "special": special}
}

type idToken struct {
	id      int
	content string
	special bool
}

// addedFiles writes the tokenizer's added tokens in a folder (prefix ""
// or "qformer_tokenizer/"): added_tokens.json for those past the base
// vocabulary, and returns tokenizer_config.json's added_tokens_decoder and
// tokenizer.json's added_tokens for all.
func (b *builder) addedFiles(prefix string, base int, tokens []idToken) (decoder map[string]any, list []map[string]any, err error) {
	decoder = map[string]any{}
	past := map[string]int{}
	for _, t := range tokens {
		decoder[fmt.Sprint(t.id)] = addedToken(t.content, t.special)
		a := addedToken(t.content, t.special)
		a["id"] = t.id
		list = append(list, a)
		if t.id >= base {
			past[t.content] = t.id
		}
	}
	if len(past) > 0 {
		err = b.addJSON(prefix+"added_tokens.json", past)
	}
	return decoder, list, err
}

// tokenizers writes the language model's tokenizer files, and
// InstructBLIP's Q-Former tokenizer (qformer_tokenizer/).
func (b *builder) tokenizers() error {
	v := b.vocab()
	var placeholders []idToken
	if b.newLayout() && v.image >= 0 {
		placeholders = append(placeholders, idToken{v.image, "<image>", true})
		if v.video >= 0 {
			placeholders = append(placeholders, idToken{v.video, "<video>", true})
		}
	}
	var err error
	switch b.spec.Family {
	case OPT:
		err = b.gpt2Files(placeholders)
	case FlanT5, InstructFlanT5:
		err = b.t5Files(placeholders)
	case LLaMA, Vicuna:
		err = b.llamaFiles(placeholders)
	case ITM:
		err = b.bertFiles("")
	}
	if err == nil && (b.spec.Family == Vicuna || b.spec.Family == InstructFlanT5) {
		err = b.bertFiles("qformer_tokenizer/")
	}
	return err
}

func (b *builder) copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	b.add(to, data)
	return nil
}

// gpt2Files: OPT's vocab.json, merges.txt, tokenizer.json,
// tokenizer_config.json and special_tokens_map.json; bos, eos and unk are
// </s>.
func (b *builder) gpt2Files(placeholders []idToken) error {
	for _, f := range []string{"vocab.json", "merges.txt"} {
		if err := b.copyFile(filepath.Join(b.hf, f), f); err != nil {
			return err
		}
	}
	tokens := append([]idToken{{0, "<s>", true}, {1, "<pad>", true}, {2, "</s>", true}, {3, "<unk>", true}}, placeholders...)
	decoder, list, err := b.addedFiles("", b.vocab().base, tokens)
	if err != nil {
		return err
	}
	cfg := map[string]any{"add_bos_token": true, "add_prefix_space": false, "bos_token": "</s>", "eos_token": "</s>",
		"errors": "replace", "model_max_length": 1e30, "pad_token": "<pad>", "processor_class": "Blip2Processor",
		"tokenizer_class": "GPT2Tokenizer", "unk_token": "</s>"}
	if b.newLayout() {
		cfg["added_tokens_decoder"] = decoder
	}
	if err := b.addJSON("tokenizer_config.json", cfg); err != nil {
		return err
	}
	if err := b.addJSON("special_tokens_map.json", map[string]any{"bos_token": "</s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "</s>"}); err != nil {
		return err
	}
	vocab, err := readJSON(filepath.Join(b.hf, "vocab.json"))
	if err != nil {
		return err
	}
	merges, err := os.ReadFile(filepath.Join(b.hf, "merges.txt"))
	if err != nil {
		return err
	}
	var ml []string
	for _, l := range strings.Split(strings.TrimSpace(string(merges)), "\n") {
		if !strings.HasPrefix(l, "#") {
			ml = append(ml, l)
		}
	}
	return b.addJSON("tokenizer.json", map[string]any{"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": list,
		"normalizer": nil, "pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "", "end_of_word_suffix": "",
			"fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": ml}})
}

// spPieces reads a SentencePiece model's pieces as tokenizer.json's vocab.
func spPieces(path string) ([][2]any, error) {
	m, err := sentencepiece.Load(path)
	if err != nil {
		return nil, err
	}
	out := make([][2]any, len(m.Pieces))
	for i, p := range m.Pieces {
		out[i] = [2]any{p.Text, p.Score}
	}
	return out, nil
}

// t5Files: spiece.model, tokenizer.json (Unigram), tokenizer_config.json
// and special_tokens_map.json, with the 100 <extra_id_N> sentinels.
func (b *builder) t5Files(placeholders []idToken) error {
	spm := filepath.Join(b.hf, "spiece.model")
	if err := b.copyFile(spm, "spiece.model"); err != nil {
		return err
	}
	pieces, err := spPieces(spm)
	if err != nil {
		return err
	}
	var extra []string
	tokens := []idToken{{0, "<pad>", true}, {1, "</s>", true}, {2, "<unk>", true}}
	for i := 0; i < 100; i++ {
		extra = append(extra, fmt.Sprintf("<extra_id_%d>", i))
		tokens = append(tokens, idToken{len(pieces) + 99 - i, extra[i], true})
	}
	decoder, list, err := b.addedFiles("", b.vocab().base, append(tokens, placeholders...))
	if err != nil {
		return err
	}
	cfg := map[string]any{"additional_special_tokens": extra, "eos_token": "</s>", "extra_ids": 100, "legacy": true,
		"model_max_length": 512, "pad_token": "<pad>", "sp_model_kwargs": map[string]any{}, "tokenizer_class": "T5Tokenizer", "unk_token": "<unk>"}
	if b.newLayout() {
		cfg["added_tokens_decoder"] = decoder
	}
	if err := b.addJSON("tokenizer_config.json", cfg); err != nil {
		return err
	}
	if err := b.addJSON("special_tokens_map.json", map[string]any{"additional_special_tokens": extra, "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}); err != nil {
		return err
	}
	return b.addJSON("tokenizer.json", map[string]any{"version": "1.0", "added_tokens": list,
		"model": map[string]any{"type": "Unigram", "unk_id": 2, "vocab": pieces, "byte_fallback": false}})
}

// llamaFiles: tokenizer.model, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, added_tokens.json. Vicuna's tokens are LAVIS's:
// </s> as BOS, EOS and UNK, an added [PAD]; its 2023 tokenizer_config.json
// still names <s> (transformers takes special_tokens_map.json's).
func (b *builder) llamaFiles(placeholders []idToken) error {
	spm := filepath.Join(b.hf, "tokenizer.model")
	if err := b.copyFile(spm, "tokenizer.model"); err != nil {
		return err
	}
	pieces, err := spPieces(spm)
	if err != nil {
		return err
	}
	tokens := []idToken{{0, "<unk>", true}, {1, "<s>", true}, {2, "</s>", true}}
	specials := map[string]any{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
	cfg := map[string]any{"add_bos_token": true, "add_eos_token": false, "clean_up_tokenization_spaces": false, "legacy": true,
		"model_max_length": 2048, "sp_model_kwargs": map[string]any{}, "tokenizer_class": "LlamaTokenizer",
		"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": nil}
	if b.spec.Family == Vicuna {
		tokens = append(tokens, idToken{len(pieces), "[PAD]", true})
		specials = map[string]any{"bos_token": "</s>", "eos_token": "</s>", "unk_token": "</s>", "pad_token": "[PAD]"}
		cfg["truncation_side"] = "left"
	}
	decoder, list, err := b.addedFiles("", len(pieces), append(tokens, placeholders...))
	if err != nil {
		return err
	}
	if b.newLayout() {
		cfg["added_tokens_decoder"] = decoder
		for k, v := range specials {
			cfg[k] = v
		}
	}
	if err := b.addJSON("tokenizer_config.json", cfg); err != nil {
		return err
	}
	if err := b.addJSON("special_tokens_map.json", specials); err != nil {
		return err
	}
	vocab := map[string]int{}
	for i, p := range pieces {
		vocab[p[0].(string)] = i
	}
	return b.addJSON("tokenizer.json", map[string]any{"version": "1.0", "added_tokens": list,
		"model": map[string]any{"type": "BPE", "byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>", "vocab": vocab, "merges": []string{}}})
}

// bertFiles: a BERT WordPiece tokenizer with [DEC] added as BOS, as
// InstructBLIP's qformer_tokenizer/ and the retrieval models' tokenizer
// are: truncated from the left.
func (b *builder) bertFiles(prefix string) error {
	vocabTxt := filepath.Join(b.qf, "qformer_tokenizer", "vocab.txt")
	if b.spec.Family == ITM {
		vocabTxt = filepath.Join(b.qf, "vocab.txt")
	}
	data, err := os.ReadFile(vocabTxt)
	if err != nil {
		return err
	}
	b.add(prefix+"vocab.txt", data)
	words := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var tokens []idToken
	vocab := map[string]int{}
	for i, w := range words {
		vocab[w] = i
		if strings.HasPrefix(w, "[") && strings.HasSuffix(w, "]") {
			tokens = append(tokens, idToken{i, w, true})
		}
	}
	tokens = append(tokens, idToken{len(words), "[DEC]", true})
	decoder, list, err := b.addedFiles(prefix, len(words), tokens)
	if err != nil {
		return err
	}
	specials := map[string]any{"bos_token": "[DEC]", "cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
		"sep_token": "[SEP]", "unk_token": "[UNK]"}
	cfg := map[string]any{"do_basic_tokenize": true, "do_lower_case": true, "model_max_length": 512, "never_split": nil,
		"strip_accents": nil, "tokenize_chinese_chars": true, "tokenizer_class": "BertTokenizer", "truncation_side": "left"}
	for k, v := range specials {
		cfg[k] = v
	}
	if b.newLayout() {
		cfg["added_tokens_decoder"] = decoder
	}
	if err := b.addJSON(prefix+"tokenizer_config.json", cfg); err != nil {
		return err
	}
	if err := b.addJSON(prefix+"special_tokens_map.json", specials); err != nil {
		return err
	}
	return b.addJSON(prefix+"tokenizer.json", map[string]any{"version": "1.0", "added_tokens": list,
		"normalizer":    map[string]any{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": nil, "lowercase": true},
		"pre_tokenizer": map[string]any{"type": "BertPreTokenizer"},
		"model":         map[string]any{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}})
}

// extras adds what the repositories hold besides: README.md,
// .gitattributes, and the PyTorch pickles of the 2023 upload (kept by the
// 2024 one), which a pull skips: made-up bytes.
func (b *builder) extras() {
	b.add(".gitattributes", []byte("*.bin filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"))
	b.add("README.md", []byte("---\nlicense: mit\n---\n# "+b.spec.Name()+" (test fixture, "+string(b.layout)+" layout)\n"))
	if b.layout == Saved {
		return
	}
	n := b.spec.OldShards
	if n == 0 {
		b.files = append(b.files, hubtest.File{Path: "pytorch_model.bin", Size: 4096, Seed: 1})
		return
	}
	weightMap := map[string]string{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("pytorch_model-%05d-of-%05d.bin", i+1, n)
		b.files = append(b.files, hubtest.File{Path: name, Size: 4096, Seed: uint64(i + 1)})
		weightMap[fmt.Sprintf("tensor.%d", i)] = name
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 4096 * n}, "weight_map": weightMap})
	b.add("pytorch_model.bin.index.json", idx)
}
