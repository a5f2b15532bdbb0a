// Package vision runs the image side of BLIP-2 and InstructBLIP natively:
// the EVA ViT image encoder, the Q-Former with its learned query tokens
// (reading the instruction too, for InstructBLIP) and the linear projection
// into the language model's embedding space. Its output, one vector per
// query, is the soft prompt placed in front of the text given to the LLM.
//
// Weights come from MODEL_DIR/vision.gguf (written by weights/convert, whose
// names for its tensors and metadata keys are read here) and stay in the file's
// memory map: F32 tensors are used in place, F16 and Q8_0 matrices are read
// by the kernels directly. Activations are always float32, in buffers
// allocated once per Model and reused for every layer and every image.
//
// The three stages are separate calls so that callers can cache: the ViT
// output of an image (ImageFeatures) is reused when InstructBLIP gets a new
// instruction for the same image, and only the Q-Former and the projection
// run again. EncodeImage and QFormer stop between layers when their
// context is done (the ViT of a real model takes seconds).
//
//	m, err := vision.Load("model/vision.gguf", vision.Options{Threads: 4})
//	feat, err := m.EncodeImage(ctx, pixels)        // [3, H, W] normalized pixels
//	q, err := m.QFormer(ctx, feat, instructionIDs) // nil ids for BLIP-2
//	soft, err := m.Project(q)                      // [Q x E] LLM input embeddings
//
// or SoftTokens(ctx, feat, instruction) for the last two.
package vision

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/engine/tensor"
	"github.com/blip2chat/blip2chat/engine/tokenizer"
	"github.com/blip2chat/blip2chat/engine/weightmap"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
)

// Info describes a loaded model: what it is, its sizes, how to prepare its
// images and how to prompt it.
type Info struct {
	Family       string // "blip-2" or "instructblip"
	Architecture string // the checkpoint's transformers class, e.g. "Blip2ForConditionalGeneration"
	LLMFamily    string // the language model's model_type: "opt", "t5", "llama"; "" if none
	// PromptFormat is the prompt around the user's text; "{prompt}" marks
	// where it goes (BLIP-2: "Question: {prompt} Answer:").
	PromptFormat string
	Layout       string // source checkpoint layout: "hub" or "transformers5"
	WeightType   string // matrix weight type: "f32", "f16" or "q8_0"

	NumQueryTokens int // Q: output rows of the Q-Former and of Project

	Vision struct {
		HiddenSize, IntermediateSize, Layers, Heads int
		ImageSize, PatchSize, Channels              int
		Tokens                                      int // patches + 1 (class token)
		LayerNormEps                                float32
	}
	QFormer struct {
		HiddenSize, IntermediateSize, Layers, Heads int
		CrossAttentionFreq, EncoderHiddenSize       int
		MaxPositions, VocabSize                     int
		LayerNormEps                                float32
		TextInput                                   bool // InstructBLIP: takes instruction ids
	}
	ProjectionSize int // E: the LLM's embedding size; 0 when the model has no projection

	Image struct {
		Width, Height, Resample                        int
		Mean, Std                                      [3]float32
		RescaleFactor                                  float32
		DoResize, DoRescale, DoNormalize, DoConvertRGB bool
	}

	// Vocab is the Q-Former's WordPiece vocabulary (InstructBLIP, retrieval
	// models), nil if the checkpoint had none; LowerCase is its
	// do_lower_case.
	Vocab     []string
	LowerCase bool
	// MaxTextTokens is the most WordPiece ids a text takes (an
	// instruction, a retrieval model's text), [CLS] and [SEP] included:
	// blip2.qformer.tokenizer.max_length (InstructBLIP: LAVIS's 128), else
	// the position embeddings' count. A longer text loses its start when
	// TruncateLeft (InstructBLIP's tokenizer, as LAVIS trained it: the end
	// of an instruction holds the question), else its end.
	MaxTextTokens int
	TruncateLeft  bool

	// Retrieval describes an image–text retrieval model's heads (see
	// retrieval.go); zero for the others.
	Retrieval RetrievalInfo
}

// Prompt puts text into the model's prompt format.
func (i *Info) Prompt(text string) string {
	return strings.ReplaceAll(i.PromptFormat, "{prompt}", text)
}

// ImageOptions are the imageprep settings that produce this model's
// pixel_values.
func (i *Info) ImageOptions() imageprep.Options {
	o := imageprep.Options{Width: i.Image.Width, Height: i.Image.Height,
		Mean: i.Image.Mean, Std: i.Image.Std, RescaleFactor: i.Image.RescaleFactor}
	if !i.Image.DoRescale {
		o.RescaleFactor = 1
	}
	if !i.Image.DoNormalize {
		o.Mean, o.Std = [3]float32{}, [3]float32{1, 1, 1}
	}
	return o
}

