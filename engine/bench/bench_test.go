package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/engine/lm/opt"
	_ "github.com/blip2chat/blip2chat/engine/lm/opt"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
)

const goldenDir = "../../testdata/golden"

// info builds a vision.Info from sizes, as Load would fill it.
func info(D, Dff, layers, image, patch, Q, H, Hff, qLayers, freq, proj int, textInput bool) *vision.Info {
	in := &vision.Info{NumQueryTokens: Q, ProjectionSize: proj}
	in.Vision.HiddenSize, in.Vision.IntermediateSize, in.Vision.Layers = D, Dff, layers
	in.Vision.ImageSize, in.Vision.PatchSize, in.Vision.Channels = image, patch, 3
	in.Vision.Tokens = (image/patch)*(image/patch) + 1
	in.QFormer.HiddenSize, in.QFormer.IntermediateSize, in.QFormer.Layers = H, Hff, qLayers
	in.QFormer.CrossAttentionFreq, in.QFormer.EncoderHiddenSize, in.QFormer.TextInput = freq, D, textInput
	return in
}

// TestFLOPsHandCount checks the counts on tiny configs counted by hand.
func TestFLOPsHandCount(t *testing.T) {
	// ViT: D=4, MLP 8, image 4, patch 2: 4 patches + class = N=5 tokens,
	// patch vectors of 3*2*2 = 12 values.
	//   patch embedding  2 * 4 patches * 12 * 4        =  384
	//   per layer: qkv   2 * 5 * 4 * 12                =  480
	//              out   2 * 5 * 4 * 4                 =  160
	//              fc1   2 * 5 * 4 * 8                 =  320
	//              fc2   2 * 5 * 8 * 4                 =  320
	//              QK^T  2 * 5 * 5 * 4 (all heads)     =  200
	//              PV    2 * 5 * 5 * 4                 =  200
	//   one layer: 384 + 1680 = 2064; two: 384 + 3360 = 3744
	for _, tc := range []struct {
		layers int
		want   int64
	}{{0, 384}, {1, 2064}, {2, 3744}} {
		in := info(4, 8, tc.layers, 4, 2, 2, 4, 8, 2, 2, 6, false)
		if got := ViTFLOPs(in); got != tc.want {
			t.Errorf("ViT, %d layers: %d FLOPs, hand count %d", tc.layers, got, tc.want)
		}
	}
	// Q-Former: Q=2 queries, H=4, MLP 8, 2 layers, cross-attention in
	// layer 0 to N=5 image tokens of width 4, projection to 6.
	//   self-attention (T rows): q,k,v,out  4 * 2*T*4*4 = 128 T
	//                            QK^T + PV  2 * 2*T*T*4 = 16 T^2
	//   feed-forward (T rows):   up + down  2 * 2*T*4*8 = 128 T
	//   cross (layer 0):  q + out 2 * 2*2*4*4 = 128;  k + v 2 * 2*5*4*4 = 320;
	//                     QK^T + PV 2 * 2*2*5*4 = 160;  total 608
	//   projection:       2*2*4*6 = 96
	// T=2 (BLIP-2):  per layer 256+64+256 = 576; 2*576 + 608 + 96 = 1856
	// T=5 (3 instruction tokens): per layer 640+400+640 = 1680; 3360 + 608 + 96 = 4064
	for _, tc := range []struct {
		text int
		want int64
	}{{0, 1856}, {3, 4064}} {
		in := info(4, 8, 1, 4, 2, 2, 4, 8, 2, 2, 6, tc.text > 0)
		if got := QFormerFLOPs(in, tc.text); got != tc.want {
			t.Errorf("Q-Former, %d text tokens: %d FLOPs, hand count %d", tc.text, got, tc.want)
		}
	}
}

