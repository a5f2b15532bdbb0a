// Package llamacpp implements lm.Model on llama.cpp (engine/llamacpp/capi): the
// LLaMA family (Vicuna in InstructBLIP) and T5 (FlanT5), from a GGUF file
// llama.cpp loads; engine/model opens with it every architecture that is
// not blip2chat's own.
//
// Decoder-only models take the soft tokens as an embedding batch and the
// prompt as tokens; T5 encodes [soft tokens ; token embeddings] in one
// llama_encode call (the embeddings are read from the GGUF's
// token_embd.weight and dequantized by weights/gguf/quant exactly as llama.cpp
// would) and its decoder starts from the decoder start token.
package llamacpp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/blip2chat/blip2chat/engine/llamacpp/capi"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/gguf/quant"
	"github.com/blip2chat/blip2chat/weights/lmconv"
)

// Model is a language model loaded by llama.cpp.
type Model struct {
	lib  *capi.Library
	m    *capi.Model
	path string
	info lm.Info

	file  *gguf.File // the GGUF, memory-mapped, for token_embd rows
	emb   gguf.TensorInfo
	embB  []byte
	embRB int // bytes per embedding row

	mu     sync.Mutex
	pieces map[int32][]byte
}

// Options configure Open.
type Options struct {
	lm.OpenOptions
	LibDir string // folder of the llama.cpp library ("" searches; see capi.Locate)
}

// Open loads the GGUF model at path with the llama.cpp library found from
// o.LibDir. Errors are one line naming the file or the library.
func Open(path string, o Options) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	return OpenFile(f, path, o)
}

// OpenFile is Open on the GGUF file at path, already opened as f (to read
// its architecture first): the model reads token_embd.weight from f and
// closes it, also when OpenFile fails.
func OpenFile(f *gguf.File, path string, o Options) (*Model, error) {
	ok := false
	defer func() {
		if !ok {
			f.Close()
		}
	}()
	arch, _ := f.String(gguf.KeyArchitecture)
	if arch == convert.VisionArch {
		return nil, fmt.Errorf("%s is a vision file, not a language model (give the folder's llm.gguf)", path)
	}
	if strings.HasPrefix(arch, "blip2-") {
		return nil, fmt.Errorf("%s: architecture %q runs in blip2chat's Go engine, not in llama.cpp", path, arch)
	}
	// What convert checks, before llama.cpp sees the file: it aborts the
	// process on some values (a NaN norm epsilon) and computes nothing
	// useful from others (a NaN rope base).
	if err := lmconv.CheckMetadata(f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	lib, err := capi.Load(capi.Options{Dir: o.LibDir, Log: o.Log})
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		o.Progress(0)
	}
	llm, device, notice, err := loadModel(lib, path, o.OpenOptions)
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		o.Progress(1)
	}
	m := &Model{lib: lib, m: llm, path: path, file: f, pieces: map[int32][]byte{}}
	m.info = m.readInfo(arch)
	li := lib.Info()
	where := li.Location.Dir
	if where == "" {
		where = li.Location.Source
	}
	m.info.Backend = fmt.Sprintf("llama.cpp %s (%s)", li.Version, where)
	m.info.Device, m.info.Notice = device, notice
	if err := m.findEmbeddings(); err != nil && m.info.EncoderDecoder && !o.VocabOnly {
		llm.Close()
		return nil, err
	}
	ok = true
	return m, nil
}

// loadModel loads the model with o.GPULayers layers offloaded when the
// library has a GPU. A GPU that was asked for and cannot be used never stops
// the run: the model loads on the CPU, and notice says why in one line (a
// GPU build without a GPU or driver, or a model the GPU could not take).
func loadModel(lib *capi.Library, path string, o lm.OpenOptions) (m *capi.Model, device, notice string, err error) {
	params := lib.DefaultModelParams()
	params.VocabOnly = o.VocabOnly
	params.NGPULayers = 0
	want := o.GPULayers != 0 && !o.VocabOnly
	var gpus []string
	for _, d := range lib.Devices() {
		if d.GPU() {
			gpus = append(gpus, d.String())
		}
	}
	if want && len(gpus) > 0 {
		params.NGPULayers = -1 // llama.cpp: all
		if o.GPULayers > 0 {
			params.NGPULayers = int32(min(o.GPULayers, math.MaxInt32))
		}
		m, err = lib.LoadModel(path, params)
		if err == nil {
			n := m.NLayer()
			on := n
			if params.NGPULayers >= 0 {
				on = min(int(params.NGPULayers), n)
			}
			return m, fmt.Sprintf("GPU: %s, %d of %d layers", strings.Join(gpus, ", "), on, n), "", nil
		}
		notice = fmt.Sprintf("the language model could not be loaded on the GPU (%v); it runs on the CPU", err)
		params.NGPULayers = 0
	} else if want {
		notice = lib.Fallback()
	}
	if m, err = lib.LoadModel(path, params); err != nil {
		return nil, "", "", err
	}
	if o.VocabOnly {
		return m, "", "", nil
	}
	return m, "CPU", notice, nil
}

