package capi

import "unsafe"

// api holds the C functions of llama.cpp v0.4.0 that blip2chat calls, bound
// with purego. Handles (llama_model*, llama_context*, llama_vocab*,
// llama_sampler*, llama_memory_t) are C memory and kept as uintptr; Go memory
// is only lent to C for the length of a call. Field names are the C names so
// each signature can be checked against llama.h.
type api struct {
	// ggml (libggml, libggml-base)
	ggml_backend_load_all_from_path func(dir string)
	ggml_backend_load_all           func()
	ggml_backend_dev_count          func() uintptr
	ggml_backend_dev_get            func(i uintptr) uintptr
	ggml_backend_dev_name           func(dev uintptr) string
	ggml_backend_dev_description    func(dev uintptr) string
	ggml_backend_dev_type           func(dev uintptr) int32
	ggml_backend_dev_memory         func(dev uintptr, free, total *uintptr)
	ggml_backend_reg_count          func() uintptr
	ggml_backend_reg_get            func(i uintptr) uintptr
	ggml_backend_reg_name           func(reg uintptr) string
	ggml_backend_reg_dev_count      func(reg uintptr) uintptr
	ggml_version                    func() string
	ggml_commit                     func() string

	// library
	llama_version              func() string
	llama_backend_init         func()
	llama_log_set              func(cb uintptr, user uintptr)
	llama_print_system_info    func() string
	llama_supports_gpu_offload func() bool

	// defaults
	llama_model_default_params          func() ModelParams
	llama_context_default_params        func() ContextParams
	llama_sampler_chain_default_params  func() SamplerChainParams
	llama_model_quantize_default_params func() QuantizeParams

	// model
	llama_model_load_from_file      func(path string, p ModelParams) uintptr
	llama_model_free                func(m uintptr)
	llama_model_get_vocab           func(m uintptr) uintptr
	llama_model_n_embd              func(m uintptr) int32
	llama_model_n_embd_inp          func(m uintptr) int32
	llama_model_n_ctx_train         func(m uintptr) int32
	llama_model_n_layer             func(m uintptr) int32
	llama_model_has_encoder         func(m uintptr) bool
	llama_model_has_decoder         func(m uintptr) bool
	llama_model_decoder_start_token func(m uintptr) int32
	llama_model_desc                func(m uintptr, buf *byte, size uintptr) int32
	llama_model_meta_val_str        func(m uintptr, key string, buf *byte, size uintptr) int32
	llama_model_quantize            func(in, out string, p *QuantizeParams) uint32

	// context
	llama_init_from_model func(m uintptr, p ContextParams) uintptr
	llama_free            func(c uintptr)
	llama_n_ctx           func(c uintptr) uint32
	llama_n_batch         func(c uintptr) uint32
	llama_n_ubatch        func(c uintptr) uint32
	llama_n_seq_max       func(c uintptr) uint32
	llama_set_n_threads   func(c uintptr, n, nBatch int32)
	llama_encode          func(c uintptr, b cBatch) int32
	llama_decode          func(c uintptr, b cBatch) int32
	llama_get_logits_ith  func(c uintptr, i int32) *float32

	// memory (KV cache)
	llama_get_memory         func(c uintptr) uintptr
	llama_memory_clear       func(mem uintptr, data bool)
	llama_memory_seq_rm      func(mem uintptr, seq, p0, p1 int32) bool
	llama_memory_seq_pos_max func(mem uintptr, seq int32) int32

	// vocab
	llama_vocab_n_tokens    func(v uintptr) int32
	llama_vocab_bos         func(v uintptr) int32
	llama_vocab_eos         func(v uintptr) int32
	llama_vocab_eot         func(v uintptr) int32
	llama_vocab_is_eog      func(v uintptr, t int32) bool
	llama_vocab_get_add_bos func(v uintptr) bool
	llama_vocab_get_add_eos func(v uintptr) bool
	llama_tokenize          func(v uintptr, text *byte, textLen int32, tokens *int32, nMax int32, addSpecial, parseSpecial bool) int32
	llama_token_to_piece    func(v uintptr, t int32, buf *byte, length int32, lstrip int32, special bool) int32

	// sampling
	llama_sampler_chain_init     func(p SamplerChainParams) uintptr
	llama_sampler_chain_add      func(chain, s uintptr)
	llama_sampler_init_greedy    func() uintptr
	llama_sampler_init_dist      func(seed uint32) uintptr
	llama_sampler_init_top_k     func(k int32) uintptr
	llama_sampler_init_top_p     func(p float32, minKeep uintptr) uintptr
	llama_sampler_init_min_p     func(p float32, minKeep uintptr) uintptr
	llama_sampler_init_temp      func(t float32) uintptr
	llama_sampler_init_penalties func(nVocab, lastN int32, repeat, freq, present float32) uintptr
	llama_sampler_sample         func(s, c uintptr, idx int32) int32
	llama_sampler_accept         func(s uintptr, t int32)
	llama_sampler_reset          func(s uintptr)
	llama_sampler_free           func(s uintptr)
}

// optional lists the symbols that may be absent without failing the load.
var optional = map[string]bool{"ggml_commit": true}

// cString copies a NUL-terminated C string (nil gives "").
func cString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}