// TestFLOPsRealShapes: at BLIP-2's sizes the counts are those of the
// PyTorch baseline (/work/shared/bench/torch_blip2_vision.py: vit_flops()
// and qformer_flops() print 520719260160 and 12873695232), so that the
// GFLOP/s of both sides compare.
func TestFLOPsRealShapes(t *testing.T) {
	in := info(1408, 6144, 39, 224, 14, 32, 768, 3072, 12, 2, 2560, false)
	if got := ViTFLOPs(in); got != 520719260160 {
		t.Errorf("ViT-g: %d FLOPs, PyTorch baseline counts 520719260160", got)
	}
	if got := QFormerFLOPs(in, 0); got != 12873695232 {
		t.Errorf("Q-Former + projection: %d FLOPs, PyTorch baseline counts 12873695232", got)
	}
}

func durations(ms ...int) []time.Duration {
	var d []time.Duration
	for _, m := range ms {
		d = append(d, time.Duration(m)*time.Millisecond)
	}
	return d
}

func TestStageStatistics(t *testing.T) {
	for _, tc := range []struct {
		name      string
		s         Stage
		median    time.Duration
		min       time.Duration
		gflops    float64
		tps       float64
		maxAllocs int64
	}{
		{"odd", Stage{Times: durations(300, 100, 200), FLOPs: 4e9, Allocs: []uint64{2, 5, 2}}, 200 * time.Millisecond, 100 * time.Millisecond, 20, 0, 5},
		{"even", Stage{Times: durations(400, 100, 200, 300), Tokens: 50}, 250 * time.Millisecond, 100 * time.Millisecond, 0, 200, -1},
		{"one", Stage{Times: durations(500), FLOPs: 1e9, Tokens: 1}, 500 * time.Millisecond, 500 * time.Millisecond, 2, 2, -1},
		{"empty", Stage{FLOPs: 1e9}, 0, 0, 0, 0, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			if got := s.Median(); got != tc.median {
				t.Errorf("median %v, want %v", got, tc.median)
			}
			if got := s.Min(); got != tc.min {
				t.Errorf("min %v, want %v", got, tc.min)
			}
			if got := s.GFLOPS(); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", tc.gflops) {
				t.Errorf("GFLOP/s %v, want %v", got, tc.gflops)
			}
			if got := s.TokensPerSecond(); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", tc.tps) {
				t.Errorf("tokens/s %v, want %v", got, tc.tps)
			}
			if got := s.MaxAllocs(); got != tc.maxAllocs {
				t.Errorf("max allocs %v, want %v", got, tc.maxAllocs)
			}
		})
	}
	s := Stage{Times: durations(3, 1, 2)}
	s.Median()
	if s.Times[0] != 3*time.Millisecond {
		t.Error("Median reordered the runs")
	}
}

func sampleReport() *Report {
	return &Report{Model: "synthetic vision", VisionType: "f16", Threads: 2, Runs: 3, Features: "avx2", PeakRSS: 3 << 29, LoadAvg: []float64{1.5, 2, 2.25},
		Stages: []*Stage{
			{Name: StageViT, Times: durations(4000, 4200, 4100), FLOPs: 520719260160, Allocs: []uint64{2, 2, 2}, CPU: durations(7000, 8000, 7500)},
			{Name: StageQFormer, Times: durations(150, 160, 155), FLOPs: 12873695232, Allocs: []uint64{1, 1, 1}},
			{Name: StageDecode, Times: durations(8000, 8000, 8000), Tokens: 64},
		}}
}

// TestReportJSON: one line, in the documented shape.
func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 || !strings.HasSuffix(b.String(), "\n") {
		t.Errorf("not one line: %q", b.String())
	}
	var got struct {
		Stages map[string]struct {
			MedianS, MinS, GFLOPS, TokensPerS float64
			Allocs                            *int64 `json:"allocs_per_run"`
			Runs                              []float64
		} `json:"stages"`
		PeakRSSMiB float64 `json:"peak_rss_mib"`
		Threads    int
	}
	// Field names as documented: median_s, min_s, gflops, tokens_per_s.
	raw := b.String()
	for _, k := range []string{`"median_s":4.1`, `"min_s":4`, `"gflops":127,`, `"tokens_per_s":8`, `"peak_rss_mib":1536`, `"runs_s":[4,4.2,4.1]`, `"loadavg":[1.5,2,2.25]`, `"cpu_s":7.5`} {
		if !strings.Contains(raw, k) {
			t.Errorf("%s missing from %s", k, raw)
		}
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Stages) != 3 || got.Threads != 2 || got.PeakRSSMiB != 1536 {
		t.Errorf("decoded %+v", got)
	}
	if a := got.Stages["vit"].Allocs; a == nil || *a != 2 {
		t.Errorf("vit allocs %v", a)
	}
	if got.Stages["decode"].Allocs != nil {
		t.Error("decode has allocs although none were measured")
	}
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, want := range []string{"synthetic vision", "vision weights f16", "2 threads", "3 runs",
		"vit", "4.100 s", "4.000 s", "7.500 s", "127.0", "qformer", "155.00 ms", "decode", "8.0", "peak RSS 1536 MiB", "load average 1.50 2.00 2.25"} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}

