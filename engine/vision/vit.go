package vision

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// EncodeImage runs the ViT on one image's pixel values ([C, H, W] channels
// first, normalized as Info().ImageOptions() does) and returns its last
// hidden state, after the final layer norm.
//
// The ViT (transformers' Blip2VisionModel): a 14x14 (patch size) stride-14
// convolution cuts the image into N-1 patch vectors, the class embedding is
// put in front and learned positions are added; then pre-LN blocks
//
//	x += proj(attention(ln1(x)))      fused qkv, biases q and v, k none
//	x += fc2(gelu(fc1(ln2(x))))
//
// and a final layer norm.
//
// It stops when ctx is done: ctx is checked before the patch embedding and
// between layers (about a tenth of a second apart on ViT-g), and its error
// is returned as is. A stopped run leaves nothing behind: the next image
// is encoded as if it had not been.
func (m *Model) EncodeImage(ctx context.Context, pixels []float32) (_ *ImageFeatures, err error) {
	v := &m.info.Vision
	S, C := v.ImageSize, v.Channels
	if len(pixels) != C*S*S {
		return nil, fmt.Errorf("vision: got %d pixel values, want %d (%d x %d x %d)", len(pixels), C*S*S, C, S, S)
	}
	for _, p := range pixels {
		if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			return nil, fmt.Errorf("vision: pixel values contain NaN or Inf")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Every run starts from the pixels (the buffers hold nothing from the
	// last one), so returning between layers needs no cleanup.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.file.Unchanged(); err != nil {
		return nil, err
	}
	defer m.file.Guard(&err, gguf.PanicOnFault())

	start := time.Now()
	N, D := v.Tokens, v.HiddenSize
	b := &m.buf
	x := b.x.F32()

	// Patch embedding: the convolution with kernel = stride = P is a matrix
	// product of the patches, laid out in the kernel's (c, kh, kw) order,
	// with the kernel reshaped to [D, C*P*P].
	m.im2col(pixels)
	m.patch.forward(m.pool, x[D:], b.patches.F32(), N-1)
	copy(x[:D], m.classEmb)
	kernels.Add(x, x, m.posEmb[:N*D])
	embed := time.Since(start)

	start = time.Now()
	for i := range m.vit {
		m.emitLayer("vision_hidden_states", i, N, D, x)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m.vitLayer(&m.vit[i])
	}
	m.emitLayer("vision_hidden_states", len(m.vit), N, D, x)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	out := &ImageFeatures{Tokens: N, Dim: D, Data: make([]float32, N*D)}
	m.pool.LayerNorm(out.Data, x, N, D, m.postLN.w, m.postLN.b, v.LayerNormEps)
	m.emit("vision_last_hidden_state", N, D, out.Data)
	m.timings.Embed, m.timings.ViT = embed, time.Since(start)
	return out, nil
}

// im2col copies the image's patches into b.patches, one row per patch in
// raster order (as the conv output's flatten), each row in (c, kh, kw)
// order (as the conv weight's).
func (m *Model) im2col(pixels []float32) {
	v := &m.info.Vision
	S, P, C := v.ImageSize, v.PatchSize, v.Channels
	grid := S / P
	rows := m.buf.patches
	for gy := 0; gy < grid; gy++ {
		for gx := 0; gx < grid; gx++ {
			row := rows.Row(gy*grid + gx)
			o := 0
			for c := 0; c < C; c++ {
				for kh := 0; kh < P; kh++ {
					src := pixels[(c*S+gy*P+kh)*S+gx*P:]
					copy(row[o:o+P], src[:P])
					o += P
				}
			}
		}
	}
}

// vitLayer runs one pre-LN ViT block on the residual stream b.x in place.
func (m *Model) vitLayer(L *vitLayer) {
	v := &m.info.Vision
	N, D, eps := v.Tokens, v.HiddenSize, v.LayerNormEps
	b := &m.buf
	x, h, qkv, ctx, ff := b.x.F32(), b.h.F32(), b.qkv.F32(), b.ctx.F32(), b.ff.F32()

	m.pool.LayerNorm(h, x, N, D, L.ln1.w, L.ln1.b, eps)
	L.qkv.forward(m.pool, qkv, h, N)
	// Each row of qkv is [q | k | v], each of them heads side by side.
	hd := D / v.Heads
	m.attention(qkv, qkv[D:], qkv[2*D:], 3*D, 3*D, ctx, D, N, N, v.Heads, hd)
	L.out.forward(m.pool, h, ctx, N)
	kernels.Add(x, x, h)

	m.pool.LayerNorm(h, x, N, D, L.ln2.w, L.ln2.b, eps)
	L.ffnUp.forward(m.pool, ff, h, N)
	m.pool.GELU(ff)
	L.ffnDown.forward(m.pool, h, ff, N)
	kernels.Add(x, x, h)
}

// attention is softmax(Q K^T / sqrt(hd)) V for every head, without mask:
// q rows have stride ldq, k and v rows ldkv, out rows ldo.
func (m *Model) attention(q, k, v []float32, ldq, ldkv int, out []float32, ldo, tq, tk, heads, hd int) {
	m.attentionProbs(q, k, v, ldq, ldkv, out, ldo, tq, tk, heads, hd, nil)
}

// attentionProbs is attention that also writes the probabilities into
// probs (heads x tq x tk) when it is set.
func (m *Model) attentionProbs(q, k, v []float32, ldq, ldkv int, out []float32, ldo, tq, tk, heads, hd int, probs []float32) {
	a := &m.att
	*a = kernels.AttentionArgs{
		Q: q, K: k, V: v, Out: out, Probs: probs,
		Tq: tq, Tk: tk, Heads: heads, HeadDim: hd,
		LdQ: ldq, LdK: ldkv, LdV: ldkv, LdOut: ldo,
		Scale: float32(1 / math.Sqrt(float64(hd))),
	}
	m.pool.Attention(a)
	*a = kernels.AttentionArgs{} // do not keep the buffers reachable twice
}
