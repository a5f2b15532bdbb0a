package hub

// Sizes of the catalogue's checkpoints, computed from their tensor shapes
// (the Hugging Face configs' dimensions), not copied from listings; the
// tests hold the download sizes to the repositories' listed shard sizes.
//
//   - DownloadBytes: every tensor of the checkpoint as stored, float32
//     (§0.2 of hub-checkpoints.md: all Salesforce shards are f32), including
//     the duplicates a layout stores (OPT's lm_head in the old layout, one
//     more T5 embedding copy in the old flan-t5-xxl).
//   - ConvertedBytes: the tensors the converter writes, at the bytes per
//     weight of their type: f32 4, f16 2, q8_0 34/32 (blocks of 32 with an
//     f16 scale; rows not a multiple of 32 fall back to f16), q4_k_m as
//     llama.cpp's mix: Q4_K (144 bytes per 256) for most matrices and Q6_K
//     (210 per 256) for the output head and for attn_v and ffn_down on the
//     layers llama.cpp's use_more_bits picks (the first and last eighth and
//     every third one between). Norms, biases and the embeddings the
//     converter keeps f32 count 4 bytes. GGUF metadata (the tokenizer, a
//     few MB) is not counted.
//   - RAMBytes: ConvertedBytes, plus the language model's KV cache at its
//     default context (the training context, capped at 4096: 2048 for OPT
//     and Vicuna, 512 for T5; f32 for blip2chat's OPT engine, f16 for
//     llama.cpp), plus 512 MiB for activations, compute buffers and the
//     image pipeline.

const (
	layoutOld = "old"
	layoutNew = "new"
)

// arch is the shape of one checkpoint.
type arch struct {
	image     int  // vision input size: 224 or 364
	instruct  bool // InstructBLIP: the Q-Former reads the prompt (text embeddings and FFN)
	retrieval bool // blip2-itm: Q-Former text path and ITM heads, no language model
	llm       string
	// Language model: width, layers, feed-forward width, attention heads
	// (T5: of 64 dimensions each), embedding rows as stored, V×D embedding
	// matrices stored in the checkpoint, training context.
	hidden, layers, ffn, heads, vocab int
	storedEmbeds                      int
	ctxTrain                          int
	layout                            string
}

func opt(image, hidden, layers, ffn int, layout string) arch {
	a := arch{image: image, llm: "opt", hidden: hidden, layers: layers, ffn: ffn, heads: hidden / 80,
		ctxTrain: 2048, layout: layout, vocab: 50304, storedEmbeds: 1}
	if layout == layoutOld {
		// 50272 rows, and lm_head.weight stored beside the embedding it
		// is tied to.
		a.vocab, a.storedEmbeds = 50272, 2
	}
	return a
}

func t5(image, dModel, heads, ffn int, instruct bool, storedEmbeds int, layout string) arch {
	return arch{image: image, instruct: instruct, llm: "t5", hidden: dModel, layers: 24, ffn: ffn, heads: heads,
		vocab: 32128, storedEmbeds: storedEmbeds, ctxTrain: 512, layout: layout}
}

func llama(hidden, layers, ffn int, layout string) arch {
	a := arch{image: 224, instruct: true, llm: "llama", hidden: hidden, layers: layers, ffn: ffn, heads: hidden / 128,
		vocab: 32064, storedEmbeds: 2, ctxTrain: 2048, layout: layout}
	if layout == layoutOld {
		a.vocab = 32001
	}
	return a
}

func retrieval(image int) arch {
	return arch{image: image, retrieval: true, layout: layoutOld}
}

// class says how a tensor converts.
type class int

const (
	keepF32  class = iota // norms, biases, embeddings kept f32
	matrix                // a weight matrix: the asked type
	matrixQ6              // a matrix q4_k_m makes Q6_K (output head; attn_v/ffn_down on use_more_bits layers)
)

type tensor struct {
	n, cols int64 // elements, row length
	class   class
}

