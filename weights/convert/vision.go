package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// The vision file, MODEL_DIR/vision.gguf, read by engine/vision.
//
// Metadata (general.architecture = "blip2-vision"):
//
//	blip2.family                  string  "blip-2" | "instructblip"
//	blip2.architecture            string  config.json architectures[0]
//	blip2.llm.family              string  text_config.model_type ("" if no LM)
//	blip2.prompt_format           string  "{prompt}" is replaced by the user's text
//	blip2.checkpoint_layout       string  "hub" | "transformers5"
//	blip2.weight_type             string  "f32" | "f16" | "q8_0"
//	blip2.num_query_tokens        u32
//	blip2.vision.{hidden_size, intermediate_size, block_count, head_count,
//	              image_size, patch_size, num_channels} u32
//	blip2.vision.layer_norm_epsilon f32
//	blip2.qformer.{hidden_size, intermediate_size, block_count, head_count,
//	               cross_attention_freq, encoder_hidden_size,
//	               max_position_embeddings, vocab_size} u32
//	blip2.qformer.layer_norm_epsilon f32
//	blip2.qformer.text_input      bool    InstructBLIP: the instruction enters the Q-Former
//	blip2.qformer.tokenizer.vocab      []string (WordPiece, when found)
//	blip2.qformer.tokenizer.lower_case bool
//	blip2.projection.size         u32     0 when there is no language projection
//	blip2.image.{width, height, resample} u32
//	blip2.image.{mean, std}       [3]f32
//	blip2.image.rescale_factor    f32
//	blip2.image.{do_resize, do_rescale, do_normalize, do_convert_rgb} bool
//
// Tensors (shapes PyTorch-style, [out, in] for matrices; "mat" = the
// requested weight type, everything else F32):
//
//	v.patch_embd.weight [D, C*P*P] mat   the conv kernel flattened in (c, kh, kw) order
//	v.patch_embd.bias [D]  v.class_embd [D]  v.pos_embd [N, D]
//	v.blk.%d.{ln1, ln2}.{weight, bias} [D]
//	v.blk.%d.attn_qkv.weight [3D, D] mat, .bias [3D] (q, k, v biases; k zero in hub checkpoints)
//	v.blk.%d.attn_out.{weight [D, D] mat, bias}   (self_attn.projection)
//	v.blk.%d.ffn_up.{weight [I, D] mat, bias}     (mlp.fc1)
//	v.blk.%d.ffn_down.{weight [D, I] mat, bias}   (mlp.fc2)
//	v.post_ln.{weight, bias} [D]
//	q.query_tokens [Q, H]   q.embd_ln.{weight, bias} [H]
//	q.word_embd [V, H]  q.pos_embd [P, H]         (text input only)
//	q.blk.%d.attn_{q, k, v, out}.{weight [H, H] mat, bias}  q.blk.%d.attn_ln.{weight, bias}
//	q.blk.%d.cross_q.{weight [H, H] mat, bias}, cross_{k, v}.{weight [H, E] mat, bias},
//	  cross_out.{weight [H, H] mat, bias}, cross_ln   (layers with i % freq == 0)
//	q.blk.%d.ffn_{up, down}_query.{weight mat, bias}, ffn_ln_query
//	q.blk.%d.ffn_{up, down}.{weight mat, bias}, ffn_ln   (text input only)
//	proj.{weight [T, H] mat, bias [T]}             (language_projection)

// VisionFile is the name of the vision side's file in a model folder.
const VisionFile = "vision.gguf"

// Prompt formats by family: BLIP-2 was trained on "Question: ... Answer:"
// prompts; InstructBLIP takes the instruction as it is.
const (
	PromptFormatBLIP2        = "Question: {prompt} Answer:"
	PromptFormatInstructBLIP = "{prompt}"
)