// Timings are the durations of the last run of each stage.
type Timings struct {
	Embed   time.Duration // patch embedding, class token, positions
	ViT     time.Duration // the ViT layers and the final layer norm
	QFormer time.Duration
	Project time.Duration
}

// TraceFunc receives intermediate activations (rows x cols, row-major;
// valid only during the call) under the names of the reference tensors:
// "vision_hidden_states.i", "qformer_hidden_states.i", ... Used by tests to
// find a wrong layer quickly.
type TraceFunc func(name string, rows, cols int, data []float32)

// ImageFeatures is the ViT's output for one image: Tokens x Dim values
// after the final layer norm, the keys and values of the Q-Former's
// cross-attention. It belongs to the caller and can be kept as a cache.
type ImageFeatures struct {
	Tokens, Dim int
	Data        []float32
}

// Model is a loaded vision.gguf. Its methods may be called from several
// goroutines; they run one at a time (the buffers are shared).
type Model struct {
	info Info
	file *gguf.File
	wp   *tokenizer.WordPiece

	// ViT weights.
	patch    linear // [D, C*P*P]: the patch conv as a matrix
	classEmb []float32
	posEmb   []float32 // [N, D]
	vit      []vitLayer
	postLN   norm

	// Q-Former weights.
	query   []float32 // [Q, H]
	embLN   norm
	wordEmb []float32 // [V, H], text input only
	posText []float32 // [P, H], text input only
	qf      []qformerLayer

	proj *linear         // nil when absent
	ret  *retrievalHeads // nil but for retrieval models

	pool    *kernels.Pool // the threads the kernels run on (Options.Threads)
	mu      sync.Mutex
	buf     buffers
	att     kernels.AttentionArgs // reused so that a call does not allocate
	trace   TraceFunc
	timings Timings
}

// linear is an nn.Linear: y = x W^T + b.
type linear struct {
	w *kernels.Matrix
	b []float32
}

// forward computes dst[rows x out] = x[rows x in] W^T + b.
func (l *linear) forward(p *kernels.Pool, dst, x []float32, rows int) {
	p.MatMulT(dst, x, rows, l.w, l.b)
}

// norm is an nn.LayerNorm's weight and bias.
type norm struct{ w, b []float32 }

type vitLayer struct {
	ln1, ln2       norm
	qkv, out       linear // qkv: [3D, D], bias q|k|v (k zero in hub checkpoints)
	ffnUp, ffnDown linear
}

type qformerLayer struct {
	q, k, v, out linear
	attnLN       norm
	hasCross     bool
	crossQ       linear
	crossK       linear // [H, E]: reads the image features
	crossV       linear
	crossOut     linear
	crossLN      norm
	upQ, downQ   linear // feed-forward of the query rows
	lnQ          norm
	up, down     linear // feed-forward of the text rows (text input only)
	ln           norm
}

// buffers are the activations, sized for the largest input at Load.
type buffers struct {
	patches *tensor.Mat // [N-1, C*P*P] im2col of the image
	x, h    *tensor.Mat // [N, D] residual stream and scratch
	qkv     *tensor.Mat // [N, 3D]
	ctx     *tensor.Mat // [N, D] attention output
	ff      *tensor.Mat // [N, Dff]

	qx, qx2, qh   *tensor.Mat // [T, H] Q-Former stream, attention output, scratch
	qq, qk, qv    *tensor.Mat // [T, H]
	qctx          *tensor.Mat // [T, H]
	qff           *tensor.Mat // [T, Hff]
	ck, cv        *tensor.Mat // [N, H] cross-attention keys and values
	maxTextTokens int
}

// Options configure Load.
type Options struct {
	Threads int // the threads the ViT and the Q-Former run on; 0: all usable cores (kernels.DefaultThreads); at most kernels.UsableThreads
}

// Load memory-maps a vision.gguf and checks every tensor against the
// metadata.
func Load(path string, o Options) (*Model, error) {
	if o.Threads < 0 {
		return nil, fmt.Errorf("vision: %d threads", o.Threads)
	}
	return weightmap.Load(path, "vision", func(f *gguf.File, name string) (*Model, error) { return newModel(f, name, o) })
}