// Fixed BLIP-2 dimensions (EVA ViT-g/14, BERT-base Q-Former): the
// transformers defaults, which the Salesforce configs do not override.
const (
	visionWidth, visionLayers, visionMLP, patch = 1408, 39, 6144, 14
	qWidth, qLayers, qFFN, qCrossEvery, queries = 768, 12, 3072, 2, 32
	qVocab, qPositions                          = 30523, 512
	optPositions                                = 2048 + 2
	t5HeadDim, t5Buckets                        = 64, 32
	overheadRAM                                 = 512 << 20
)

func mat(rows, cols int) tensor   { return tensor{int64(rows) * int64(cols), int64(cols), matrix} }
func matQ6(rows, cols int) tensor { return tensor{int64(rows) * int64(cols), int64(cols), matrixQ6} }
func f32(n ...int) tensor {
	t := tensor{n: 1, class: keepF32}
	for _, d := range n {
		t.n *= int64(d)
	}
	return t
}

// linear is a weight matrix and its bias.
func linear(out, in int) []tensor { return []tensor{mat(out, in), f32(out)} }

// visionSide lists the tensors of vision.gguf: ViT, Q-Former, and the
// language projection (the retrieval heads for blip2-itm).
func (a arch) visionSide() []tensor {
	D, M := visionWidth, visionMLP
	npos := (a.image/patch)*(a.image/patch) + 1
	ts := []tensor{
		f32(D), mat(D, 3*patch*patch), f32(D), f32(npos, D), // class, patch (588 columns: f16), bias, positions
	}
	for range visionLayers {
		ts = append(ts, f32(2*D), mat(3*D, D), f32(2*D)) // ln1, qkv, q_bias and v_bias
		ts = append(ts, linear(D, D)...)
		ts = append(ts, f32(2*D))
		ts = append(ts, linear(M, D)...)
		ts = append(ts, linear(D, M)...)
	}
	ts = append(ts, f32(2*D))

	Q, E, F := qWidth, visionWidth, qFFN
	text := a.instruct || a.retrieval
	ts = append(ts, f32(queries, Q), f32(2*Q))
	if text {
		ts = append(ts, f32(qVocab, Q), f32(qPositions, Q))
	}
	for i := range qLayers {
		for range 4 {
			ts = append(ts, linear(Q, Q)...)
		}
		ts = append(ts, f32(2*Q))
		if i%qCrossEvery == 0 {
			ts = append(ts, linear(Q, Q)...)
			ts = append(ts, linear(Q, E)...)
			ts = append(ts, linear(Q, E)...)
			ts = append(ts, linear(Q, Q)...)
			ts = append(ts, f32(2*Q))
		}
		ffns := 1
		if text {
			ffns = 2 // the text path's FFN beside the queries'
		}
		for range ffns {
			ts = append(ts, linear(F, Q)...)
			ts = append(ts, linear(Q, F)...)
			ts = append(ts, f32(2*Q))
		}
	}
	if a.retrieval {
		ts = append(ts, linear(256, Q)...) // vision_projection
		ts = append(ts, linear(256, Q)...) // text_projection
		ts = append(ts, f32(2*Q+2))        // itm_head (2 outputs)
	} else {
		ts = append(ts, linear(a.hidden, Q)...)
	}
	return ts
}

// useMoreBits is llama.cpp's rule for which of n attn_v / ffn_down
// tensors q4_k_m keeps at Q6_K.
func useMoreBits(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }

