//go:build amd64 || arm64

package capi

import (
	"reflect"
	"testing"
	"unsafe"
)

// The expected sizes and offsets below were measured once with gcc (offsetof)
// from the real v0.4.0 headers:
//
//	gcc -I llama.cpp/include -I llama.cpp/ggml/include off.c && ./a.out
//
// where off.c prints sizeof(struct X) and offsetof(struct X, field) for every
// field of llama_batch, llama_model_params, llama_context_params,
// and llama_model_quantize_params (x86-64 Linux;
// the LP64 arm64 ABIs give the same layout for these field types). They are
// constants so that this test needs neither gcc nor the headers.
type fieldOff struct {
	name string
	off  uintptr
}

type layout struct {
	typ    reflect.Type
	size   uintptr
	fields []fieldOff // every field, in order
}

var layouts = []layout{
	{reflect.TypeFor[cBatch](), 56, []fieldOff{
		{"NTokens", 0}, {"Token", 8}, {"Embd", 16}, {"Pos", 24}, {"NSeqID", 32}, {"SeqID", 40}, {"Logits", 48},
	}},
	{reflect.TypeFor[ModelParams](), 80, []fieldOff{
		{"Devices", 0}, {"TensorBuftOverrides", 8}, {"NGPULayers", 16}, {"SplitMode", 20}, {"LoadMode", 24},
		{"LazyMode", 28}, {"MainGPU", 32}, {"TensorSplit", 40}, {"ProgressCallback", 48},
		{"ProgressCallbackUserData", 56}, {"KVOverrides", 64}, {"VocabOnly", 72}, {"CheckTensors", 73},
		{"UseExtraBufts", 74}, {"NoHost", 75}, {"NoAlloc", 76}, {"LoadMTP", 77},
	}},
	{reflect.TypeFor[ContextParams](), 160, []fieldOff{
		{"NCtx", 0}, {"NBatch", 4}, {"NUbatch", 8}, {"NSeqMax", 12}, {"NRsSeq", 16}, {"NOutputsMax", 20},
		{"NOutputsMaxPerSeq", 24}, {"NThreads", 28}, {"NThreadsBatch", 32}, {"CtxType", 36},
		{"RopeScalingType", 40}, {"PoolingType", 44}, {"AttentionType", 48}, {"FlashAttnType", 52},
		{"RopeFreqBase", 56}, {"RopeFreqScale", 60}, {"YarnExtFactor", 64}, {"YarnAttnFactor", 68},
		{"YarnBetaFast", 72}, {"YarnBetaSlow", 76}, {"YarnOrigCtx", 80}, {"DefragThold", 84}, {"CbEval", 88},
		{"CbEvalUserData", 96}, {"TypeK", 104}, {"TypeV", 108}, {"AbortCallback", 112},
		{"AbortCallbackData", 120}, {"Embeddings", 128}, {"OffloadKQV", 129}, {"NoPerf", 130},
		{"OpOffload", 131}, {"SwaFull", 132}, {"KVUnified", 133}, {"Samplers", 136}, {"NSamplers", 144},
		{"CtxOther", 152},
	}},
	{reflect.TypeFor[QuantizeParams](), 64, []fieldOff{
		{"NThread", 0}, {"FType", 4}, {"OutputTensorType", 8}, {"TokenEmbeddingType", 12},
		{"AllowRequantize", 16}, {"QuantizeOutputTensor", 17}, {"OnlyCopy", 18}, {"Pure", 19},
		{"KeepSplit", 20}, {"DryRun", 21}, {"Imatrix", 24}, {"KVOverrides", 32}, {"TTOverrides", 40},
		{"PruneLayers", 48}, {"MaxBufSize", 56},
	}},
}

func TestStructLayout(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.typ.Name(), func(t *testing.T) {
			if l.typ.Size() != l.size {
				t.Errorf("size %d, C has %d", l.typ.Size(), l.size)
			}
			if l.typ.NumField() != len(l.fields) {
				t.Fatalf("%d fields, C has %d", l.typ.NumField(), len(l.fields))
			}
			for i, want := range l.fields {
				f := l.typ.Field(i)
				if f.Name != want.name || f.Offset != want.off {
					t.Errorf("field %d: %s at %d, C has %s at %d", i, f.Name, f.Offset, want.name, want.off)
				}
			}
		})
	}
}

// TestStructOffsetsSet pins, with unsafe.Offsetof, the fields blip2chat
// writes (the same numbers as above, spelled so a renamed field fails to
// compile rather than silently moving).
func TestStructOffsetsSet(t *testing.T) {
	var b cBatch
	var m ModelParams
	var c ContextParams
	var q QuantizeParams
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"llama_batch.n_tokens", unsafe.Offsetof(b.NTokens), 0},
		{"llama_batch.token", unsafe.Offsetof(b.Token), 8},
		{"llama_batch.embd", unsafe.Offsetof(b.Embd), 16},
		{"llama_batch.pos", unsafe.Offsetof(b.Pos), 24},
		{"llama_batch.n_seq_id", unsafe.Offsetof(b.NSeqID), 32},
		{"llama_batch.seq_id", unsafe.Offsetof(b.SeqID), 40},
		{"llama_batch.logits", unsafe.Offsetof(b.Logits), 48},
		{"llama_model_params.n_gpu_layers", unsafe.Offsetof(m.NGPULayers), 16},
		{"llama_model_params.load_mode", unsafe.Offsetof(m.LoadMode), 24},
		{"llama_model_params.vocab_only", unsafe.Offsetof(m.VocabOnly), 72},
		{"llama_model_params.check_tensors", unsafe.Offsetof(m.CheckTensors), 73},
		{"llama_context_params.n_ctx", unsafe.Offsetof(c.NCtx), 0},
		{"llama_context_params.n_batch", unsafe.Offsetof(c.NBatch), 4},
		{"llama_context_params.n_ubatch", unsafe.Offsetof(c.NUbatch), 8},
		{"llama_context_params.n_seq_max", unsafe.Offsetof(c.NSeqMax), 12},
		{"llama_context_params.n_outputs_max", unsafe.Offsetof(c.NOutputsMax), 20},
		{"llama_context_params.n_threads", unsafe.Offsetof(c.NThreads), 28},
		{"llama_context_params.n_threads_batch", unsafe.Offsetof(c.NThreadsBatch), 32},
		{"llama_context_params.flash_attn_type", unsafe.Offsetof(c.FlashAttnType), 52},
		{"llama_context_params.type_k", unsafe.Offsetof(c.TypeK), 104},
		{"llama_context_params.embeddings", unsafe.Offsetof(c.Embeddings), 128},
		{"llama_context_params.no_perf", unsafe.Offsetof(c.NoPerf), 130},
		{"llama_model_quantize_params.nthread", unsafe.Offsetof(q.NThread), 0},
		{"llama_model_quantize_params.ftype", unsafe.Offsetof(q.FType), 4},
		{"llama_model_quantize_params.allow_requantize", unsafe.Offsetof(q.AllowRequantize), 16},
		{"llama_model_quantize_params.quantize_output_tensor", unsafe.Offsetof(q.QuantizeOutputTensor), 17},
		{"llama_model_quantize_params.pure", unsafe.Offsetof(q.Pure), 19},
	} {
		if tc.got != tc.want {
			t.Errorf("%s at %d, C has %d", tc.name, tc.got, tc.want)
		}
	}
}
