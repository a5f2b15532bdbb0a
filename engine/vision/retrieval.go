package vision

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/convert"
)

// The text side of an image–text retrieval model (transformers'
// Blip2ForImageTextRetrieval, e.g. Salesforce/blip2-itm-vit-g): the
// Q-Former, trained with two more objectives than generation, also reads
// text, in two ways.
//
// Image–text contrastive (ITC): the image's Q query outputs (QFormer
// without text) and the text alone are projected to E-wide unit vectors;
// the similarity is the largest cosine between the text's vector and any
// query's:
//
//	image  normalize(vision_projection(QFormer(image)))        Q x E
//	text   x = ln(word + position embeddings 0..L-1)            L rows, no queries
//	       layers: bidirectional self-attention over the L rows, no
//	       cross-attention, the text feed-forward on every row
//	       normalize(text_projection(x[0]))                    the [CLS] row
//	ITC  = max over q of image[q] · text                       (no temperature: logits_per_image)
//
// Image–text matching (ITM): the queries and the text together (the
// InstructBLIP input: Q queries then L text rows, one layer norm,
// positions 0..L-1 for the text), bidirectional self-attention over all
// Q+L rows, cross-attention to the image for the query rows only, each
// kind of row its own feed-forward; itm_head on each query output,
// averaged over the queries: two logits (no match, match).
//
// A text is one sequence without padding, so transformers' all-ones
// attention masks are no mask here.

// RetrievalInfo describes a retrieval model's heads.
type RetrievalInfo struct {
	// EmbedSize is E, the width of the contrastive embeddings; 0 when the
	// model is not a retrieval model.
	EmbedSize int
	// Temperature is the contrastive temperature the checkpoint stores
	// (LAVIS's learned "temp"); 0 when it stores none, as the
	// transformers checkpoints.
	Temperature float32
	// MaxTextTokens is the longest text in tokens, [CLS] and [SEP]
	// included; longer texts are cut (TokenizeText).
	MaxTextTokens int
}

// IsRetrieval reports whether the model has the image–text matching and
// contrastive heads.
func (i *Info) IsRetrieval() bool { return i.Retrieval.EmbedSize > 0 }

// ErrNoRetrievalHeads is returned by the retrieval methods of a model
// without the heads: BLIP-2's and InstructBLIP's generation checkpoints
// have neither itm_head nor text_projection.
var ErrNoRetrievalHeads = errors.New("this model has no image-text matching heads (itm_head, text_projection; BLIP-2 generation checkpoints lack them): use a retrieval checkpoint such as Salesforce/blip2-itm-vit-g")

// retrievalHeads are the weights of the retrieval objectives.
type retrievalHeads struct {
	visionProj, textProj linear // [E, H]
	itm                  linear // [2, H]
}

// loadRetrieval reads the heads when the file has them.
func (m *Model) loadRetrieval(l loader) {
	f := l.File()
	e, ok := f.Uint32(convert.KeyRetrievalEmbedSize)
	if !ok {
		return
	}
	in := &m.info
	q := &in.QFormer
	E, H := int(e), q.HiddenSize
	if E <= 0 || !q.TextInput || m.wp == nil {
		l.Failf("retrieval model without embedding size, text input or vocabulary")
		return
	}
	n := l.Positive(convert.KeyQFormerMaxLength)
	if n < 2 || n > q.MaxPositions {
		l.Failf("text length %d outside 2..%d", n, q.MaxPositions)
		return
	}
	in.Retrieval = RetrievalInfo{EmbedSize: E, MaxTextTokens: n}
	if _, _, ok := f.Tensor(convert.TensorITCTemp); ok {
		t := l.F32Tensor(convert.TensorITCTemp, 1)
		if len(t) == 1 {
			if !(t[0] > 0) || math.IsInf(float64(t[0]), 0) {
				l.Failf("%s is %g, not a positive temperature", convert.TensorITCTemp, t[0])
				return
			}
			in.Retrieval.Temperature = t[0]
		}
	}
	m.ret = &retrievalHeads{
		visionProj: l.linear(convert.TensorITCVisionProj, E, H),
		textProj:   l.linear(convert.TensorITCTextProj, E, H),
		itm:        l.linear(convert.TensorITMHead, 2, H),
	}
}

// TokenizeText turns a text into the retrieval model's WordPiece ids,
// [CLS] ... [SEP], cut to Info().Retrieval.MaxTextTokens as the tokenizer
// truncates (the end of the text goes, [SEP] stays).
func (m *Model) TokenizeText(text string) ([]int, error) {
	if m.ret == nil {
		return nil, ErrNoRetrievalHeads
	}
	return m.truncate(m.wp.Encode(text)), nil
}

// ImageEmbeddings are an image's contrastive embeddings: the Q-Former's
// query outputs for its features, projected and normalized, Q x E
// row-major (a new slice). It stops when ctx is done, as QFormer does.
func (m *Model) ImageEmbeddings(ctx context.Context, feat *ImageFeatures) ([]float32, error) {
	if m.ret == nil {
		return nil, ErrNoRetrievalHeads
	}
	q, err := m.QFormer(ctx, feat, nil)
	if err != nil {
		return nil, err
	}
	Q, E := m.info.NumQueryTokens, m.info.Retrieval.EmbedSize
	out := make([]float32, Q*E)
	m.mu.Lock()
	m.ret.visionProj.forward(m.pool, out, q, Q)
	m.mu.Unlock()
	for i := 0; i < Q; i++ {
		normalize(out[i*E : (i+1)*E])
	}
	return out, nil
}