// tinyModel converts a golden checkpoint (f32) into a temp model folder.
func tinyModel(t *testing.T, name string, visionOnly bool) string {
	t.Helper()
	dir := t.TempDir()
	o := convert.Options{VisionType: "f32", LLMType: "f32", VisionOnly: visionOnly}
	if _, err := convert.Convert(context.Background(), filepath.Join(goldenDir, name, "hf"), dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadVision(t *testing.T, dir string) *vision.Model {
	t.Helper()
	m, err := vision.Load(filepath.Join(dir, convert.VisionFile), vision.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func checkStage(t *testing.T, s *Stage, name string, runs int) {
	t.Helper()
	if s.Name != name || len(s.Times) != runs {
		t.Fatalf("stage %q with %d runs, want %q with %d", s.Name, len(s.Times), name, runs)
	}
	for _, d := range s.Times {
		if d <= 0 {
			t.Errorf("%s: run of %v", name, d)
		}
	}
}

// TestVision: the two vision stages on the tiny golden models, with their
// FLOP counts and allocation counts.
func TestVision(t *testing.T) {
	for _, name := range []string{"blip2-opt", "instructblip-llama"} {
		t.Run(name, func(t *testing.T) {
			m := loadVision(t, tinyModel(t, name, true))
			in := m.Info()
			ids := DefaultInstruction(in)
			if in.QFormer.TextInput != (len(ids) > 0) {
				t.Fatalf("instruction %v for text input %v", ids, in.QFormer.TextInput)
			}
			st, err := Vision(m, VisionOptions{Runs: 3, InstructionIDs: ids})
			if err != nil {
				t.Fatal(err)
			}
			if len(st) != 2 {
				t.Fatalf("%d stages", len(st))
			}
			checkStage(t, st[0], StageViT, 3)
			checkStage(t, st[1], StageQFormer, 3)
			if st[0].FLOPs != ViTFLOPs(in) || st[1].FLOPs != QFormerFLOPs(in, len(ids)) || st[1].FLOPs <= QFormerFLOPs(in, 0)-1 {
				t.Errorf("FLOPs %d %d", st[0].FLOPs, st[1].FLOPs)
			}
			if len(st[0].Allocs) != 3 || len(st[1].Allocs) != 3 {
				t.Errorf("allocs %v %v", st[0].Allocs, st[1].Allocs)
			}
			t.Logf("allocations per run: vit %v, qformer %v", st[0].Allocs, st[1].Allocs)
		})
	}
}

// TestPipelineOPT runs the whole pipeline on the tiny OPT model.
func TestPipelineOPT(t *testing.T) {
	dir := tinyModel(t, "blip2-opt", false)
	vm := loadVision(t, dir)
	m, err := opt.Open(filepath.Join(dir, "llm.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := Pipeline(context.Background(), vm, m, LMOptions{VisionOptions: VisionOptions{Runs: 2}, PromptTokens: 32, DecodeTokens: 16})
	if err != nil {
		t.Fatal(err)
	}
	ttft := []string{StagePreprocess, StageViT, StageQFormer, StageProjection, StageTokenize, StagePrefill, StageFirstToken}
	names := append(ttft, StageDecode, StageTTFT, StageBeam)
	if len(st) != len(names) {
		t.Fatalf("%d stages", len(st))
	}
	stage := map[string]*Stage{}
	for i, n := range names {
		checkStage(t, st[i], n, 2)
		stage[n] = st[i]
	}
	if stage[StageBeam].Tokens != 15 {
		t.Errorf("beam search: %d steps timed, want the 15 after the first", stage[StageBeam].Tokens)
	}
	in := vm.Info()
	Q := in.NumQueryTokens
	if stage[StagePrefill].Tokens != Q+32 || stage[StageDecode].Tokens != 16 || stage[StageTokenize].Tokens != 32 {
		t.Errorf("prefill %d tokens, decode %d, tokenize %d", stage[StagePrefill].Tokens, stage[StageDecode].Tokens, stage[StageTokenize].Tokens)
	}
	if stage[StageQFormer].FLOPs+stage[StageProjection].FLOPs != QFormerFLOPs(in, 0) || stage[StageProjection].FLOPs != 2*int64(Q*in.QFormer.HiddenSize*in.ProjectionSize) {
		t.Errorf("FLOPs: qformer %d, projection %d", stage[StageQFormer].FLOPs, stage[StageProjection].FLOPs)
	}
	for r := 0; r < 2; r++ {
		var sum time.Duration
		for _, n := range ttft {
			sum += stage[n].Times[r]
		}
		if stage[StageTTFT].Times[r] != sum {
			t.Errorf("run %d: ttft %v, stages sum to %v", r, stage[StageTTFT].Times[r], sum)
		}
		var cpu time.Duration
		for _, n := range ttft {
			cpu += stage[n].CPU[r]
		}
		if stage[StageTTFT].CPU[r] != cpu || (runtime.GOOS == "linux" && stage[StageViT].CPU[r] <= 0) {
			t.Errorf("run %d: ttft CPU %v, stages sum to %v (vit %v)", r, stage[StageTTFT].CPU[r], cpu, stage[StageViT].CPU[r])
		}
	}
}

// TestPhotoJPEG: the stand-in photo decodes to 640x480 and differs with
// the seed.
func TestPhotoJPEG(t *testing.T) {
	a, err := PhotoJPEG(1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := PhotoJPEG(2)
	img, err := imageprep.Decode(bytes.NewReader(a), "photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if sz := img.Bounds().Size(); sz.X != 640 || sz.Y != 480 || bytes.Equal(a, b) {
		t.Errorf("size %v; seeds 1 and 2 give the same bytes: %v", sz, bytes.Equal(a, b))
	}
}

// fakeLM is an encoder-decoder model that records what it is given.
type fakeLM struct {
	nEmbd int
	calls []string
}

func (m *fakeLM) Info() lm.Info {
	return lm.Info{Arch: "t5", NCtx: 512, NCtxTrain: 512, NEmbd: m.nEmbd, NVocab: 10, EncoderDecoder: true, BOS: -1, EOS: 1, DecoderStart: 0}
}

// Tokenize gives a token a word: 5, 6, 7, 5, ...
func (m *fakeLM) Tokenize(text string, _ bool) ([]int32, error) {
	var ids []int32
	for i := range strings.Fields(text) {
		ids = append(ids, int32(5+i%3))
	}
	return ids, nil
}
func (m *fakeLM) TokenBytes(int32) []byte { return nil }
func (m *fakeLM) Piece(int32) string      { return "" }
func (m *fakeLM) IsEOG(id int32) bool     { return id == 1 }
func (m *fakeLM) TokenEmbeddings(ids []int32) ([]float32, error) {
	m.calls = append(m.calls, fmt.Sprintf("embed %v", ids))
	return make([]float32, len(ids)*m.nEmbd), nil
}
func (m *fakeLM) NewContext(o lm.ContextOptions) (lm.Context, error) {
	m.calls = append(m.calls, fmt.Sprintf("context %d threads %d", o.NCtx, o.Threads))
	return &fakeContext{m: m, nCtx: o.NCtx}, nil
}
func (m *fakeLM) Close() error { return nil }

type fakeContext struct {
	m    *fakeLM
	nCtx int
	pos  int
}

func (c *fakeContext) NCtx() int { return c.nCtx }
func (c *fakeContext) Pos() int  { return c.pos }
func (c *fakeContext) AppendEmbeddings([]float32, int, bool) error {
	return fmt.Errorf("encoder-decoder model given embeddings on the decoder side")
}
func (c *fakeContext) AppendTokens(ids []int32, _ bool) error {
	c.m.calls = append(c.m.calls, fmt.Sprintf("tokens %v", ids))
	c.pos += len(ids)
	return nil
}

// Logits make the greedy answer 3, 4, 5, ... after the decoder start.
func (c *fakeContext) Logits(int) []float32 {
	l := make([]float32, 10)
	l[3+(c.pos-1)%5] = 1
	return l
}
func (c *fakeContext) Truncate(pos int) error {
	return fmt.Errorf("encoder-decoder model truncated")
}
func (c *fakeContext) Encode(rows []float32, n int) error {
	if len(rows) != n*c.m.nEmbd {
		return fmt.Errorf("encode: %d values for %d rows", len(rows), n)
	}
	c.m.calls = append(c.m.calls, fmt.Sprintf("encode %d", n))
	c.pos = 0
	return nil
}
func (c *fakeContext) Stats() lm.Stats { return lm.Stats{} }
func (c *fakeContext) Close() error    { return nil }

// TestPipelineEncoderDecoder: T5's path encodes soft tokens and prompt
// together, then starts the decoder, then decodes exactly DecodeTokens.
func TestPipelineEncoderDecoder(t *testing.T) {
	vm := loadVision(t, tinyModel(t, "blip2-t5", true))
	Q, E := vm.Info().NumQueryTokens, vm.Info().ProjectionSize
	m := &fakeLM{nEmbd: E}
	st, err := Pipeline(context.Background(), vm, m, LMOptions{VisionOptions: VisionOptions{Runs: 1}, PromptTokens: 4, DecodeTokens: 3, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 9 {
		t.Fatalf("%d stages", len(st))
	}
	run := []string{"embed [5 6 7 5]", fmt.Sprintf("encode %d", Q+4), "tokens [0]", "tokens [3]", "tokens [4]", "tokens [5]"}
	// The second context is beam search's, unused: this model's contexts
	// hold one sequence (no decode_beam5 stage).
	ctx := fmt.Sprintf("context %d threads 2", Q+4+3+8)
	want := append([]string{ctx, ctx}, append(run, run...)...) // warm-up + 1 run
	if strings.Join(m.calls, "; ") != strings.Join(want, "; ") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(m.calls, "; "), strings.Join(want, "; "))
	}

	// A language model of another width is refused.
	if _, err := Pipeline(context.Background(), vm, &fakeLM{nEmbd: E + 1}, LMOptions{}); err == nil || !strings.Contains(err.Error(), "projects to") {
		t.Errorf("width mismatch: %v", err)
	}
}

// TestPeakRSS: touching memory raises the peak; a reset brings it back
// near the current resident size.
func TestPeakRSS(t *testing.T) {
	before, err := PeakRSS()
	if err != nil {
		t.Skip(err)
	}
	if before <= 0 {
		t.Fatalf("peak RSS %d", before)
	}
	const n = 256 << 20
	buf := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		buf[i] = 1
	}
	after, err := PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if after < n {
		t.Errorf("peak RSS %d MiB after touching %d MiB (was %d MiB)", after>>20, n>>20, before>>20)
	}
	runtime.KeepAlive(buf)
	buf = nil
	debug.FreeOSMemory()
	if err := ResetPeakRSS(); err != nil {
		t.Skipf("reset: %v", err)
	}
	reset, err := PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if reset > after-n/2 {
		t.Errorf("peak RSS %d MiB after the buffer was freed and the peak reset (was %d MiB)", reset>>20, after>>20)
	}
	t.Logf("peak RSS: %d MiB, %d MiB after touching 256 MiB, %d MiB after freeing and reset", before>>20, after>>20, reset>>20)
}

func TestLoadAverage(t *testing.T) {
	l, err := LoadAverage()
	if err != nil {
		t.Skip(err)
	}
	if len(l) != 3 || l[0] < 0 || l[1] < 0 || l[2] < 0 {
		t.Errorf("load average %v", l)
	}
}
