package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// planVision validates the vision side of src against its config and plans
// vision.gguf with matrices of type wt.
func planVision(src *Source, wt gguf.Type) (*plan.File, error) {
	cfg := src.Config
	instruct := cfg.ModelType == "instructblip"
	if cfg.ModelType != "blip-2" && !instruct {
		return nil, fmt.Errorf("%s: model_type %q is not a BLIP-2 model (want \"blip-2\" or \"instructblip\")", src.Dir, cfg.ModelType)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("%s: config.json: %v", src.Dir, err)
	}
	pre, err := hfconfig.LoadPreprocessor(src.Dir)
	if err != nil {
		return nil, err
	}
	if err := checkPreprocessor(pre, cfg.Vision.ImageSize); err != nil {
		return nil, fmt.Errorf("%s: preprocessor_config.json: %v", src.Dir, err)
	}
	// The 2024 layout's processor puts num_query_tokens placeholders in
	// the prompt, which the model fills with as many image embeddings: the
	// two counts must agree, or transformers fails ("image features and
	// image tokens do not match"). Its processor_class is not checked:
	// InstructBLIP-Vicuna's names the video processor.
	proc, err := hfconfig.LoadProcessor(src.Dir)
	if err != nil {
		return nil, err
	}
	if n := proc.NumQueryTokens; n != 0 && n != cfg.NumQueryTokens {
		return nil, fmt.Errorf("%s: processor_config.json puts %d image placeholders in a prompt but config.json's num_query_tokens is %d", src.Dir, n, cfg.NumQueryTokens)
	}
	// Which checkpoint layout: transformers 5 saves the fused qkv bias.
	layout := "hub"
	if _, ok := src.Checkpoint.Tensor("vision_model.encoder.layers.0.self_attn.qkv.bias"); ok {
		layout = "transformers5"
	}
	f := &plan.File{Name: VisionFile}
	projSize, err := visionTensors(f, src, wt, layout)
	if err != nil {
		return nil, err
	}
	f.KV = visionKV(src, pre, wt, layout, projSize)
	if instruct {
		if err := addQFormerVocab(f, src); err != nil {
			return nil, err
		}
	}
	if isRetrieval(src) {
		if err := retrievalTensors(f, src); err != nil {
			return nil, err
		}
		if err := retrievalKV(f, src); err != nil {
			return nil, err
		}
	}
	// The metadata as engine/vision will read it, checked as it will be.
	md, err := gguf.ParseMetadata(f.KV)
	if err == nil {
		err = CheckVisionMetadata(md)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v", src.Dir, VisionFile, err)
	}
	return f, nil
}