// planVision validates the vision side of src against its config and plans
// vision.gguf with matrices of type wt.
func planVision(src *Source, wt gguf.Type, warn func(string)) (*Plan, error) {
	cfg := src.Config
	v, q := cfg.Vision, cfg.QFormer
	instruct := cfg.ModelType == "instructblip"
	if cfg.ModelType != "blip-2" && !instruct {
		return nil, fmt.Errorf("%s: model_type %q is not a BLIP-2 model (want \"blip-2\" or \"instructblip\")", src.Dir, cfg.ModelType)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("%s: config.json: %v", src.Dir, err)
	}
	channels := v.NumChannels
	if channels == 0 {
		channels = 3
	}
	D, Dff, H, Hff := v.HiddenSize, v.IntermediateSize, q.HiddenSize, q.IntermediateSize
	grid := v.ImageSize / v.PatchSize
	N := grid*grid + 1
	Q := cfg.NumQueryTokens

	pre, err := hfconfig.LoadPreprocessor(src.Dir)
	if err != nil {
		return nil, err
	}
	if pre.Height != v.ImageSize || pre.Width != v.ImageSize {
		return nil, fmt.Errorf("%s: preprocessor_config.json resizes to %dx%d but the vision model takes %dx%d images", src.Dir, pre.Width, pre.Height, v.ImageSize, v.ImageSize)
	}

	// Which checkpoint layout: transformers 5 saves the fused qkv bias.
	layout := "hub"
	if _, ok := src.Checkpoint.Tensor("vision_model.encoder.layers.0.self_attn.qkv.bias"); ok {
		layout = "transformers5"
	}

	p := &Plan{File: VisionFile}
	var firstErr error
	add := func(t Tensor, err error) {
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		p.Tensors = append(p.Tensors, t)
	}
	mat := func(name, from string, out, in int) {
		shape := []int{out, in}
		add(src.Copy(name, MatrixType(wt, shape), shape, from, out, in))
	}
	vec := func(name, from string, n int) {
		add(src.Copy(name, gguf.TypeF32, []int{n}, from, n))
	}
	linear := func(name, from string, out, in int) {
		mat(name+".weight", from+".weight", out, in)
		vec(name+".bias", from+".bias", out)
	}
	norm := func(name, from string, n int) {
		vec(name+".weight", from+".weight", n)
		vec(name+".bias", from+".bias", n)
	}

	// ViT.
	P := v.PatchSize
	patch := []int{D, channels * P * P}
	add(src.Copy("v.patch_embd.weight", MatrixType(wt, patch), patch, "vision_model.embeddings.patch_embedding.weight", D, channels, P, P))
	vec("v.patch_embd.bias", "vision_model.embeddings.patch_embedding.bias", D)
	add(src.Copy("v.class_embd", gguf.TypeF32, []int{D}, "vision_model.embeddings.class_embedding", 1, 1, D))
	add(src.Copy("v.pos_embd", gguf.TypeF32, []int{N, D}, "vision_model.embeddings.position_embedding", 1, N, D))
	for i := 0; i < v.NumHiddenLayers; i++ {
		from := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		to := fmt.Sprintf("v.blk.%d.", i)
		norm(to+"ln1", from+"layer_norm1", D)
		mat(to+"attn_qkv.weight", from+"self_attn.qkv.weight", 3*D, D)
		if v.QKVBias {
			if layout == "transformers5" {
				vec(to+"attn_qkv.bias", from+"self_attn.qkv.bias", 3*D)
			} else {
				add(qkvBias(src, to+"attn_qkv.bias", from+"self_attn.", D))
			}
		}
		linear(to+"attn_out", from+"self_attn.projection", D, D)
		norm(to+"ln2", from+"layer_norm2", D)
		linear(to+"ffn_up", from+"mlp.fc1", Dff, D)
		linear(to+"ffn_down", from+"mlp.fc2", D, Dff)
	}
	norm("v.post_ln", "vision_model.post_layernorm", D)

	// Q-Former.
	add(src.Copy("q.query_tokens", gguf.TypeF32, []int{Q, H}, "query_tokens", 1, Q, H))
	if instruct {
		norm("q.embd_ln", "qformer.embeddings.layernorm", H)
		add(src.Copy("q.word_embd", gguf.TypeF32, []int{q.VocabSize, H}, "qformer.embeddings.word_embeddings.weight", q.VocabSize, H))
		add(src.Copy("q.pos_embd", gguf.TypeF32, []int{q.MaxPositionEmbeddings, H}, "qformer.embeddings.position_embeddings.weight", q.MaxPositionEmbeddings, H))
	} else {
		norm("q.embd_ln", "qformer.layernorm", H)
	}
	for i := 0; i < q.NumHiddenLayers; i++ {
		from := fmt.Sprintf("qformer.encoder.layer.%d.", i)
		to := fmt.Sprintf("q.blk.%d.", i)
		linear(to+"attn_q", from+"attention.attention.query", H, H)
		linear(to+"attn_k", from+"attention.attention.key", H, H)
		linear(to+"attn_v", from+"attention.attention.value", H, H)
		linear(to+"attn_out", from+"attention.output.dense", H, H)
		norm(to+"attn_ln", from+"attention.output.LayerNorm", H)
		if i%q.CrossAttentionFrequency == 0 {
			E := q.EncoderHiddenSize
			linear(to+"cross_q", from+"crossattention.attention.query", H, H)
			linear(to+"cross_k", from+"crossattention.attention.key", H, E)
			linear(to+"cross_v", from+"crossattention.attention.value", H, E)
			linear(to+"cross_out", from+"crossattention.output.dense", H, H)
			norm(to+"cross_ln", from+"crossattention.output.LayerNorm", H)
		}
		linear(to+"ffn_up_query", from+"intermediate_query.dense", Hff, H)
		linear(to+"ffn_down_query", from+"output_query.dense", H, Hff)
		norm(to+"ffn_ln_query", from+"output_query.LayerNorm", H)
		if instruct {
			linear(to+"ffn_up", from+"intermediate.dense", Hff, H)
			linear(to+"ffn_down", from+"output.dense", H, Hff)
			norm(to+"ffn_ln", from+"output.LayerNorm", H)
		}
	}

	// Language projection: absent only from retrieval checkpoints.
	projSize := 0
	_, hasProj := src.Checkpoint.Tensor("language_projection.weight")
	if hasProj || !strings.Contains(src.Architecture, "ImageTextRetrieval") {
		projSize = cfg.Text.HiddenSize // d_model for T5
		if projSize <= 0 {
			return nil, fmt.Errorf("%s: config.json: text_config has no hidden size for the language projection", src.Dir)
		}
		linear("proj", "language_projection", projSize, H)
	}
	if firstErr != nil {
		return nil, firstErr
	}

	family := cfg.ModelType
	prompt := PromptFormatBLIP2
	if instruct {
		prompt = PromptFormatInstructBLIP
	}
	llm := ""
	if src.HasLanguageModel() {
		llm = cfg.Text.ModelType
	}
	kv := func(k string, v any) { p.KV = append(p.KV, gguf.KV{Key: k, Value: v}) }
	u := func(n int) uint32 { return uint32(n) }
	kv("general.architecture", "blip2-vision")
	kv("general.name", filepath.Base(filepath.Clean(src.Dir)))
	kv("blip2.family", family)
	kv("blip2.architecture", src.Architecture)
	kv("blip2.llm.family", llm)
	kv("blip2.prompt_format", prompt)
	kv("blip2.checkpoint_layout", layout)
	kv("blip2.weight_type", weightTypeName(wt))
	kv("blip2.num_query_tokens", u(Q))
	kv("blip2.vision.hidden_size", u(D))
	kv("blip2.vision.intermediate_size", u(Dff))
	kv("blip2.vision.block_count", u(v.NumHiddenLayers))
	kv("blip2.vision.head_count", u(v.NumAttentionHeads))
	kv("blip2.vision.image_size", u(v.ImageSize))
	kv("blip2.vision.patch_size", u(v.PatchSize))
	kv("blip2.vision.num_channels", u(channels))
	kv("blip2.vision.layer_norm_epsilon", float32(v.LayerNormEps))
	kv("blip2.qformer.hidden_size", u(H))
	kv("blip2.qformer.intermediate_size", u(Hff))
	kv("blip2.qformer.block_count", u(q.NumHiddenLayers))
	kv("blip2.qformer.head_count", u(q.NumAttentionHeads))
	kv("blip2.qformer.cross_attention_freq", u(q.CrossAttentionFrequency))
	kv("blip2.qformer.encoder_hidden_size", u(q.EncoderHiddenSize))
	kv("blip2.qformer.max_position_embeddings", u(q.MaxPositionEmbeddings))
	kv("blip2.qformer.vocab_size", u(q.VocabSize))
	kv("blip2.qformer.layer_norm_epsilon", float32(q.LayerNormEps))
	kv("blip2.qformer.text_input", instruct)
	kv("blip2.projection.size", u(projSize))
	kv("blip2.image.width", u(pre.Width))
	kv("blip2.image.height", u(pre.Height))
	kv("blip2.image.resample", u(pre.Resample))
	kv("blip2.image.mean", pre.Mean[:])
	kv("blip2.image.std", pre.Std[:])
	kv("blip2.image.rescale_factor", pre.RescaleFactor)
	kv("blip2.image.do_resize", pre.DoResize)
	kv("blip2.image.do_rescale", pre.DoRescale)
	kv("blip2.image.do_normalize", pre.DoNormalize)
	kv("blip2.image.do_convert_rgb", pre.DoConvertRGB)
	if instruct {
		vocab, lower, path, err := findQFormerVocab(src.Dir)
		switch {
		case err != nil:
			return nil, err
		case vocab == nil:
			warn(fmt.Sprintf("no Q-Former WordPiece vocab in %s (qformer_tokenizer/vocab.txt); instructions will have to be given as token ids", src.Dir))
		case len(vocab) > q.VocabSize:
			return nil, fmt.Errorf("%s: %d tokens, more than the Q-Former's vocab_size %d", path, len(vocab), q.VocabSize)
		default:
			kv("blip2.qformer.tokenizer.vocab", vocab)
			kv("blip2.qformer.tokenizer.lower_case", lower)
		}
	}
	return p, nil
}