// newModel reads a parsed vision file; name is used in errors.
func newModel(f *gguf.File, name string, o Options) (*Model, error) {
	m := &Model{file: f}
	if err := m.load(name); err != nil {
		return nil, err
	}
	m.pool = kernels.NewPool(kernels.CapThreads(o.Threads))
	return m, nil
}

// Close stops the model's threads and unmaps the weights; the Model must
// not be used afterwards.
func (m *Model) Close() error {
	m.pool.Close()
	return m.file.Close()
}

// Info describes the model. It is shared: callers must not modify it.
func (m *Model) Info() *Info { return &m.info }

// Timings returns the durations of the last run of each stage.
func (m *Model) Timings() Timings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.timings
}

// SetTrace installs fn (nil removes it) to receive intermediate
// activations.
func (m *Model) SetTrace(fn TraceFunc) {
	m.mu.Lock()
	m.trace = fn
	m.mu.Unlock()
}

func (m *Model) emit(name string, rows, cols int, data []float32) {
	if m.trace != nil {
		m.trace(name, rows, cols, data[:rows*cols])
	}
}

// emitLayer is emit for "<prefix>.<i>"; the name is only built when a
// trace is installed, so that untraced runs do not allocate.
func (m *Model) emitLayer(prefix string, i, rows, cols int, data []float32) {
	if m.trace != nil {
		m.trace(prefix+"."+strconv.Itoa(i), rows, cols, data[:rows*cols])
	}
}

// Tokenize turns an instruction into the Q-Former's WordPiece ids
// ([CLS] ... [SEP]), as InstructBLIP's qformer_tokenizer does.
func (m *Model) Tokenize(instruction string) ([]int, error) {
	if m.wp == nil {
		return nil, fmt.Errorf("vision model has no Q-Former vocabulary (family %s); give instruction ids instead", m.info.Family)
	}
	return m.truncate(m.wp.Encode(instruction)), nil
}

// truncate cuts WordPiece ids ([CLS] ... [SEP]) to Info().MaxTextTokens as
// the checkpoint's tokenizer does (truncation=True, max_length): [CLS], the
// last (TruncateLeft) or first MaxTextTokens-2 word pieces, [SEP].
func (m *Model) truncate(ids []int) []int {
	n := m.info.MaxTextTokens
	if n < 2 || len(ids) <= n {
		return ids
	}
	if m.info.TruncateLeft {
		return append(ids[:1:1], ids[len(ids)-(n-1):]...)
	}
	return append(ids[:n-1:n-1], ids[len(ids)-1])
}

// loader reads vision.gguf: weightmap's checks, plus the vision model's
// own values and layers.
type loader struct{ *weightmap.Loader }

// optString returns an optional string value ("" when absent).
func (l loader) optString(key string) string {
	s, _ := l.File().String(key)
	return s
}

func (l loader) vec3(key string) (out [3]float32) {
	v, ok := l.File().Float32s(key)
	if !ok || len(v) != 3 {
		l.Failf("metadata %s must be 3 floats", key)
		return out
	}
	copy(out[:], v)
	return out
}

func (l loader) linear(name string, out, in int) linear {
	w := l.Matrix(name+".weight", out, in)
	if w != nil {
		w.AnyRows = true // a short text's rows: the GEMM, not the GEMV
	}
	return linear{w: w, b: l.F32Tensor(name+".bias", out)}
}

func (l loader) norm(name string, n int) norm {
	return norm{w: l.F32Tensor(name+".weight", n), b: l.F32Tensor(name+".bias", n)}
}