// visionTensors plans the tensors of vision.gguf into f: the ViT, the
// Q-Former and the language projection, whose size it returns (0 when the
// checkpoint has none).
func visionTensors(f *plan.File, src *Source, wt gguf.Type, layout string) (projSize int, err error) {
	cfg := src.Config
	v, q := cfg.Vision, cfg.QFormer
	instruct := cfg.ModelType == "instructblip"
	channels := v.NumChannels
	if channels == 0 {
		channels = 3
	}
	D, Dff, H, Hff := v.HiddenSize, v.IntermediateSize, q.HiddenSize, q.IntermediateSize
	grid := v.ImageSize / v.PatchSize
	N := grid*grid + 1
	Q := cfg.NumQueryTokens

	var firstErr error
	add := func(t plan.Tensor, err error) {
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		f.Tensors = append(f.Tensors, t)
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
	add(src.Copy(TensorPatchEmbd+".weight", MatrixType(wt, patch), patch, "vision_model.embeddings.patch_embedding.weight", D, channels, P, P))
	vec(TensorPatchEmbd+".bias", "vision_model.embeddings.patch_embedding.bias", D)
	add(src.Copy(TensorClassEmbd, gguf.TypeF32, []int{D}, "vision_model.embeddings.class_embedding", 1, 1, D))
	add(src.Copy(TensorPosEmbd, gguf.TypeF32, []int{N, D}, "vision_model.embeddings.position_embedding", 1, N, D))
	for i := 0; i < v.NumHiddenLayers; i++ {
		from := fmt.Sprintf("vision_model.encoder.layers.%d.", i)
		to := ViTBlock(i)
		norm(to.LN1, from+"layer_norm1", D)
		mat(to.QKV+".weight", from+"self_attn.qkv.weight", 3*D, D)
		if v.QKVBias {
			if layout == "transformers5" {
				vec(to.QKV+".bias", from+"self_attn.qkv.bias", 3*D)
			} else {
				add(qkvBias(src, to.QKV+".bias", from+"self_attn.", D))
			}
		}
		linear(to.AttnOut, from+"self_attn.projection", D, D)
		norm(to.LN2, from+"layer_norm2", D)
		linear(to.FFNUp, from+"mlp.fc1", Dff, D)
		linear(to.FFNDown, from+"mlp.fc2", D, Dff)
	}
	norm(TensorPostLN, "vision_model.post_layernorm", D)

	// Q-Former.
	add(src.Copy(TensorQueryTokens, gguf.TypeF32, []int{Q, H}, "query_tokens", 1, Q, H))
	if instruct {
		norm(TensorQEmbdLN, "qformer.embeddings.layernorm", H)
		add(src.Copy(TensorQWordEmbd, gguf.TypeF32, []int{q.VocabSize, H}, "qformer.embeddings.word_embeddings.weight", q.VocabSize, H))
		add(src.Copy(TensorQPosEmbd, gguf.TypeF32, []int{q.MaxPositionEmbeddings, H}, "qformer.embeddings.position_embeddings.weight", q.MaxPositionEmbeddings, H))
	} else {
		norm(TensorQEmbdLN, "qformer.layernorm", H)
	}
	for i := 0; i < q.NumHiddenLayers; i++ {
		from := fmt.Sprintf("qformer.encoder.layer.%d.", i)
		to := QFormerBlock(i)
		linear(to.AttnQ, from+"attention.attention.query", H, H)
		linear(to.AttnK, from+"attention.attention.key", H, H)
		linear(to.AttnV, from+"attention.attention.value", H, H)
		linear(to.AttnOut, from+"attention.output.dense", H, H)
		norm(to.AttnLN, from+"attention.output.LayerNorm", H)
		if i%q.CrossAttentionFrequency == 0 {
			E := q.EncoderHiddenSize
			linear(to.CrossQ, from+"crossattention.attention.query", H, H)
			linear(to.CrossK, from+"crossattention.attention.key", H, E)
			linear(to.CrossV, from+"crossattention.attention.value", H, E)
			linear(to.CrossOut, from+"crossattention.output.dense", H, H)
			norm(to.CrossLN, from+"crossattention.output.LayerNorm", H)
		}
		linear(to.FFNUpQuery, from+"intermediate_query.dense", Hff, H)
		linear(to.FFNDownQuery, from+"output_query.dense", H, Hff)
		norm(to.FFNLNQuery, from+"output_query.LayerNorm", H)
		if instruct || isRetrieval(src) { // the text rows' own feed-forward
			linear(to.FFNUp, from+"intermediate.dense", Hff, H)
			linear(to.FFNDown, from+"output.dense", H, Hff)
			norm(to.FFNLN, from+"output.LayerNorm", H)
		}
	}

	// Language projection: absent only from retrieval checkpoints.
	_, hasProj := src.Checkpoint.Tensor("language_projection.weight")
	if hasProj || !strings.Contains(src.Architecture, "ImageTextRetrieval") {
		projSize = cfg.Text.HiddenSize // d_model for T5
		if projSize <= 0 {
			return 0, fmt.Errorf("%s: config.json: text_config has no hidden size for the language projection", src.Dir)
		}
		linear(TensorProjection, "language_projection", projSize, H)
	}
	return projSize, firstErr
}

// visionKV is vision.gguf's metadata: what the model is, its sizes and how
// its images are prepared.
func visionKV(src *Source, pre *hfconfig.Preprocessor, wt gguf.Type, layout string, projSize int) []gguf.KV {
	cfg := src.Config
	v, q := cfg.Vision, cfg.QFormer
	instruct := cfg.ModelType == "instructblip"
	prompt := PromptFormatBLIP2
	if instruct {
		prompt = PromptFormatInstructBLIP
	}
	llm := ""
	if src.HasLanguageModel() {
		llm = cfg.Text.ModelType
	}
	channels := v.NumChannels
	if channels == 0 {
		channels = 3
	}
	u := func(n int) uint32 { return uint32(n) }
	return []gguf.KV{
		{Key: gguf.KeyArchitecture, Value: VisionArch},
		{Key: gguf.KeyName, Value: filepath.Base(filepath.Clean(src.Dir))},
		{Key: KeyFamily, Value: cfg.ModelType},
		{Key: KeyArchitecture, Value: src.Architecture},
		{Key: KeyLLMFamily, Value: llm},
		{Key: KeyPromptFormat, Value: prompt},
		{Key: KeyCheckpointLayout, Value: layout},
		{Key: KeyWeightType, Value: weightTypeName(wt)},
		{Key: KeyNumQueryTokens, Value: u(cfg.NumQueryTokens)},
		{Key: KeyImageTokenIndex, Value: int32(cfg.ImageTokenIndex)},
		{Key: KeyVideoTokenIndex, Value: int32(cfg.VideoTokenIndex)},
		{Key: KeyVisionHiddenSize, Value: u(v.HiddenSize)},
		{Key: KeyVisionIntermediateSize, Value: u(v.IntermediateSize)},
		{Key: KeyVisionBlockCount, Value: u(v.NumHiddenLayers)},
		{Key: KeyVisionHeadCount, Value: u(v.NumAttentionHeads)},
		{Key: KeyVisionImageSize, Value: u(v.ImageSize)},
		{Key: KeyVisionPatchSize, Value: u(v.PatchSize)},
		{Key: KeyVisionNumChannels, Value: u(channels)},
		{Key: KeyVisionLayerNormEps, Value: float32(v.LayerNormEps)},
		{Key: KeyQFormerHiddenSize, Value: u(q.HiddenSize)},
		{Key: KeyQFormerIntermediateSize, Value: u(q.IntermediateSize)},
		{Key: KeyQFormerBlockCount, Value: u(q.NumHiddenLayers)},
		{Key: KeyQFormerHeadCount, Value: u(q.NumAttentionHeads)},
		{Key: KeyQFormerCrossAttentionFreq, Value: u(q.CrossAttentionFrequency)},
		{Key: KeyQFormerEncoderHiddenSize, Value: u(q.EncoderHiddenSize)},
		{Key: KeyQFormerMaxPositions, Value: u(q.MaxPositionEmbeddings)},
		{Key: KeyQFormerVocabSize, Value: u(q.VocabSize)},
		{Key: KeyQFormerLayerNormEps, Value: float32(q.LayerNormEps)},
		{Key: KeyQFormerTextInput, Value: instruct || isRetrieval(src)},
		{Key: KeyProjectionSize, Value: u(projSize)},
		{Key: KeyImageWidth, Value: u(pre.Width)},
		{Key: KeyImageHeight, Value: u(pre.Height)},
		{Key: KeyImageResample, Value: u(pre.Resample)},
		{Key: KeyImageMean, Value: pre.Mean[:]},
		{Key: KeyImageStd, Value: pre.Std[:]},
		{Key: KeyImageRescaleFactor, Value: pre.RescaleFactor},
		{Key: KeyImageDoResize, Value: pre.DoResize},
		{Key: KeyImageDoRescale, Value: pre.DoRescale},
		{Key: KeyImageDoNormalize, Value: pre.DoNormalize},
		{Key: KeyImageDoConvertRGB, Value: pre.DoConvertRGB},
	}
}

// addQFormerVocab adds an InstructBLIP checkpoint's Q-Former WordPiece
// tokenizer to f's metadata, or a warning when it has none: the
// vocabulary, lower-casing, and how an instruction too long for it is cut
// (QFormerMaxLength tokens from the left, as LAVIS does).
func addQFormerVocab(f *plan.File, src *Source) error {
	tok, err := findQFormerVocab(src.Dir)
	switch {
	case err != nil:
		return err
	case tok.vocab == nil:
		f.Warnings = append(f.Warnings, fmt.Sprintf("no Q-Former WordPiece vocab in %s (qformer_tokenizer/vocab.txt); instructions will have to be given as token ids", src.Dir))
	case len(tok.vocab) > src.Config.QFormer.VocabSize:
		return fmt.Errorf("%s: %d tokens, more than the Q-Former's vocab_size %d", tok.path, len(tok.vocab), src.Config.QFormer.VocabSize)
	default:
		f.KV = append(f.KV, gguf.KV{Key: KeyQFormerVocab, Value: tok.vocab}, gguf.KV{Key: KeyQFormerLowerCase, Value: tok.lower},
			gguf.KV{Key: KeyQFormerMaxLength, Value: uint32(min(QFormerMaxLength, src.Config.QFormer.MaxPositionEmbeddings))},
			gguf.KV{Key: KeyQFormerTruncationSide, Value: tok.truncation})
	}
	return nil
}

// QFormerMaxLength is how many WordPiece tokens of an instruction, [CLS]
// and [SEP] included, InstructBLIP's Q-Former reads: LAVIS's max_txt_len,
// with which it was trained and evaluated (the Hugging Face processor does
// not truncate unless asked).
const QFormerMaxLength = 128

// checkPreprocessor refuses image settings the engine would not follow:
// it resizes to the model's image size with bicubic resampling and
// converts to RGB, always (BlipImageProcessor's defaults, which every
// BLIP-2 checkpoint keeps).
func checkPreprocessor(pre *hfconfig.Preprocessor, imageSize int) error {
	if pre.Height != imageSize || pre.Width != imageSize {
		return fmt.Errorf("resizes to %dx%d but the vision model takes %dx%d images", pre.Width, pre.Height, imageSize, imageSize)
	}
	if pre.Resample != ResampleBicubic {
		return fmt.Errorf("resample %d is not supported: blip2chat resizes images with bicubic resampling (%d), as BLIP-2's processor does", pre.Resample, ResampleBicubic)
	}
	if !pre.DoResize {
		return fmt.Errorf("do_resize false is not supported: blip2chat always resizes images to the model's %dx%d", imageSize, imageSize)
	}
	if !pre.DoConvertRGB {
		return fmt.Errorf("do_convert_rgb false is not supported: blip2chat always converts images to RGB")
	}
	return nil
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
func qkvBias(src *Source, name, prefix string, D int) (plan.Tensor, error) {
	qn, vn := prefix+"q_bias", prefix+"v_bias"
	if _, err := src.Expect(qn, D); err != nil {
		return plan.Tensor{}, err
	}
	if _, err := src.Expect(vn, D); err != nil {
		return plan.Tensor{}, err
	}
	return plan.Tensor{Name: name, Type: gguf.TypeF32, Shape: []int{3 * D}, Sources: []string{qn, vn},
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

// qformerTokenizer is an InstructBLIP checkpoint's Q-Former tokenizer
// (qformer_tokenizer/): its vocabulary, nil when there is none, with the
// added tokens that follow it ([DEC] = 30522), read from path.
type qformerTokenizer struct {
	vocab      []string
	lower      bool   // do_lower_case, true when unsaid (BERT's)
	truncation string // truncation_side, "left" when unsaid (LAVIS's, and the conversion script's)
	path       string
}

// findQFormerVocab looks for the Q-Former's WordPiece vocab of an
// InstructBLIP checkpoint: qformer_tokenizer/vocab.txt (one token per line,
// the id is the line number) or the "model.vocab" of
// qformer_tokenizer/tokenizer.json, then the added tokens that continue
// its ids (added_tokens.json, tokenizer.json's). It refuses a vocab without
// BERT's [CLS], [SEP] and [UNK].
func findQFormerVocab(dir string) (qformerTokenizer, error) {
	tdir := filepath.Join(dir, "qformer_tokenizer")
	q := qformerTokenizer{lower: true, truncation: "left"}
	tc, err := hfconfig.LoadTokenizerConfig(tdir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return q, err
	}
	if err == nil {
		if tc.DoLowerCase != nil {
			q.lower = *tc.DoLowerCase
		}
		if tc.TruncationSide != "" {
			q.truncation = tc.TruncationSide
		}
	}
	var added []hftok.AddedToken
	tj, err := hftok.LoadTokenizerJSON(filepath.Join(tdir, "tokenizer.json"))
	if err == nil {
		added = tj.AddedTokens
	} else if !errors.Is(err, fs.ErrNotExist) {
		return q, err
	}
	more, err := hftok.LoadAddedTokensJSON(filepath.Join(tdir, "added_tokens.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return q, err
	}
	added = append(added, more...)

	q.path = filepath.Join(tdir, "vocab.txt")
	q.vocab, err = hftok.LoadVocabTxt(q.path)
	if errors.Is(err, fs.ErrNotExist) {
		if tj == nil {
			return qformerTokenizer{}, nil
		}
		q.path = filepath.Join(tdir, "tokenizer.json")
		if q.vocab, err = tj.WordPieceVocab(); err != nil {
			err = fmt.Errorf("%s: %v", q.path, err)
		}
	}
	if err != nil {
		return q, err
	}
	// Added tokens whose ids continue the vocabulary, in order.
	for extended := true; extended; {
		extended = false
		for _, a := range added {
			if a.ID == len(q.vocab) {
				q.vocab = append(q.vocab, a.Content)
				extended = true
			}
		}
	}
	return q, nil
}