// checkConfig refuses configs the engine would compute wrongly.
func checkConfig(cfg *hfconfig.Config) error {
	v, q := cfg.Vision, cfg.QFormer
	pos := func(name string, n int) error {
		if n <= 0 {
			return fmt.Errorf("%s must be positive, is %d", name, n)
		}
		return nil
	}
	for _, c := range []struct {
		name string
		n    int
	}{
		{"num_query_tokens", cfg.NumQueryTokens},
		{"vision_config.hidden_size", v.HiddenSize}, {"vision_config.intermediate_size", v.IntermediateSize},
		{"vision_config.num_hidden_layers", v.NumHiddenLayers}, {"vision_config.num_attention_heads", v.NumAttentionHeads},
		{"vision_config.image_size", v.ImageSize}, {"vision_config.patch_size", v.PatchSize},
		{"qformer_config.hidden_size", q.HiddenSize}, {"qformer_config.intermediate_size", q.IntermediateSize},
		{"qformer_config.num_hidden_layers", q.NumHiddenLayers}, {"qformer_config.num_attention_heads", q.NumAttentionHeads},
		{"qformer_config.cross_attention_frequency", q.CrossAttentionFrequency},
		{"qformer_config.encoder_hidden_size", q.EncoderHiddenSize},
	} {
		if err := pos(c.name, c.n); err != nil {
			return err
		}
	}
	if v.HiddenSize%v.NumAttentionHeads != 0 {
		return fmt.Errorf("vision_config.hidden_size %d is not a multiple of num_attention_heads %d", v.HiddenSize, v.NumAttentionHeads)
	}
	if q.HiddenSize%q.NumAttentionHeads != 0 {
		return fmt.Errorf("qformer_config.hidden_size %d is not a multiple of num_attention_heads %d", q.HiddenSize, q.NumAttentionHeads)
	}
	if v.ImageSize%v.PatchSize != 0 {
		return fmt.Errorf("vision_config.image_size %d is not a multiple of patch_size %d", v.ImageSize, v.PatchSize)
	}
	if v.NumChannels != 0 && v.NumChannels != 3 {
		return fmt.Errorf("vision_config.num_channels is %d; only RGB (3) images are supported", v.NumChannels)
	}
	if q.EncoderHiddenSize != v.HiddenSize {
		return fmt.Errorf("qformer_config.encoder_hidden_size %d differs from vision_config.hidden_size %d", q.EncoderHiddenSize, v.HiddenSize)
	}
	if a := strings.ToLower(v.HiddenAct); a != "gelu" {
		return fmt.Errorf("vision_config.hidden_act %q is not supported (only exact \"gelu\")", v.HiddenAct)
	}
	if a := strings.ToLower(q.HiddenAct); a != "gelu" {
		return fmt.Errorf("qformer_config.hidden_act %q is not supported (only exact \"gelu\")", q.HiddenAct)
	}
	if t := q.PositionEmbeddingType; t != "" && t != "absolute" {
		return fmt.Errorf("qformer_config.position_embedding_type %q is not supported (only \"absolute\")", t)
	}
	if cfg.ModelType == "instructblip" {
		if err := pos("qformer_config.vocab_size", q.VocabSize); err != nil {
			return err
		}
		if err := pos("qformer_config.max_position_embeddings", q.MaxPositionEmbeddings); err != nil {
			return err
		}
	}
	return nil
}