func (m *Model) readInfo(arch string) lm.Info {
	in := lm.Info{
		Arch:           arch,
		Desc:           m.m.Desc(),
		NCtxTrain:      m.m.NCtxTrain(),
		NEmbd:          m.m.NEmbdInp(),
		NVocab:         m.m.NVocab(),
		EncoderDecoder: m.m.HasEncoder(),
		BOS:            m.m.BOS(),
		EOS:            m.m.EOS(),
		DecoderStart:   -1,
		AddBOS:         m.m.AddBOS(),
		AddEOS:         m.m.AddEOS(),
	}
	if in.NEmbd == 0 {
		// A vocabulary-only load reads no hyperparameters; the width is
		// still wanted to check a model folder (engine/model.Check).
		if n, ok := m.file.Int(arch + ".embedding_length"); ok && n > 0 {
			in.NEmbd = n
		}
	}
	in.NCtx = in.NCtxTrain
	if in.NCtx <= 0 || in.NCtx > lm.DefaultMaxCtx {
		in.NCtx = lm.DefaultMaxCtx
	}
	if in.EncoderDecoder {
		in.DecoderStart = m.m.DecoderStartToken()
		if in.DecoderStart < 0 {
			// T5 starts its decoder from the padding token.
			in.DecoderStart = 0
			if v, ok := m.m.Meta("tokenizer.ggml.padding_token_id"); ok {
				if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < in.NVocab {
					in.DecoderStart = int32(n)
				}
			}
		}
	}
	return in
}

// findEmbeddings locates token_embd.weight for TokenEmbeddings.
func (m *Model) findEmbeddings() error {
	info, data, ok := m.file.Tensor("token_embd.weight")
	if !ok {
		return fmt.Errorf("%s: no token_embd.weight tensor", m.path)
	}
	if len(info.Dims) != 2 || int(info.Dims[0]) != m.info.NEmbd || int(info.Dims[1]) < m.info.NVocab {
		return fmt.Errorf("%s: token_embd.weight has shape %v, want [%d %d]", m.path, info.Shape(), m.info.NVocab, m.info.NEmbd)
	}
	if !quant.Supported(info.Type) {
		return fmt.Errorf("%s: token_embd.weight has type %v, which blip2chat cannot read (supported: %v)", m.path, info.Type, quant.Types())
	}
	rb, err := info.Type.RowBytes(m.info.NEmbd)
	if err != nil {
		return fmt.Errorf("%s: token_embd.weight: %v", m.path, err)
	}
	m.emb, m.embB, m.embRB = info, data, rb
	return nil
}

// Llama is the underlying llama.cpp model.
func (m *Model) Llama() *capi.Model { return m.m }

// Info describes the model.
func (m *Model) Info() lm.Info { return m.info }

// EmbeddingType is the type token_embd.weight is stored in.
func (m *Model) EmbeddingType() gguf.Type { return m.emb.Type }

// Tokenize converts text to ids; special-token text is not parsed.
func (m *Model) Tokenize(text string, addSpecial bool) ([]int32, error) {
	return m.m.Tokenize(text, addSpecial, false)
}

// TokenBytes returns the bytes of a token's piece (empty for control tokens
// and ids outside the vocabulary).
func (m *Model) TokenBytes(id int32) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.pieces[id]; ok {
		return b
	}
	s, err := m.m.TokenToPiece(id, false)
	if err != nil {
		return nil
	}
	b := []byte(s)
	m.pieces[id] = b
	return b
}

// Piece returns a token's text with control tokens shown ("</s>"), for
// listings such as `blip2chat tokenize` (lm.Model).
func (m *Model) Piece(id int32) string {
	s, _ := m.m.TokenToPiece(id, true)
	return s
}

// IsEOG reports whether id ends generation.
func (m *Model) IsEOG(id int32) bool { return m.m.IsEOG(id) }

// TokenEmbeddings returns the dequantized rows of token_embd.weight.
func (m *Model) TokenEmbeddings(ids []int32) (_ []float32, err error) {
	if err := m.file.Unchanged(); err != nil {
		return nil, err
	}
	defer m.file.Guard(&err, gguf.PanicOnFault())
	if m.embB == nil {
		if err := m.findEmbeddings(); err != nil {
			return nil, err
		}
	}
	e := m.info.NEmbd
	out := make([]float32, len(ids)*e)
	for i, id := range ids {
		if id < 0 || int(id) >= m.info.NVocab {
			return nil, fmt.Errorf("token id %d is outside the vocabulary of %s (0..%d)", id, m.path, m.info.NVocab-1)
		}
		row := m.embB[int(id)*m.embRB : (int(id)+1)*m.embRB]
		if err := quant.Dequantize(m.emb.Type, out[i*e:(i+1)*e], row); err != nil {
			return nil, fmt.Errorf("%s: token_embd.weight: %v", m.path, err)
		}
	}
	return out, nil
}

// Close frees the model. Its Contexts must be closed first.
func (m *Model) Close() error {
	m.m.Close()
	if m.file != nil {
		m.file.Close()
		m.file, m.embB = nil, nil
	}
	return nil
}
