package vision

import (
	"context"
	"fmt"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// QFormer runs the Q-Former over the image features and returns the Q
// query outputs, Q x H row-major (a new slice).
//
// The input rows are the Q learned query tokens, followed for InstructBLIP
// by the instruction's tokens (word + position embeddings; ids from
// Tokenize); one layer norm covers them all. Each BERT-style post-LN layer
// then does
//
//	x = ln(x + out(selfattention(x)))                 all rows see all rows
//	q = ln(q + out(crossattention(q, image)))         query rows, layers i % freq == 0
//	q = ln(q + down(gelu(up_query(q))))               query rows
//	t = ln(t + down(gelu(up(t))))                     instruction rows
//
// and only the query rows are returned (transformers' Blip2QFormerModel and
// InstructBlipQFormerModel with an all-ones attention mask).
//
// It stops when ctx is done, checking it before the embeddings and between
// layers, and returns ctx's error as is. A stopped run leaves nothing
// behind for the next one.
func (m *Model) QFormer(ctx context.Context, feat *ImageFeatures, instructionIDs []int) ([]float32, error) {
	return m.qformer(ctx, feat, instructionIDs, nil)
}

// CrossAttention is where the Q-Former's queries looked in the image: the
// softmax probabilities of every cross-attention layer, Layers x Heads x
// Queries x Tokens (vision tokens: the class token, then the patches row
// by row), as transformers returns them with output_attentions=True
// (query rows only).
type CrossAttention struct {
	Layers, Heads, Queries, Tokens int
	Probs                          []float32
}

// crossLayers is how many of the Q-Former's layers cross-attend.
func (m *Model) crossLayers() int {
	n := 0
	for i := range m.qf {
		if m.qf[i].hasCross {
			n++
		}
	}
	return n
}

// QFormerAttention is QFormer that also returns the cross-attention
// probabilities.
func (m *Model) QFormerAttention(ctx context.Context, feat *ImageFeatures, instructionIDs []int) ([]float32, *CrossAttention, error) {
	att := &CrossAttention{Layers: m.crossLayers(), Heads: m.info.QFormer.Heads, Queries: m.info.NumQueryTokens, Tokens: m.info.Vision.Tokens}
	att.Probs = make([]float32, att.Layers*att.Heads*att.Queries*att.Tokens)
	out, err := m.qformer(ctx, feat, instructionIDs, att)
	if err != nil {
		return nil, nil, err
	}
	return out, att, nil
}

// qformer is QFormer, writing the cross-attention probabilities into att
// when it is set.
func (m *Model) qformer(ctx context.Context, feat *ImageFeatures, instructionIDs []int, att *CrossAttention) (_ []float32, err error) {
	q := &m.info.QFormer
	if feat == nil || feat.Tokens != m.info.Vision.Tokens || feat.Dim != q.EncoderHiddenSize || len(feat.Data) != feat.Tokens*feat.Dim {
		return nil, fmt.Errorf("vision: image features do not come from this model's ViT")
	}
	if len(instructionIDs) > 0 && !q.TextInput {
		return nil, fmt.Errorf("vision: this %s model's Q-Former takes no instruction", m.info.Family)
	}
	if len(instructionIDs) > m.buf.maxTextTokens && q.TextInput {
		return nil, fmt.Errorf("vision: instruction is %d tokens, the Q-Former takes at most %d", len(instructionIDs), m.buf.maxTextTokens)
	}
	for _, id := range instructionIDs {
		if id < 0 || id >= q.VocabSize {
			return nil, fmt.Errorf("vision: instruction token id %d is outside the Q-Former vocabulary (0..%d)", id, q.VocabSize-1)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.file.Unchanged(); err != nil {
		return nil, err
	}
	defer m.file.Guard(&err, gguf.PanicOnFault())
	start := time.Now()

	Q, H := m.info.NumQueryTokens, q.HiddenSize
	T := Q + len(instructionIDs)
	b := &m.buf
	x := b.qx.RowRange(0, T)

	// Embeddings: queries, then instruction words + positions 0.., then
	// one layer norm over all rows.
	copy(x, m.query[:Q*H])
	for j, id := range instructionIDs {
		row := x[(Q+j)*H : (Q+j+1)*H]
		kernels.Add(row, m.wordEmb[id*H:(id+1)*H], m.posText[j*H:(j+1)*H])
	}
	m.pool.LayerNorm(x, x, T, H, m.embLN.w, m.embLN.b, q.LayerNormEps)

	cross := 0
	for i := range m.qf {
		m.emitLayer("qformer_hidden_states", i, T, H, x)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var probs []float32
		if att != nil && m.qf[i].hasCross {
			n := att.Heads * att.Queries * att.Tokens
			probs = att.Probs[cross*n : (cross+1)*n]
			cross++
		}
		m.qformerLayer(&m.qf[i], feat, Q, T, probs)
	}
	m.emitLayer("qformer_hidden_states", len(m.qf), T, H, x)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	out := make([]float32, Q*H)
	copy(out, x[:Q*H])
	m.emit("qformer_last_hidden_state", Q, H, out)
	m.timings.QFormer = time.Since(start)
	return out, nil
}

// qformerLayer runs one layer on the T rows of b.qx in place, of which the
// first Q are query rows (cross-attending to feat, with their own
// feed-forward) and the rest text rows. Q is 0 for the text alone (the
// retrieval model's text encoder): then feat is not read. probs, if set,
// receives the cross-attention probabilities (heads x Q x vision tokens).
func (m *Model) qformerLayer(L *qformerLayer, feat *ImageFeatures, Q, T int, probs []float32) {
	q := &m.info.QFormer
	H, eps := q.HiddenSize, q.LayerNormEps
	hd := H / q.Heads
	b := &m.buf
	x := b.qx.RowRange(0, T)  // layer input, then output
	a := b.qx2.RowRange(0, T) // attention output
	h := b.qh.RowRange(0, T)  // scratch
	ctx := b.qctx.RowRange(0, T)

	// Self-attention over all rows (no mask: InstructBLIP's mask is all
	// ones), then dense + residual + layer norm.
	qq, qk, qv := b.qq.RowRange(0, T), b.qk.RowRange(0, T), b.qv.RowRange(0, T)
	L.q.forward(m.pool, qq, x, T)
	L.k.forward(m.pool, qk, x, T)
	L.v.forward(m.pool, qv, x, T)
	m.attention(qq, qk, qv, H, H, ctx, H, T, T, q.Heads, hd)
	L.out.forward(m.pool, h, ctx, T)
	kernels.Add(h, h, x)
	m.pool.LayerNorm(a, h, T, H, L.attnLN.w, L.attnLN.b, eps)

	aq := a[:Q*H] // the query rows
	if L.hasCross && Q > 0 {
		N := feat.Tokens
		ck, cv := b.ck.F32(), b.cv.F32()
		L.crossQ.forward(m.pool, qq[:Q*H], aq, Q)
		L.crossK.forward(m.pool, ck, feat.Data, N)
		L.crossV.forward(m.pool, cv, feat.Data, N)
		m.attentionProbs(qq, ck, cv, H, H, ctx, H, Q, N, q.Heads, hd, probs)
		L.crossOut.forward(m.pool, h[:Q*H], ctx[:Q*H], Q)
		kernels.Add(h[:Q*H], h[:Q*H], aq)
		m.pool.LayerNorm(aq, h[:Q*H], Q, H, L.crossLN.w, L.crossLN.b, eps)
	}

	// Feed-forward: the query rows and the text rows have their own.
	if Q > 0 {
		m.feedForward(x[:Q*H], aq, Q, &L.upQ, &L.downQ, &L.lnQ)
	}
	if T > Q {
		m.feedForward(x[Q*H:], a[Q*H:], T-Q, &L.up, &L.down, &L.ln)
	}
}

// feedForward computes dst = ln(a + down(gelu(up(a)))) for rows rows.
func (m *Model) feedForward(dst, a []float32, rows int, up, down *linear, ln *norm) {
	q := &m.info.QFormer
	H := q.HiddenSize
	ff := m.buf.qff.F32()[:rows*q.IntermediateSize]
	h := m.buf.qh.F32()[:rows*H]
	up.forward(m.pool, ff, a, rows)
	m.pool.GELU(ff)
	down.forward(m.pool, h, ff, rows)
	kernels.Add(h, h, a[:rows*H])
	m.pool.LayerNorm(dst[:rows*H], h, rows, H, ln.w, ln.b, q.LayerNormEps)
}

// SoftTokens are the language model's input for an image: the Q-Former
// over its features (reading instruction, tokenized, for InstructBLIP;
// BLIP-2 ignores it), then the projection; NumQueryTokens x
// ProjectionSize floats. It stops when ctx is done, as QFormer does.
func (m *Model) SoftTokens(ctx context.Context, feat *ImageFeatures, instruction string) ([]float32, error) {
	var ids []int
	if m.info.QFormer.TextInput {
		var err error
		if ids, err = m.Tokenize(instruction); err != nil {
			return nil, err
		}
	}
	q, err := m.QFormer(ctx, feat, ids)
	if err != nil {
		return nil, err
	}
	return m.Project(q)
}

// Project applies the language projection to Q-Former output (Q x H) and
// returns the LLM input embeddings, Q x E (a new slice).
func (m *Model) Project(qformerOut []float32) (_ []float32, err error) {
	if m.proj == nil {
		return nil, fmt.Errorf("vision: this model has no language projection (%s)", m.info.Architecture)
	}
	Q, H, E := m.info.NumQueryTokens, m.info.QFormer.HiddenSize, m.info.ProjectionSize
	if len(qformerOut) != Q*H {
		return nil, fmt.Errorf("vision: Project got %d values, want %d x %d", len(qformerOut), Q, H)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.file.Unchanged(); err != nil {
		return nil, err
	}
	defer m.file.Guard(&err, gguf.PanicOnFault())
	start := time.Now()
	out := make([]float32, Q*E)
	m.proj.forward(m.pool, out, qformerOut, Q)
	m.emit("language_model_inputs", Q, E, out)
	m.timings.Project = time.Since(start)
	return out, nil
}