// qkvBias plans the fused [3D] qkv bias of a hub-layout checkpoint, which
// stores q_bias and v_bias; the key has no bias (zeros), as in
// transformers' Blip2Attention.
func qkvBias(src *Source, name, prefix string, D int) (Tensor, error) {
	qn, vn := prefix+"q_bias", prefix+"v_bias"
	if _, err := src.Expect(qn, D); err != nil {
		return Tensor{}, err
	}
	if _, err := src.Expect(vn, D); err != nil {
		return Tensor{}, err
	}
	return Tensor{Name: name, Type: gguf.TypeF32, Shape: []int{3 * D}, Sources: []string{qn, vn},
		Values: func() ([]float32, error) {
			qb, err := src.Float32(qn)
			if err != nil {
				return nil, err
			}
			vb, err := src.Float32(vn)
			if err != nil {
				return nil, err
			}
			out := make([]float32, 3*D)
			copy(out, qb)
			copy(out[2*D:], vb)
			return out, nil
		}}, nil
}

func weightTypeName(t gguf.Type) string {
	switch t {
	case gguf.TypeF32:
		return "f32"
	case gguf.TypeF16:
		return "f16"
	case gguf.TypeQ8_0:
		return "q8_0"
	case gguf.TypeBF16:
		return "bf16"
	}
	return t.String()
}

