// Package opt runs OPT language models (the LLM of BLIP-2 OPT-2.7b and
// OPT-6.7b) natively in Go, behind the engine/lm interface that the
// llama.cpp backend implements too: llama.cpp has no OPT architecture.
//
// The model is OPTForCausalLM as transformers defines it: token embeddings
// (optionally projected up by project_in), learned positional embeddings
// read at position+2, pre-LayerNorm decoder blocks (or post-LN, as
// opt-350m) with biased multi-head attention and a ReLU feed-forward, a
// final layer norm, optional project_out, and an LM head tied to the token
// embeddings. Weights come from an llm.gguf with general.architecture
// lmconv.OPTArch, "blip2-opt" (written by weights/lmconv, whose names for
// its keys and tensors are read here)
// and stay in the file's memory map: F32 tensors are used in place, F16 and
// Q8_0 matrices are read by engine/kernels directly. Activations and the KV
// cache are float32.
//
//	m, err := opt.Open("model/llm.gguf")
//	c, err := m.NewContext(lm.ContextOptions{})
//	c.AppendEmbeddings(soft, q, false)
//	c.AppendTokens(ids, false)
//	logits := c.Logits(-1)
package opt

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/tokenizer"
	"github.com/blip2chat/blip2chat/engine/weightmap"
	"github.com/blip2chat/blip2chat/weights/dtype"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// Hyper are the model's hyperparameters, from the GGUF metadata.
type Hyper struct {
	Vocab        int     // token_embd rows
	Hidden       int     // hidden_size (H)
	WordEmbed    int     // word_embed_proj_dim (E): width of token embeddings and of input rows
	FFN          int     // ffn_dim
	Layers       int     // decoder blocks
	Heads        int     // attention heads
	MaxPositions int     // max_position_embeddings
	PosOffset    int     // position p reads row p+PosOffset of the position table (2)
	Eps          float32 // layer-norm epsilon
	PreLN        bool    // do_layer_norm_before
	FinalNorm    bool    // output_norm present
	Bias         bool    // linear layers have biases
	NormAffine   bool    // layer norms have weight and bias
	Activation   string  // "relu" or "gelu"
}

// HeadDim is Hidden / Heads.
func (h Hyper) HeadDim() int { return h.Hidden / h.Heads }

// Model is a loaded OPT llm.gguf. It implements lm.Model; its methods may be
// called from several goroutines.
type Model struct {
	path string
	file *gguf.File
	hp   Hyper
	info lm.Info
	// weightType is the type of the block matrices ("f32", "f16", "q8_0").
	weightType string

	tokEmbd *kernels.Matrix // [V, E]
	posEmbd []float32       // [MaxPositions+PosOffset, H]
	projIn  *kernels.Matrix // [H, E], nil when E == H
	projOut *kernels.Matrix // [E, H], nil when E == H
	layers  []layer
	outNorm norm
	output  *kernels.Matrix // [V, E]: tokEmbd when tied

	tok        *tokenizer.BPE
	tokenTypes []int32

	mu       sync.Mutex
	contexts int // open contexts; Close refuses while > 0
	closed   bool
}

// linear is an nn.Linear: y = x W^T + b (b nil without bias).
type linear struct {
	w *kernels.Matrix
	b []float32
}

// norm is a LayerNorm's weight and bias (nil without elementwise affine).
type norm struct{ w, b []float32 }

type layer struct {
	attnNorm, ffnNorm norm
	q, k, v, o        linear
	up, down          linear
}

// Open memory-maps an OPT llm.gguf (general.architecture lmconv.OPTArch)
// and checks every tensor against the metadata. Errors name the file.
func Open(path string) (*Model, error) {
	return weightmap.Load(path, "OPT", newModel)
}