// TextEmbedding is a text's contrastive embedding from its ids
// (TokenizeText): the Q-Former over the text alone, the [CLS] row
// projected and normalized, E floats (a new slice).
func (m *Model) TextEmbedding(ctx context.Context, ids []int) ([]float32, error) {
	if m.ret == nil {
		return nil, ErrNoRetrievalHeads
	}
	if err := m.checkText(ids); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	q := &m.info.QFormer
	L, H := len(ids), q.HiddenSize
	x := m.buf.qx.RowRange(0, L)
	for j, id := range ids {
		kernels.Add(x[j*H:(j+1)*H], m.wordEmb[id*H:(id+1)*H], m.posText[j*H:(j+1)*H])
	}
	m.pool.LayerNorm(x, x, L, H, m.embLN.w, m.embLN.b, q.LayerNormEps)
	for i := range m.qf {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.qformerLayer(&m.qf[i], nil, 0, L, nil)
	}
	out := make([]float32, m.info.Retrieval.EmbedSize)
	m.ret.textProj.forward(m.pool, out, x[:H], 1)
	normalize(out)
	m.timings.QFormer = time.Since(start)
	return out, nil
}

// ITMLogits are the matching head's two logits (no match, match) for an
// image's features and a text's ids: the Q-Former over the queries and
// the text together, itm_head averaged over the query outputs.
func (m *Model) ITMLogits(ctx context.Context, feat *ImageFeatures, ids []int) ([2]float32, error) {
	out, _, err := m.itm(ctx, feat, ids, false)
	return out, err
}

// ITMAttention is ITMLogits that also returns where the queries looked in
// the image while matching the text: the ITM pass's cross-attention.
func (m *Model) ITMAttention(ctx context.Context, feat *ImageFeatures, ids []int) ([2]float32, *CrossAttention, error) {
	return m.itm(ctx, feat, ids, true)
}

func (m *Model) itm(ctx context.Context, feat *ImageFeatures, ids []int, attention bool) ([2]float32, *CrossAttention, error) {
	var out [2]float32
	if m.ret == nil {
		return out, nil, ErrNoRetrievalHeads
	}
	if err := m.checkText(ids); err != nil {
		return out, nil, err
	}
	var q []float32
	var att *CrossAttention
	var err error
	if attention {
		q, att, err = m.QFormerAttention(ctx, feat, ids)
	} else {
		q, err = m.QFormer(ctx, feat, ids)
	}
	if err != nil {
		return out, nil, err
	}
	Q := m.info.NumQueryTokens
	logits := make([]float32, 2*Q)
	m.mu.Lock()
	m.ret.itm.forward(m.pool, logits, q, Q)
	m.mu.Unlock()
	// The mean in float64, then rounded: as close to torch's as any
	// summation order.
	var s0, s1 float64
	for i := 0; i < Q; i++ {
		s0 += float64(logits[2*i])
		s1 += float64(logits[2*i+1])
	}
	out[0], out[1] = float32(s0/float64(Q)), float32(s1/float64(Q))
	return out, att, nil
}

// checkText refuses ids the text side cannot read.
func (m *Model) checkText(ids []int) error {
	q := &m.info.QFormer
	switch {
	case len(ids) == 0:
		return fmt.Errorf("vision: no text tokens")
	case len(ids) > m.info.Retrieval.MaxTextTokens:
		return fmt.Errorf("vision: text is %d tokens, the model reads at most %d", len(ids), m.info.Retrieval.MaxTextTokens)
	}
	for _, id := range ids {
		if id < 0 || id >= q.VocabSize {
			return fmt.Errorf("vision: token id %d is outside the Q-Former vocabulary (0..%d)", id, q.VocabSize-1)
		}
	}
	return nil
}

// ITCScore is the contrastive similarity of an image's embeddings (Q x E,
// from ImageEmbeddings) and a text's (E, from TextEmbedding): the largest
// cosine over the queries.
func ITCScore(image, text []float32) float32 {
	E := len(text)
	best := float32(math.Inf(-1))
	for i := 0; i+E <= len(image); i += E {
		var d float32
		for j, t := range text {
			d += image[i+j] * t
		}
		best = max(best, d)
	}
	return best
}

// ITMProbability is P(match), the softmax of the matching logits' second.
func ITMProbability(logits [2]float32) float64 {
	return 1 / (1 + math.Exp(float64(logits[0])-float64(logits[1])))
}

// normalize scales v to unit length, as torch's F.normalize (the norm
// floored at 1e-12).
func normalize(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := max(math.Sqrt(s), 1e-12)
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
}

// RetrievalDigest identifies a retrieval model's checkpoint: a hash of
// its heads (stored F32 whatever the weight type, so that every
// conversion of one checkpoint has the same digest). An index of image
// embeddings records it, to refuse mixing models. "" when the model has
// no heads.
func (m *Model) RetrievalDigest() string {
	if m.ret == nil {
		return ""
	}
	h := sha256.New()
	var b []byte
	for _, l := range []*linear{&m.ret.visionProj, &m.ret.textProj, &m.ret.itm} {
		for _, v := range [][]float32{l.w.F32, l.b} {
			b = b[:0]
			for _, x := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