// findQFormerVocab looks for the Q-Former's WordPiece vocab of an
// InstructBLIP checkpoint: qformer_tokenizer/vocab.txt (one token per line,
// the id is the line number) or the "model.vocab" of
// qformer_tokenizer/tokenizer.json. It returns nil when there is none.
// lower is the tokenizer's do_lower_case (true when unsaid, as BERT's).
func findQFormerVocab(dir string) (vocab []string, lower bool, path string, err error) {
	tdir := filepath.Join(dir, "qformer_tokenizer")
	lower = true
	if tc, err := hfconfig.LoadTokenizerConfig(tdir); err == nil && tc.DoLowerCase != nil {
		lower = *tc.DoLowerCase
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, "", err
	}
	path = filepath.Join(tdir, "vocab.txt")
	vocab, err = hfconfig.LoadFile(path, nil, parseVocabTxt)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return vocab, lower, path, err
	}
	path = filepath.Join(tdir, "tokenizer.json")
	vocab, err = hfconfig.LoadFile(path, nil, parseTokenizerJSONVocab)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, lower, "", nil
	}
	return vocab, lower, path, err
}

// parseVocabTxt parses a BERT vocab.txt: one token per line, the id is the
// line number (a trailing newline ends the last line; "\r\n" is allowed).
func parseVocabTxt(data []byte) ([]string, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("vocab is not UTF-8")
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil, fmt.Errorf("empty vocab")
	}
	vocab := strings.Split(s, "\n")
	for i, t := range vocab {
		vocab[i] = strings.TrimSuffix(t, "\r")
	}
	return vocab, nil
}

// parseTokenizerJSONVocab reads a WordPiece tokenizer.json's model.vocab
// (token -> id) into an id-indexed list; ids must be dense.
func parseTokenizerJSONVocab(data []byte) ([]string, error) {
	var tj struct {
		Model struct {
			Type  string         `json:"type"`
			Vocab map[string]int `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, err
	}
	if tj.Model.Type != "" && tj.Model.Type != "WordPiece" {
		return nil, fmt.Errorf("model type %q is not WordPiece", tj.Model.Type)
	}
	vocab := make([]string, len(tj.Model.Vocab))
	seen := make([]bool, len(vocab))
	for tok, id := range tj.Model.Vocab {
		if id < 0 || id >= len(vocab) || seen[id] {
			return nil, fmt.Errorf("vocab ids are not 0..%d", len(vocab)-1)
		}
		vocab[id], seen[id] = tok, true
	}
	if len(vocab) == 0 {
		return nil, fmt.Errorf("empty vocab")
	}
	return vocab, nil
}