// OpenFile is Open on the GGUF file at path, already opened as f (to read
// its architecture first): the model keeps f, and closes it also when
// OpenFile fails.
func OpenFile(f *gguf.File, path string) (*Model, error) {
	m, err := newModel(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return m, nil
}

// newModel reads a parsed file; name is used in errors.
func newModel(f *gguf.File, name string) (*Model, error) {
	m := &Model{path: name, file: f}
	l := weightmap.NewLoader(f, name, "OPT")
	if a := l.String(gguf.KeyArchitecture); l.Err() == nil && a != lmconv.OPTArch {
		return nil, fmt.Errorf("%s: general.architecture is %q, not an OPT model for blip2chat (%s)", name, a, lmconv.OPTArch)
	}
	// What convert checks, before anything is sized from the file.
	if err := lmconv.CheckMetadata(f); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if err := m.load(l); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Model) load(l *weightmap.Loader) error {
	hp := &m.hp
	hp.Vocab = l.Positive(lmconv.OPTKeyVocabSize)
	hp.MaxPositions = l.Positive(lmconv.OPTKeyContextLength)
	hp.Hidden = l.Positive(lmconv.OPTKeyEmbeddingLength)
	hp.WordEmbed = l.Positive(lmconv.OPTKeyWordEmbeddingLength)
	hp.FFN = l.Positive(lmconv.OPTKeyFeedForwardLength)
	hp.Layers = l.Positive(lmconv.OPTKeyBlockCount)
	hp.Heads = l.Positive(lmconv.OPTKeyHeadCount)
	hp.Eps = l.Float32(lmconv.OPTKeyLayerNormEpsilon)
	hp.PosOffset = l.Int(lmconv.OPTKeyPositionOffset)
	hp.PreLN = l.Bool(lmconv.OPTKeyLayerNormBefore)
	hp.FinalNorm = l.Bool(lmconv.OPTKeyFinalNorm)
	hp.Bias = l.Bool(lmconv.OPTKeyBias)
	hp.NormAffine = l.Bool(lmconv.OPTKeyLayerNormAffine)
	hp.Activation = l.String(lmconv.OPTKeyActivation)
	if err := l.Err(); err != nil {
		return err
	}
	switch {
	case hp.Hidden%hp.Heads != 0:
		l.Failf("embedding_length %d is not a multiple of head_count %d", hp.Hidden, hp.Heads)
	case !(hp.Eps > 0) || math.IsInf(float64(hp.Eps), 0):
		l.Failf("layer_norm_epsilon %v must be positive", hp.Eps)
	case hp.Activation != "relu" && hp.Activation != "gelu":
		l.Failf("activation %q is not relu or gelu", hp.Activation)
	case hp.PosOffset > 1<<16:
		l.Failf("position_offset %d is out of range", hp.PosOffset)
	case hp.Layers > len(m.file.Tensors):
		l.Failf("block_count %d exceeds the %d tensors in the file", hp.Layers, len(m.file.Tensors))
	}
	if err := l.Err(); err != nil {
		return err
	}
	H, E, V := hp.Hidden, hp.WordEmbed, hp.Vocab

	m.tokEmbd = l.Matrix(lmconv.OPTTokenEmbd, V, E)
	m.posEmbd = f32Values(l, lmconv.OPTPositionEmbd, hp.MaxPositions+hp.PosOffset, H)
	if E != H {
		m.projIn = l.Matrix(lmconv.OPTProjectIn, H, E)
		m.projOut = l.Matrix(lmconv.OPTProjectOut, E, H)
	}
	lin := func(name string, out, in int) linear {
		li := linear{w: l.Matrix(name+".weight", out, in)}
		if li.w != nil {
			// A beam step's few rows through the GEMM: it costs about what
			// one row's GEMV does (the multi-row GEMV is compute-bound), at
			// the price of a beam's logits differing from the sequence
			// alone in the last bits, as transformers' batched beams do.
			li.w.AnyRows = true
		}
		if hp.Bias {
			li.b = l.F32Tensor(name+".bias", out)
		}
		return li
	}
	nrm := func(name string) norm {
		if !hp.NormAffine {
			return norm{}
		}
		return norm{w: l.F32Tensor(name+".weight", H), b: l.F32Tensor(name+".bias", H)}
	}
	m.layers = make([]layer, hp.Layers)
	for i := range m.layers {
		n := lmconv.OPTBlock(i)
		m.layers[i] = layer{
			attnNorm: nrm(n.AttnNorm),
			q:        lin(n.AttnQ, H, H),
			k:        lin(n.AttnK, H, H),
			v:        lin(n.AttnV, H, H),
			o:        lin(n.AttnOutput, H, H),
			ffnNorm:  nrm(n.FFNNorm),
			up:       lin(n.FFNUp, hp.FFN, H),
			down:     lin(n.FFNDown, H, hp.FFN),
		}
		if err := l.Err(); err != nil {
			return err
		}
	}
	if hp.FinalNorm {
		m.outNorm = nrm(lmconv.OPTOutputNorm)
	}
	m.output = m.tokEmbd
	if _, _, ok := m.file.Tensor(lmconv.OPTOutput); ok {
		m.output = l.Matrix(lmconv.OPTOutput, V, E)
	}
	if m.output != nil {
		m.output.AnyRows = true
	}
	if err := l.Err(); err != nil {
		return err
	}
	if len(m.layers) > 0 {
		m.weightType = m.layers[0].q.w.Type.String()
	}
	return m.loadTokenizer(l)
}

// loadTokenizer rebuilds the GPT-2 byte-level BPE tokenizer from the
// tokenizer.ggml.* keys and fills Info.
func (m *Model) loadTokenizer(l *weightmap.Loader) error {
	if model := l.String(gguf.KeyTokenizerModel); l.Err() == nil && model != "gpt2" {
		l.Failf("%s is %q, want gpt2 (byte-level BPE)", gguf.KeyTokenizerModel, model)
	}
	tokens, ok := m.file.Strings(gguf.KeyTokens)
	if !ok {
		l.Failf("metadata %s is missing", gguf.KeyTokens)
	}
	merges, ok := m.file.Strings(gguf.KeyMerges)
	if !ok {
		l.Failf("metadata %s is missing", gguf.KeyMerges)
	}
	if err := l.Err(); err != nil {
		return err
	}
	if len(tokens) != m.hp.Vocab {
		l.Failf("%d tokens for vocab_size %d", len(tokens), m.hp.Vocab)
		return l.Err()
	}
	types, ok := m.file.Int32s(gguf.KeyTokenType)
	if !ok {
		types = make([]int32, len(tokens))
		for i := range types {
			types[i] = gguf.TokenNormal
		}
	} else if len(types) != len(tokens) {
		l.Failf("%d token types for %d tokens", len(types), len(tokens))
		return l.Err()
	}
	tok, err := tokenizer.NewBPE(tokens, merges)
	if err != nil {
		return fmt.Errorf("%s: tokenizer: %v", l.Name(), err)
	}
	m.tok, m.tokenTypes = tok, types

	id := func(key string) int32 {
		v, ok := m.file.Int(key)
		if !ok {
			return -1
		}
		if v < 0 || v >= len(tokens) {
			l.Failf("%s = %d is not a token id", key, v)
			return -1
		}
		return int32(v)
	}
	ctxTrain := m.hp.MaxPositions
	m.info = lm.Info{
		Arch:         lmconv.OPTArch,
		Backend:      "Go (OPT)",
		NCtx:         min(ctxTrain, lm.DefaultMaxCtx),
		NCtxTrain:    ctxTrain,
		NEmbd:        m.hp.WordEmbed,
		NVocab:       m.hp.Vocab,
		BOS:          id(gguf.KeyBOSID),
		EOS:          id(gguf.KeyEOSID),
		DecoderStart: -1,
	}
	m.info.AddBOS, _ = m.file.Bool(gguf.KeyAddBOS)
	m.info.AddEOS, _ = m.file.Bool(gguf.KeyAddEOS)
	if m.info.AddBOS && m.info.BOS < 0 {
		l.Failf("%s is set but there is no bos_token_id", gguf.KeyAddBOS)
	}
	if m.info.AddEOS && m.info.EOS < 0 {
		l.Failf("%s is set but there is no eos_token_id", gguf.KeyAddEOS)
	}
	size, _ := m.file.String(gguf.KeySizeLabel)
	desc := []string{"opt"}
	if size != "" {
		desc = append(desc, size)
	}
	m.info.Desc = strings.Join(append(desc, strings.ToUpper(m.weightType)), " ")
	return l.Err()
}

// Hyper returns the model's hyperparameters.
func (m *Model) Hyper() Hyper { return m.hp }

// Info describes the model (lm.Model).
func (m *Model) Info() lm.Info { return m.info }

// Tokenize encodes text with the byte-level BPE; addSpecial prepends BOS
// (</s> for OPT) when the tokenizer adds it. Special-token text is encoded
// as plain text.
func (m *Model) Tokenize(text string, addSpecial bool) ([]int32, error) {
	ids := m.tok.Encode(text)
	out := make([]int32, 0, len(ids)+2)
	if addSpecial && m.info.AddBOS {
		out = append(out, m.info.BOS)
	}
	for _, id := range ids {
		if id < 0 || id >= m.hp.Vocab {
			return nil, fmt.Errorf("tokenize: token %d is outside the vocabulary (%d)", id, m.hp.Vocab)
		}
		out = append(out, int32(id))
	}
	if addSpecial && m.info.AddEOS {
		out = append(out, m.info.EOS)
	}
	return out, nil
}

// TokenBytes returns the bytes a token stands for; control tokens (</s>,
// <pad>, ...) and unused padding ids give none.
func (m *Model) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(m.tokenTypes) {
		return nil
	}
	switch m.tokenTypes[id] {
	case gguf.TokenControl, gguf.TokenUnused:
		return nil
	}
	return m.tok.TokenBytes(int(id))
}

