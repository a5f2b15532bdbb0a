package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/hfconfig"
	"github.com/blip2chat/blip2chat/weights/hftok"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// Image–text retrieval checkpoints (Salesforce/blip2-itm-vit-g and its COCO
// variant, transformers' Blip2ForImageTextRetrieval) have no language
// model: the ViT and the Q-Former as in BLIP-2, plus the Q-Former's text
// side (BERT word and position embeddings, the text feed-forward of every
// layer), the contrastive projections and the matching head. Their
// vision.gguf holds, beyond the common tensors (text_input is true, the
// word and position embeddings are q.word_embd and q.pos_embd):
//
//	blip2.retrieval.embed_size          u32  image_text_hidden_size (E)
//	blip2.qformer.tokenizer.max_length  u32  longest text in tokens, [CLS] and [SEP] included
//	itc.vision_proj.{weight [E, H], bias [E]}   vision_projection
//	itc.text_proj.{weight [E, H], bias [E]}     text_projection
//	itm.head.{weight [2, H], bias [2]}          itm_head (no match, match)
//	itc.temp [1]                                the contrastive temperature, when the checkpoint stores one
//
// The heads stay F32 whatever the weight type: they are small and their
// outputs are what the user reads.

// RetrievalArch is the transformers class of the retrieval checkpoints.
const RetrievalArch = "Blip2ForImageTextRetrieval"

// Metadata keys and tensor names of a retrieval model's vision.gguf.
const (
	KeyRetrievalEmbedSize = "blip2.retrieval.embed_size"

	TensorITCVisionProj = "itc.vision_proj"
	TensorITCTextProj   = "itc.text_proj"
	TensorITMHead       = "itm.head"
	TensorITCTemp       = "itc.temp"
)

// isRetrieval reports whether src is an image–text retrieval checkpoint:
// by its architecture, or by its matching head when config.json names
// none.
func isRetrieval(src *Source) bool {
	if src.Architecture != "" {
		return src.Architecture == RetrievalArch
	}
	_, ok := src.Checkpoint.Tensor("itm_head.weight")
	return ok
}

// retrievalTensors plans a retrieval checkpoint's own tensors into f: the
// text embeddings (the Q-Former's layer norm is planned with the common
// tensors) and the heads.
func retrievalTensors(f *plan.File, src *Source) error {
	q := src.Config.QFormer
	H, E := q.HiddenSize, src.Config.ImageTextHiddenSize
	if E <= 0 {
		return fmt.Errorf("%s: config.json: image_text_hidden_size must be positive for %s", src.Dir, RetrievalArch)
	}
	var ts []plan.Tensor
	var firstErr error
	add := func(t plan.Tensor, err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
		ts = append(ts, t)
	}
	linear := func(name, from string, out, in int) {
		add(src.Copy(name+".weight", gguf.TypeF32, []int{out, in}, from+".weight", out, in))
		add(src.Copy(name+".bias", gguf.TypeF32, []int{out}, from+".bias", out))
	}
	add(src.Copy(TensorQWordEmbd, gguf.TypeF32, []int{q.VocabSize, H}, "embeddings.word_embeddings.weight", q.VocabSize, H))
	add(src.Copy(TensorQPosEmbd, gguf.TypeF32, []int{q.MaxPositionEmbeddings, H}, "embeddings.position_embeddings.weight", q.MaxPositionEmbeddings, H))
	linear(TensorITCVisionProj, "vision_projection", E, H)
	linear(TensorITCTextProj, "text_projection", E, H)
	linear(TensorITMHead, "itm_head", 2, H)
	// LAVIS keeps the learned temperature as "temp" (a scalar); the
	// transformers class has none, and its hub checkpoints store none.
	if t, ok := src.Checkpoint.Tensor("temp"); ok {
		add(src.Copy(TensorITCTemp, gguf.TypeF32, []int{1}, "temp", t.Shape...))
	}
	if firstErr != nil {
		return firstErr
	}
	f.Tensors = append(f.Tensors, ts...)
	return nil
}

// retrievalKV adds a retrieval model's metadata to f: the embedding size,
// the WordPiece vocabulary (required: text is all a retrieval model
// reads) and how long a text may be.
func retrievalKV(f *plan.File, src *Source) error {
	q := src.Config.QFormer
	vocab, lower, maxLen, path, err := findTextVocab(src.Dir)
	switch {
	case err != nil:
		return err
	case vocab == nil:
		return fmt.Errorf("%s: no WordPiece vocabulary (vocab.txt or tokenizer.json): a retrieval model reads text, download the checkpoint with its tokenizer files", src.Dir)
	case len(vocab) > q.VocabSize:
		return fmt.Errorf("%s: %d tokens, more than the Q-Former's vocab_size %d", path, len(vocab), q.VocabSize)
	}
	// Texts longer than the tokenizer's model_max_length are cut to it
	// (truncation keeps [CLS] ... [SEP]); the position embeddings bound it
	// in any case.
	if maxLen <= 0 || maxLen > q.MaxPositionEmbeddings {
		maxLen = q.MaxPositionEmbeddings
	}
	if maxLen < 2 {
		return fmt.Errorf("%s: texts of at most %d tokens leave no room for [CLS] and [SEP]", src.Dir, maxLen)
	}
	f.KV = append(f.KV,
		gguf.KV{Key: KeyRetrievalEmbedSize, Value: uint32(src.Config.ImageTextHiddenSize)},
		gguf.KV{Key: KeyQFormerVocab, Value: vocab},
		gguf.KV{Key: KeyQFormerLowerCase, Value: lower},
		gguf.KV{Key: KeyQFormerMaxLength, Value: uint32(maxLen)})
	return nil
}

// findTextVocab looks for a retrieval checkpoint's WordPiece vocabulary in
// its folder (the tokenizer is the checkpoint's own, bert-base-uncased
// for the Salesforce ones): vocab.txt, else tokenizer.json's. lower is
// tokenizer_config.json's do_lower_case (true when unsaid, as BERT's),
// maxLen its model_max_length (0 when unsaid). It returns a nil vocab when
// there is none.
func findTextVocab(dir string) (vocab []string, lower bool, maxLen int, path string, err error) {
	lower = true
	tc, err := hfconfig.LoadTokenizerConfig(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, 0, "", err
	}
	if tc != nil {
		if tc.DoLowerCase != nil {
			lower = *tc.DoLowerCase
		}
		maxLen = tc.ModelMaxLength
	}
	path = filepath.Join(dir, "vocab.txt")
	vocab, err = hftok.LoadVocabTxt(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return vocab, lower, maxLen, path, err
	}
	path = filepath.Join(dir, "tokenizer.json")
	tj, err := hftok.LoadTokenizerJSON(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, lower, maxLen, "", nil
	}
	if err == nil {
		if vocab, err = tj.WordPieceVocab(); err != nil {
			err = fmt.Errorf("%s: %v", path, err)
		}
	}
	return vocab, lower, maxLen, path, err
}