func (m *Model) load(path string) error {
	l := loader{weightmap.NewLoader(m.file, path, "vision")}
	if a := l.String(gguf.KeyArchitecture); l.Err() == nil && a != convert.VisionArch {
		return fmt.Errorf("%s: general.architecture is %q, not a blip2chat vision file (%s)", path, a, convert.VisionArch)
	}
	// Every value convert checks, before any of them sizes an allocation
	// (an image of 100000x100000 pixels would take 40 GB to resize).
	if err := convert.CheckVisionMetadata(m.file); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	in := &m.info
	in.Family = l.String(convert.KeyFamily)
	in.Architecture = l.optString(convert.KeyArchitecture)
	in.LLMFamily = l.optString(convert.KeyLLMFamily)
	in.PromptFormat = l.String(convert.KeyPromptFormat)
	in.Layout = l.optString(convert.KeyCheckpointLayout)
	in.WeightType = l.optString(convert.KeyWeightType)
	in.NumQueryTokens = l.Positive(convert.KeyNumQueryTokens)
	v := &in.Vision
	v.HiddenSize = l.Positive(convert.KeyVisionHiddenSize)
	v.IntermediateSize = l.Positive(convert.KeyVisionIntermediateSize)
	v.Layers = l.Int(convert.KeyVisionBlockCount)
	v.Heads = l.Positive(convert.KeyVisionHeadCount)
	v.ImageSize = l.Positive(convert.KeyVisionImageSize)
	v.PatchSize = l.Positive(convert.KeyVisionPatchSize)
	v.Channels = l.Positive(convert.KeyVisionNumChannels)
	v.LayerNormEps = l.Float32(convert.KeyVisionLayerNormEps)
	q := &in.QFormer
	q.HiddenSize = l.Positive(convert.KeyQFormerHiddenSize)
	q.IntermediateSize = l.Positive(convert.KeyQFormerIntermediateSize)
	q.Layers = l.Int(convert.KeyQFormerBlockCount)
	q.Heads = l.Positive(convert.KeyQFormerHeadCount)
	q.CrossAttentionFreq = l.Positive(convert.KeyQFormerCrossAttentionFreq)
	q.EncoderHiddenSize = l.Positive(convert.KeyQFormerEncoderHiddenSize)
	q.MaxPositions = l.Int(convert.KeyQFormerMaxPositions)
	q.VocabSize = l.Int(convert.KeyQFormerVocabSize)
	q.LayerNormEps = l.Float32(convert.KeyQFormerLayerNormEps)
	q.TextInput = l.Bool(convert.KeyQFormerTextInput)
	in.ProjectionSize = l.Int(convert.KeyProjectionSize)
	im := &in.Image
	im.Width = l.Positive(convert.KeyImageWidth)
	im.Height = l.Positive(convert.KeyImageHeight)
	im.Resample = l.Int(convert.KeyImageResample)
	im.Mean = l.vec3(convert.KeyImageMean)
	im.Std = l.vec3(convert.KeyImageStd)
	im.RescaleFactor = l.Float32(convert.KeyImageRescaleFactor)
	im.DoResize = l.Bool(convert.KeyImageDoResize)
	im.DoRescale = l.Bool(convert.KeyImageDoRescale)
	im.DoNormalize = l.Bool(convert.KeyImageDoNormalize)
	im.DoConvertRGB = l.Bool(convert.KeyImageDoConvertRGB)
	if err := l.Err(); err != nil {
		return err
	}
	if v.HiddenSize%v.Heads != 0 || q.HiddenSize%q.Heads != 0 || v.ImageSize%v.PatchSize != 0 {
		return fmt.Errorf("%s: inconsistent sizes (hidden size not a multiple of heads, or image size of patch size)", path)
	}
	if q.EncoderHiddenSize != v.HiddenSize {
		return fmt.Errorf("%s: Q-Former encoder_hidden_size %d differs from the ViT's %d", path, q.EncoderHiddenSize, v.HiddenSize)
	}
	if q.TextInput && (q.MaxPositions <= 0 || q.VocabSize <= 0) {
		return fmt.Errorf("%s: Q-Former text input without vocab or positions", path)
	}
	if n := len(m.file.Tensors); v.Layers > n || q.Layers > n {
		// Every layer has tensors: a larger count is a corrupt header,
		// caught here before it sizes any allocation.
		return fmt.Errorf("%s: %d ViT and %d Q-Former layers, but only %d tensors", path, v.Layers, q.Layers, n)
	}
	grid := v.ImageSize / v.PatchSize
	v.Tokens = grid*grid + 1
	if vocab, ok := m.file.Strings(convert.KeyQFormerVocab); ok && len(vocab) > 0 {
		in.Vocab = vocab
		in.LowerCase, _ = m.file.Bool(convert.KeyQFormerLowerCase)
		m.wp = tokenizer.NewWordPiece(vocab, in.LowerCase)
		// CheckVisionMetadata has checked the range and the side. A file
		// converted before they were recorded reads as convert writes them
		// now: InstructBLIP's as LAVIS (128, left), others by the
		// position embeddings, cut at the end (BERT's tokenizer).
		in.MaxTextTokens = q.MaxPositions
		instruct := in.Family == "instructblip"
		if instruct {
			in.MaxTextTokens = min(convert.QFormerMaxLength, q.MaxPositions)
		}
		if n, ok := m.file.Int(convert.KeyQFormerMaxLength); ok {
			in.MaxTextTokens = n
		}
		side := l.optString(convert.KeyQFormerTruncationSide)
		in.TruncateLeft = side == "left" || side == "" && instruct
	}

	D, Dff, N, P, C := v.HiddenSize, v.IntermediateSize, v.Tokens, v.PatchSize, v.Channels
	m.patch = l.linear(convert.TensorPatchEmbd, D, C*P*P)
	m.classEmb = l.F32Tensor(convert.TensorClassEmbd, D)
	m.posEmb = l.F32Tensor(convert.TensorPosEmbd, N, D)
	m.vit = make([]vitLayer, v.Layers)
	for i := range m.vit {
		n := convert.ViTBlock(i)
		L := &m.vit[i]
		L.ln1 = l.norm(n.LN1, D)
		L.qkv.w = l.Matrix(n.QKV+".weight", 3*D, D)
		if _, _, ok := m.file.Tensor(n.QKV + ".bias"); ok {
			L.qkv.b = l.F32Tensor(n.QKV+".bias", 3*D)
		}
		L.out = l.linear(n.AttnOut, D, D)
		L.ln2 = l.norm(n.LN2, D)
		L.ffnUp = l.linear(n.FFNUp, Dff, D)
		L.ffnDown = l.linear(n.FFNDown, D, Dff)
	}
	m.postLN = l.norm(convert.TensorPostLN, D)

	H, Hff, Q, E := q.HiddenSize, q.IntermediateSize, in.NumQueryTokens, q.EncoderHiddenSize
	m.query = l.F32Tensor(convert.TensorQueryTokens, Q, H)
	m.embLN = l.norm(convert.TensorQEmbdLN, H)
	if q.TextInput {
		m.wordEmb = l.F32Tensor(convert.TensorQWordEmbd, q.VocabSize, H)
		m.posText = l.F32Tensor(convert.TensorQPosEmbd, q.MaxPositions, H)
	}
	m.qf = make([]qformerLayer, q.Layers)
	for i := range m.qf {
		n := convert.QFormerBlock(i)
		L := &m.qf[i]
		L.q = l.linear(n.AttnQ, H, H)
		L.k = l.linear(n.AttnK, H, H)
		L.v = l.linear(n.AttnV, H, H)
		L.out = l.linear(n.AttnOut, H, H)
		L.attnLN = l.norm(n.AttnLN, H)
		if i%q.CrossAttentionFreq == 0 {
			L.hasCross = true
			L.crossQ = l.linear(n.CrossQ, H, H)
			L.crossK = l.linear(n.CrossK, H, E)
			L.crossV = l.linear(n.CrossV, H, E)
			L.crossOut = l.linear(n.CrossOut, H, H)
			L.crossLN = l.norm(n.CrossLN, H)
		}
		L.upQ = l.linear(n.FFNUpQuery, Hff, H)
		L.downQ = l.linear(n.FFNDownQuery, H, Hff)
		L.lnQ = l.norm(n.FFNLNQuery, H)
		if q.TextInput {
			L.up = l.linear(n.FFNUp, Hff, H)
			L.down = l.linear(n.FFNDown, H, Hff)
			L.ln = l.norm(n.FFNLN, H)
		}
	}
	if in.ProjectionSize > 0 {
		p := l.linear(convert.TensorProjection, in.ProjectionSize, H)
		m.proj = &p
	}
	m.loadRetrieval(l)
	if err := l.Err(); err != nil {
		return err
	}
	m.allocBuffers()
	return nil
}

// allocBuffers sizes every activation for the largest input: all image
// tokens, and the queries plus the longest instruction the position
// embeddings allow.
func (m *Model) allocBuffers() {
	v, q := &m.info.Vision, &m.info.QFormer
	N, D, P, C := v.Tokens, v.HiddenSize, v.PatchSize, v.Channels
	b := &m.buf
	b.patches = tensor.New(N-1, C*P*P)
	b.x = tensor.New(N, D)
	b.h = tensor.New(N, D)
	b.qkv = tensor.New(N, 3*D)
	b.ctx = tensor.New(N, D)
	b.ff = tensor.New(N, v.IntermediateSize)
	if q.TextInput {
		b.maxTextTokens = q.MaxPositions
	}
	T, H := m.info.NumQueryTokens+b.maxTextTokens, q.HiddenSize
	b.qx, b.qx2, b.qh = tensor.New(T, H), tensor.New(T, H), tensor.New(T, H)
	b.qq, b.qk, b.qv, b.qctx = tensor.New(T, H), tensor.New(T, H), tensor.New(T, H), tensor.New(T, H)
	b.qff = tensor.New(T, q.IntermediateSize)
	b.ck, b.cv = tensor.New(N, H), tensor.New(N, H)
}