// Piece returns the text of a token as TokenBytes does, but with control
// tokens shown ("</s>"): for display, as the tokenize command does
// (lm.Model).
func (m *Model) Piece(id int32) string {
	if id < 0 || int(id) >= len(m.tokenTypes) {
		return ""
	}
	return string(m.tok.TokenBytes(int(id)))
}

// IsEOG reports whether id is the end-of-sequence token.
func (m *Model) IsEOG(id int32) bool { return id >= 0 && id == m.info.EOS }

// TokenEmbeddings returns the rows of the token embedding table for ids
// (len(ids) x NEmbd, dequantized).
func (m *Model) TokenEmbeddings(ids []int32) (_ []float32, err error) {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%s: model is closed", m.path)
	}
	if err := m.file.Unchanged(); err != nil {
		return nil, err
	}
	defer m.file.Guard(&err, gguf.PanicOnFault())
	E := m.hp.WordEmbed
	out := make([]float32, len(ids)*E)
	if err := m.embed(out, ids); err != nil {
		return nil, err
	}
	return out, nil
}

// embed writes the embedding rows of ids into dst.
func (m *Model) embed(dst []float32, ids []int32) error {
	E := m.hp.WordEmbed
	for i, id := range ids {
		if id < 0 || int(id) >= m.hp.Vocab {
			return fmt.Errorf("token id %d is outside the vocabulary (%d)", id, m.hp.Vocab)
		}
		matrixRow(dst[i*E:(i+1)*E], m.tokEmbd, int(id))
	}
	return nil
}

