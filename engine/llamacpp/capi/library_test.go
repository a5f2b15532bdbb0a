package capi

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
)

// testLog collects llama.cpp's log for the whole test process (the library
// is loaded once).
var testLog syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLib(t *testing.T) *Library {
	t.Helper()
	dir := llamatest.LibDir(t)
	l, err := Load(Options{Dir: dir, Log: &testLog})
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return l
}

func TestLoad(t *testing.T) {
	dir := llamatest.LibDir(t)
	l := testLib(t)
	abs, _ := filepath.Abs(dir)
	if loc := l.Location(); loc.Dir != abs || loc.Source != SourceFlag {
		t.Errorf("location %+v, want %s by %s", loc, abs, SourceFlag)
	}
	in := l.Info()
	t.Logf("llama %s, ggml %s, %s, devices %+v", in.Version, in.GGMLVersion, in.SystemInfo, in.Devices)
	if !strings.HasPrefix(in.Version, "0.4.0") {
		t.Errorf("version %q, want 0.4.0", in.Version)
	}
	if in.GGMLVersion == "" {
		t.Error("no ggml version")
	}
	if !strings.Contains(in.SystemInfo, "CPU") {
		t.Errorf("system info %q names no CPU backend", in.SystemInfo)
	}
	cpu := false
	for _, d := range in.Devices {
		cpu = cpu || d.Name == "CPU"
	}
	if !cpu {
		t.Errorf("devices %+v: no CPU", in.Devices)
	}
	// The backend loader logs through our callback, not to stderr.
	if log := testLog.String(); !strings.Contains(log, "CPU backend") {
		t.Errorf("log does not mention loading the CPU backend: %q", log)
	}

	// Load is once per process: the same folder gives the same Library, a
	// different one an error.
	again, err := Load(Options{Dir: dir})
	if err != nil || again != l {
		t.Errorf("second Load = %p, %v; want %p", again, err, l)
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, LibraryFile), nil, 0o644)
	if _, err := Load(Options{Dir: other}); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("Load of a second folder: %v, want 'already loaded'", err)
	}
	// A wrong folder fails in Locate, before anything is opened.
	if _, err := Load(Options{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no llama.cpp library in") {
		t.Errorf("Load of an empty folder: %v", err)
	}
}

// TestDefaultParams checks that structs returned by value arrive intact:
// the expected values are llama.cpp v0.4.0's defaults (src/llama-context.cpp,
// llama-model.cpp, llama-quant.cpp).
func TestDefaultParams(t *testing.T) {
	l := testLib(t)
	mp := l.DefaultModelParams()
	wantM := ModelParams{NGPULayers: -1, SplitMode: 1, LoadMode: LoadModeAuto, LazyMode: 1, UseExtraBufts: true}
	if mp != wantM {
		t.Errorf("model params\n got %+v\nwant %+v", mp, wantM)
	}
	cp := l.DefaultContextParams()
	wantC := ContextParams{
		NCtx: 512, NBatch: 2048, NUbatch: 512, NSeqMax: 1, NOutputsMaxPerSeq: 1, NThreads: 4, NThreadsBatch: 4,
		RopeScalingType: -1, PoolingType: -1, AttentionType: -1, FlashAttnType: -1,
		YarnExtFactor: -1, YarnAttnFactor: -1, YarnBetaFast: -1, YarnBetaSlow: -1, DefragThold: -1,
		TypeK: 1, TypeV: 1, OffloadKQV: true, NoPerf: true, OpOffload: true, SwaFull: true,
	}
	if cp != wantC {
		t.Errorf("context params\n got %+v\nwant %+v", cp, wantC)
	}
	qp := l.DefaultQuantizeParams()
	wantQ := QuantizeParams{FType: FTypeMostlyQ8_0, OutputTensorType: 43, TokenEmbeddingType: 43,
		QuantizeOutputTensor: true, MaxBufSize: 8 << 30}
	if qp != wantQ {
		t.Errorf("quantize params\n got %+v\nwant %+v", qp, wantQ)
	}
	if sp := l.c.llama_sampler_chain_default_params(); sp != (SamplerChainParams{NoPerf: true}) {
		t.Errorf("sampler chain params %+v, want NoPerf", sp)
	}
}

func TestLoadModelErrors(t *testing.T) {
	l := testLib(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("GGUF but not really"), 0o644)
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(dir, "missing.gguf"), "missing.gguf"},
		{dir, "not a regular file"},
		{bad, bad + ": unsupported GGUF version"},
	} {
		_, err := l.LoadModel(tc.path, l.DefaultModelParams())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LoadModel(%s) = %v, want %q", tc.path, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
	}
	if _, err := l.LoadModel(filepath.Join(dir, "missing.gguf"), l.DefaultModelParams()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadModel of a missing file: %v, want a not-exist error", err)
	}
}