// llmSide lists the tensors of llm.gguf (the embedding as stored, rows
// included; OPT's head tied to it and not written).
func (a arch) llmSide() []tensor {
	D, F, V, L := a.hidden, a.ffn, a.vocab, a.layers
	var ts []tensor
	switch a.llm {
	case "opt":
		ts = append(ts, mat(V, D), f32(optPositions, D))
		for range L {
			for range 4 {
				ts = append(ts, linear(D, D)...)
			}
			ts = append(ts, f32(2*D), f32(2*D))
			ts = append(ts, linear(F, D)...)
			ts = append(ts, linear(D, F)...)
		}
		ts = append(ts, f32(2*D))
	case "llama":
		ts = append(ts, mat(V, D), matQ6(V, D), f32(D))
		for i := range L {
			v := mat(D, D)
			down := mat(D, F)
			if useMoreBits(i, L) {
				v, down = matQ6(D, D), matQ6(D, F)
			}
			ts = append(ts, mat(D, D), mat(D, D), v, mat(D, D), mat(F, D), mat(F, D), down, f32(2*D))
		}
	case "t5":
		inner := a.heads * t5HeadDim
		ts = append(ts, mat(V, D), matQ6(V, D), f32(D), f32(D))           // shared, lm_head, final norms
		ts = append(ts, f32(t5Buckets, a.heads), f32(t5Buckets, a.heads)) // relative attention biases
		nv, nd := 3*L, 2*L                                                // attn_v (encoder, decoder self and cross), ffn_down
		iv, id := 0, 0
		attn := func() []tensor {
			v := mat(inner, D)
			if useMoreBits(iv, nv) {
				v = matQ6(inner, D)
			}
			iv++
			return []tensor{mat(inner, D), mat(inner, D), v, mat(D, inner), f32(D)}
		}
		ffn := func() []tensor {
			down := mat(D, F)
			if useMoreBits(id, nd) {
				down = matQ6(D, F)
			}
			id++
			return []tensor{mat(F, D), mat(F, D), down, f32(D)}
		}
		for range L {
			ts = append(ts, attn()...)
			ts = append(ts, ffn()...)
		}
		for range L {
			ts = append(ts, attn()...)
			ts = append(ts, attn()...)
			ts = append(ts, ffn()...)
		}
	}
	return ts
}

// writtenEmbeds is how many V×D matrices llmSide holds.
func (a arch) writtenEmbeds() int {
	if a.llm == "opt" {
		return 1
	}
	return 2
}

// bytesAs is the size of a tensor converted to typ ("f32", "f16", "q8_0",
// "q4_k_m").
func (t tensor) bytesAs(typ string) int64 {
	if t.class == keepF32 {
		return 4 * t.n
	}
	switch typ {
	case "f16":
		return 2 * t.n
	case "q8_0":
		if t.cols%32 == 0 {
			return t.n / 32 * 34
		}
		return 2 * t.n
	case "q4_k_m":
		if t.cols%256 != 0 {
			return t.n / 32 * 34 // llama.cpp falls back to a type with smaller blocks
		}
		if t.class == matrixQ6 {
			return t.n / 256 * 210
		}
		return t.n / 256 * 144
	}
	return 4 * t.n
}

type sizes struct {
	params, download, converted, ram int64
}

func (a arch) sizes(visionType, llmType string) sizes {
	var s sizes
	for _, t := range a.visionSide() {
		s.params += t.n
		s.converted += t.bytesAs(visionType)
	}
	for _, t := range a.llmSide() {
		s.params += t.n
		s.converted += t.bytesAs(llmType)
	}
	stored := s.params + int64(a.storedEmbeds-a.writtenEmbeds())*int64(a.vocab)*int64(a.hidden)
	if a.llm == "" {
		stored = s.params
	}
	s.download = 4 * stored
	s.ram = s.converted + a.kvBytes() + overheadRAM
	return s
}

// kvBytes is the language model's KV cache at its default context.
func (a arch) kvBytes() int64 {
	ctx := int64(min(a.ctxTrain, 4096))
	L, D := int64(a.layers), int64(a.hidden)
	switch a.llm {
	case "opt":
		return 2 * L * ctx * D * 4
	case "llama":
		return 2 * L * ctx * D * 2
	case "t5":
		return 2 * L * ctx * int64(a.heads*t5HeadDim) * 2
	}
	return 0
}