// matrixRow writes row r of w, as f32, into dst (len w.Cols).
func matrixRow(dst []float32, w *kernels.Matrix, r int) {
	k := w.Cols
	switch w.Type {
	case kernels.F32:
		copy(dst, w.F32[r*k:(r+1)*k])
	case kernels.F16:
		raw := w.Raw[2*r*k : 2*(r+1)*k]
		for i := range dst[:k] {
			dst[i] = dtype.F16ToF32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
	case kernels.Q8_0:
		rb := k / dtype.Q8_0BlockSize * dtype.Q8_0BlockBytes
		dtype.DequantizeQ8_0(dst[:k], w.Raw[r*rb:(r+1)*rb])
	}
}

// Close unmaps the weights. It fails while contexts are open.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if m.contexts > 0 {
		return fmt.Errorf("%s: %d context(s) still open; close them first", m.path, m.contexts)
	}
	m.closed = true
	return m.file.Close()
}

// f32Values returns a [rows, cols] tensor of type F32 (in place), F16 or
// Q8_0 (dequantized into a new slice).
func f32Values(l *weightmap.Loader, name string, rows, cols int) []float32 {
	m := l.Matrix(name, rows, cols)
	if m == nil {
		return nil
	}
	if m.Type == kernels.F32 {
		return m.F32
	}
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		matrixRow(out[r*cols:(r+1)*cols], m, r)
	}
	return out
}
