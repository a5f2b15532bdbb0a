package capi

// Go mirrors of the llama.h v0.4.0 structs passed by value. Field order and
// types follow llama.h exactly (C enums are int32, pointers we never set are
// uintptr); Go inserts the same padding as the C compiler on LP64 targets, and
// layout_test.go pins every size and offset against gcc's offsetof.

// ModelParams mirrors struct llama_model_params (get defaults from
// Library.DefaultModelParams).
type ModelParams struct {
	Devices                  uintptr // ggml_backend_dev_t*: NULL-terminated device list, 0 = all
	TensorBuftOverrides      uintptr // const struct llama_model_tensor_buft_override*
	NGPULayers               int32   // layers to offload; negative = all
	SplitMode                int32   // enum llama_split_mode
	LoadMode                 int32   // enum llama_load_mode (LoadMode*)
	LazyMode                 int32   // enum llama_lazy_mode
	MainGPU                  int32
	TensorSplit              uintptr // const float*
	ProgressCallback         uintptr // llama_progress_callback
	ProgressCallbackUserData uintptr
	KVOverrides              uintptr // const struct llama_model_kv_override*
	VocabOnly                bool    // load only the vocabulary, no weights
	CheckTensors             bool
	UseExtraBufts            bool
	NoHost                   bool
	NoAlloc                  bool
	LoadMTP                  bool
}

// Values of ModelParams.LoadMode (enum llama_load_mode).
const (
	LoadModeAuto  int32 = -1
	LoadModeNone  int32 = 0
	LoadModeMmap  int32 = 1
	LoadModeMlock int32 = 2
)

// ContextParams mirrors struct llama_context_params (get defaults from
// Library.DefaultContextParams).
type ContextParams struct {
	NCtx              uint32 // text context, 0 = from the model
	NBatch            uint32 // most tokens one Decode call may take
	NUbatch           uint32 // physical batch; an Encode call takes at most this many rows
	NSeqMax           uint32
	NRsSeq            uint32
	NOutputsMax       uint32 // most rows with logits per Decode, 0 = NBatch
	NOutputsMaxPerSeq uint32
	NThreads          int32
	NThreadsBatch     int32
	CtxType           int32 // enum llama_context_type
	RopeScalingType   int32 // enum llama_rope_scaling_type
	PoolingType       int32 // enum llama_pooling_type
	AttentionType     int32 // enum llama_attention_type
	FlashAttnType     int32 // enum llama_flash_attn_type
	RopeFreqBase      float32
	RopeFreqScale     float32
	YarnExtFactor     float32
	YarnAttnFactor    float32
	YarnBetaFast      float32
	YarnBetaSlow      float32
	YarnOrigCtx       uint32
	DefragThold       float32
	CbEval            uintptr // ggml_backend_sched_eval_callback
	CbEvalUserData    uintptr
	TypeK             int32 // enum ggml_type of the K cache
	TypeV             int32 // enum ggml_type of the V cache
	AbortCallback     uintptr
	AbortCallbackData uintptr
	Embeddings        bool
	OffloadKQV        bool
	NoPerf            bool
	OpOffload         bool
	SwaFull           bool
	KVUnified         bool
	Samplers          uintptr // struct llama_sampler_seq_config*
	NSamplers         uintptr // size_t
	CtxOther          uintptr // struct llama_context*
}

// QuantizeParams mirrors llama_model_quantize_params (get defaults from
// Library.DefaultQuantizeParams).
type QuantizeParams struct {
	NThread              int32 // <= 0: all hardware threads
	FType                int32 // enum llama_ftype (FType*)
	OutputTensorType     int32 // enum ggml_type
	TokenEmbeddingType   int32 // enum ggml_type
	AllowRequantize      bool
	QuantizeOutputTensor bool
	OnlyCopy             bool
	Pure                 bool
	KeepSplit            bool
	DryRun               bool
	Imatrix              uintptr // const struct llama_model_imatrix_data*
	KVOverrides          uintptr // const struct llama_model_kv_override*
	TTOverrides          uintptr // const struct llama_model_tensor_override*
	PruneLayers          uintptr // const int32_t*
	MaxBufSize           uintptr // size_t
}

// Values of QuantizeParams.FType (enum llama_ftype) that blip2chat uses.
const (
	FTypeAllF32     int32 = 0
	FTypeMostlyF16  int32 = 1
	FTypeMostlyQ8_0 int32 = 7
	FTypeQ4_K_M     int32 = 15
	FTypeQ6_K       int32 = 18
)

// cBatch mirrors struct llama_batch. Its arrays are Go memory pinned for the
// length of one call (see Context.run).
type cBatch struct {
	NTokens int32
	Token   *int32
	Embd    *float32
	Pos     *int32
	NSeqID  *int32
	SeqID   **int32
	Logits  *int8
}
