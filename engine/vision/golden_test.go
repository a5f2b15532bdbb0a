package vision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

const goldenDir = "../../testdata/golden"

// goldenCases are the reference checkpoints. blip2-t5 is the transformers-5
// layout (fused qkv bias), the others the hub layout (q_bias, v_bias).
// blip2-itm has no language projection: its Q-Former output is checked
// through the retrieval model's normalized vision_projection
// (itc_image_embeds).
var goldenCases = []struct {
	name   string
	layout string
	itm    bool
}{
	{"blip2-llama", "hub", false},
	{"blip2-t5", "transformers5", false},
	{"blip2-opt", "hub", false},
	{"instructblip-llama", "hub", false},
	{"blip2-itm", "hub", true},
}

// weightTypes are the vision weight types with the tolerance on every
// compared tensor: absolute for f32 (the goldens are O(1)), relative to the
// reference's largest magnitude for the narrow types. Measured on these
// cases (TestGolden's log, both kernel paths): f32 <= 8.9e-6 absolute,
// f16 <= 5.4e-4 relative, q8_0 <= 1.7e-2 relative with int8 activations (the ViT widths of these
// tiny models, 176 and 264, are not multiples of 32, so there q8_0 applies
// to the Q-Former and the projection and the ViT stays f16).
var weightTypes = []struct {
	name     string
	relative bool
	tol      float64
}{
	{"f32", false, 1e-4},
	{"f16", true, 2e-3},
	{"q8_0", true, 2e-2},
}

type goldenMeta struct {
	Image           string `json:"image"`
	Prompt          string `json:"prompt"`
	QFormerInputIDs []int  `json:"qformer_input_ids"`
	Layout          string `json:"layout"`
}

func readMeta(t testing.TB, name string) goldenMeta {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m goldenMeta
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s/golden.json: %v", name, err)
	}
	return m
}

// goldenTensors reads every tensor of a case's golden.safetensors.
type goldenTensors struct {
	meta    goldenMeta
	tensors map[string]safetensors.Tensor
}

func readGolden(t testing.TB, name string) goldenTensors {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(goldenDir, name, "golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	g := goldenTensors{meta: readMeta(t, name), tensors: map[string]safetensors.Tensor{}}
	for _, n := range f.Names() {
		g.tensors[n], _ = f.Tensor(n)
	}
	return g
}

func (g goldenTensors) f32(t testing.TB, name string) []float32 {
	t.Helper()
	ten, ok := g.tensors[name]
	if !ok {
		t.Fatalf("golden has no %s", name)
	}
	v, err := ten.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pixels returns the case's pixel_values. The retrieval case saves none:
// they are made from the resized image bytes as the golden script does,
// (u8/255 - mean)/std in float32, channels first.
func (g goldenTensors) pixels(t testing.TB) []float32 {
	t.Helper()
	if _, ok := g.tensors["pixel_values"]; ok {
		return g.f32(t, "pixel_values")
	}
	name := strings.TrimSuffix(g.meta.Image, filepath.Ext(g.meta.Image))
	f, err := safetensors.Open(filepath.Join(goldenDir, "images", "images.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ten, ok := f.Tensor(name + ".resized_u8")
	if !ok || len(ten.Shape) != 3 || ten.Shape[2] != 3 || ten.DType != safetensors.U8 {
		t.Fatalf("images.safetensors: no [H,W,3] uint8 %s.resized_u8", name)
	}
	mean := [3]float32{0.48145466, 0.4578275, 0.40821073}
	std := [3]float32{0.26862954, 0.26130258, 0.27577711}
	H, W := ten.Shape[0], ten.Shape[1]
	px := make([]float32, 3*H*W)
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			for c := 0; c < 3; c++ {
				v := float32(ten.Data[(y*W+x)*3+c]) / 255
				px[(c*H+y)*W+x] = (v - mean[c]) / std[c]
			}
		}
	}
	return px
}

// models converts each case once per weight type, into a folder removed
// when the tests end.
var models struct {
	sync.Mutex
	dir   string
	paths map[string]string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vision-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	models.dir, models.paths = dir, map[string]string{}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// modelPath returns the vision.gguf of a case converted with weight type wt.
func modelPath(t testing.TB, name, wt string) string {
	t.Helper()
	models.Lock()
	defer models.Unlock()
	key := name + "-" + wt
	if p, ok := models.paths[key]; ok {
		return p
	}
	out := filepath.Join(models.dir, key)
	_, err := convert.Convert(context.Background(), filepath.Join(goldenDir, name, "hf"), out,
		convert.Options{VisionType: wt, VisionOnly: true})
	if err != nil {
		t.Fatalf("convert %s (%s): %v", name, wt, err)
	}
	p := filepath.Join(out, convert.VisionFile)
	models.paths[key] = p
	return p
}

func loadModel(t testing.TB, name, wt string) *Model {
	t.Helper()
	m, err := Load(modelPath(t, name, wt), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// diff returns the largest absolute difference and the largest reference
// magnitude.
func diff(got, want []float32) (maxDiff, maxRef float64) {
	for i := range want {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	if math.IsNaN(maxDiff) {
		maxDiff = math.Inf(1)
	}
	return maxDiff, maxRef
}

// check compares got with want under the weight type's tolerance and
// returns the measured error (absolute or relative).
func check(t *testing.T, what string, got, want []float32, relative bool, tol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return math.Inf(1)
	}
	d, ref := diff(got, want)
	e := d
	if relative {
		e = d / ref
	}
	if !(e <= tol) {
		t.Errorf("%s: error %.3g > %.3g (max abs diff %.3g, max |ref| %.3g)", what, e, tol, d, ref)
	}
	return e
}

// run encodes the case's golden pixel_values (and instruction ids) and
// returns every traced activation.
func run(t *testing.T, m *Model, g goldenTensors, ids []int) (map[string][]float32, []float32, []float32) {
	t.Helper()
	got := map[string][]float32{}
	m.SetTrace(func(name string, rows, cols int, data []float32) {
		got[name] = append([]float32(nil), data...)
	})
	defer m.SetTrace(nil)
	feat, err := m.EncodeImage(context.Background(), g.pixels(t))
	if err != nil {
		t.Fatal(err)
	}
	q, err := m.QFormer(context.Background(), feat, ids)
	if err != nil {
		t.Fatal(err)
	}
	var proj []float32
	if m.Info().ProjectionSize > 0 {
		if proj, err = m.Project(q); err != nil {
			t.Fatal(err)
		}
	}
	return got, q, proj
}

func instructionIDs(t testing.TB, g goldenTensors) []int {
	ten, ok := g.tensors["qformer_input_ids"]
	if !ok {
		return nil
	}
	v, err := ten.Int64()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(v))
	for i, x := range v {
		ids[i] = int(x)
	}
	return ids
}

// TestGolden runs every case with every weight type from the golden
// pixel_values, and compares each layer's hidden states, the ViT and
// Q-Former outputs and the projection with transformers'. It runs the
// machine's kernels; make test runs it again on the portable ones
// (BLIP2CHAT_NOSIMD=1) and on AVX2 (BLIP2CHAT_NOAVX512=1).
func TestGolden(t *testing.T) {
	for _, wt := range weightTypes {
		for _, c := range goldenCases {
			t.Run(fmt.Sprintf("%s/%s/%s", kernels.Features(), wt.name, c.name), func(t *testing.T) {
				m := loadModel(t, c.name, wt.name)
				if got := m.Info().Layout; got != c.layout {
					t.Errorf("layout %q, want %q", got, c.layout)
				}
				g := readGolden(t, c.name)
				ids := instructionIDs(t, g)
				got, q, proj := run(t, m, g, ids)

				worst := map[string]float64{}
				cmp := func(key, name string, v []float32) {
					e := check(t, name, v, g.f32(t, name), wt.relative, wt.tol)
					worst[key] = math.Max(worst[key], e)
				}
				if c.itm {
					// The retrieval case saves no hidden states: check the
					// Q-Former output through the ITC image embeddings.
					cmp("itc_image_embeds", "text0.itc_image_embeds", itcImageEmbeds(t, c.name, q, m.Info()))
					t.Logf("errors (%s): %v", map[bool]string{false: "abs", true: "rel"}[wt.relative], worst)
					return
				}
				for i := 0; i <= m.Info().Vision.Layers; i++ {
					name := fmt.Sprintf("vision_hidden_states.%d", i)
					cmp("vision_hidden_states", name, got[name])
				}
				for i := 0; i <= m.Info().QFormer.Layers; i++ {
					name := fmt.Sprintf("qformer_hidden_states.%d", i)
					cmp("qformer_hidden_states", name, got[name])
				}
				cmp("vision_last_hidden_state", "vision_last_hidden_state", got["vision_last_hidden_state"])
				cmp("qformer_last_hidden_state", "qformer_last_hidden_state", q)
				cmp("language_model_inputs", "language_model_inputs", proj)
				t.Logf("errors (%s): %v", map[bool]string{false: "abs", true: "rel"}[wt.relative], worst)
			})
		}
	}
}

// itcImageEmbeds is what Blip2ForImageTextRetrieval makes of the Q-Former
// output for contrastive matching: normalize(vision_projection(q)) per
// query, with the projection read from the checkpoint.
func itcImageEmbeds(t *testing.T, name string, q []float32, info *Info) []float32 {
	t.Helper()
	ck, err := safetensors.OpenCheckpoint(filepath.Join(goldenDir, name, "hf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	read := func(n string) ([]float32, []int) {
		ten, ok := ck.Tensor(n)
		if !ok {
			t.Fatalf("checkpoint has no %s", n)
		}
		v, err := ten.Float32()
		if err != nil {
			t.Fatal(err)
		}
		return v, ten.Shape
	}
	w, shape := read("vision_projection.weight")
	b, _ := read("vision_projection.bias")
	Q, H, E := info.NumQueryTokens, info.QFormer.HiddenSize, shape[0]
	out := make([]float32, Q*E)
	kernels.NewPool(1).MatMulT(out, q, Q, &kernels.Matrix{Type: kernels.F32, Rows: E, Cols: H, F32: w}, b)
	for i := 0; i < Q; i++ {
		row := out[i*E : (i+1)*E]
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		n := math.Max(math.Sqrt(ss), 1e-12)
		for j := range row {
			row[j] = float32(float64(row[j]) / n)
		}
	}
	return out
}

// TestInstructionTokenization: the Q-Former ids of the golden prompt, from
// the vocabulary stored in vision.gguf, are transformers'.
func TestInstructionTokenization(t *testing.T) {
	m := loadModel(t, "instructblip-llama", "f32")
	meta := readMeta(t, "instructblip-llama")
	ids, err := m.Tokenize(meta.Prompt)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != fmt.Sprint(meta.QFormerInputIDs) {
		t.Errorf("Tokenize(%q) = %v\nwant %v", meta.Prompt, ids, meta.QFormerInputIDs)
	}
	if got := instructionIDs(t, readGolden(t, "instructblip-llama")); fmt.Sprint(got) != fmt.Sprint(meta.QFormerInputIDs) {
		t.Errorf("golden.safetensors qformer_input_ids %v differ from golden.json %v", got, meta.QFormerInputIDs)
	}
	// An instruction longer than the Q-Former's tokenizer takes is cut as
	// LAVIS cuts it (max_length 128, truncation_side "left", recorded by
	// convert): [CLS], its last 126 word pieces, [SEP]; the Q-Former runs
	// on it.
	in := m.Info()
	if want := min(convert.QFormerMaxLength, in.QFormer.MaxPositions); in.MaxTextTokens != want || !in.TruncateLeft {
		t.Errorf("Q-Former text: at most %d tokens, truncate left %v; want %d, left", in.MaxTextTokens, in.TruncateLeft, want)
	}
	n := in.MaxTextTokens
	long := strings.Repeat("describe the dog on the beach in detail, ", 60) + "then say what colour its collar is"
	full := m.wp.Encode(long)
	ids, err = m.Tokenize(long)
	if err != nil || len(full) <= n || len(ids) != n || ids[0] != full[0] || !slices.Equal(ids[1:], full[len(full)-(n-1):]) {
		t.Fatalf("Tokenize of %d word pieces: %d ids (%v); want [CLS] + the last %d + [SEP]", len(full), len(ids), err, n-2)
	}
	feat, err := m.EncodeImage(context.Background(), readGolden(t, "instructblip-llama").pixels(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.SoftTokens(context.Background(), feat, long); err != nil {
		t.Errorf("SoftTokens with a long instruction: %v", err)
	}
	// The same text, ending differently, cut the same at the start.
	other, _ := m.Tokenize("something else entirely. " + long)
	if !slices.Equal(other, ids) {
		t.Error("a different start changed the cut instruction")
	}

	// A BLIP-2 model has no vocabulary and takes no instruction.
	b := loadModel(t, "blip2-opt", "f32")
	if _, err := b.Tokenize("hello"); err == nil {
		t.Error("BLIP-2 Tokenize: no error")
	}
}

// TestInstructionChangesOnlyQFormer: features cached from one EncodeImage
// serve several instructions, and the result depends on the instruction.
func TestInstructionChangesOnlyQFormer(t *testing.T) {
	m := loadModel(t, "instructblip-llama", "f32")
	g := readGolden(t, "instructblip-llama")
	feat, err := m.EncodeImage(context.Background(), g.pixels(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := instructionIDs(t, g)
	a, err := m.QFormer(context.Background(), feat, ids)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := m.Tokenize("describe the picture")
	if _, err := m.QFormer(context.Background(), feat, other); err != nil {
		t.Fatal(err)
	}
	again, err := m.QFormer(context.Background(), feat, ids)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := diff(again, a); d != 0 {
		t.Errorf("rerun with the same instruction differs by %g", d)
	}
	check(t, "qformer_last_hidden_state", again, g.f32(t, "qformer_last_hidden_state"), false, 1e-4)
	b, _ := m.QFormer(context.Background(), feat, other)
	if d, _ := diff(b, a); d == 0 {
		t.Error("a different instruction gives the same Q-Former output")
	}
}

// TestNoAllocsPerLayer: after the first image, a run allocates only its
// results (a constant count, whatever the number of layers). The pool hands
// tasks to whichever thread is free, so on a busy machine a thread may meet
// its largest task (and grow its scratch once) only after the warm-up: 20
// runs average those few growths out.
func TestNoAllocsPerLayer(t *testing.T) {
	for _, name := range []string{"blip2-opt", "instructblip-llama"} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, name, "f16")
			g := readGolden(t, name)
			px := g.pixels(t)
			ids := instructionIDs(t, g)
			feat, err := m.EncodeImage(context.Background(), px)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := m.QFormer(context.Background(), feat, ids)
			m.Project(q)
			n := testing.AllocsPerRun(20, func() { m.EncodeImage(context.Background(), px) })
			t.Logf("allocations: EncodeImage %v", n)
			if n > 2 {
				t.Errorf("EncodeImage: %v allocations per image, want <= 2 (the result)", n)
			}
			if n := testing.AllocsPerRun(20, func() { m.QFormer(context.Background(), feat, ids) }); n > 1 {
				t.Errorf("QFormer: %v allocations per call, want <= 1 (the result)", n)
			}
			if n := testing.AllocsPerRun(3, func() { m.Project(q) }); n > 1 {
				t.Errorf("Project: %v allocations per call, want <= 1 (the result)", n)
			}
		})
	}
}

// TestBadInput: wrong sizes and ids are errors, not panics.
func TestBadInput(t *testing.T) {
	m := loadModel(t, "instructblip-llama", "f32")
	g := readGolden(t, "instructblip-llama")
	px := g.pixels(t)
	if _, err := m.EncodeImage(context.Background(), px[:len(px)-1]); err == nil {
		t.Error("short pixels: no error")
	}
	bad := append([]float32(nil), px...)
	bad[7] = float32(math.NaN())
	if _, err := m.EncodeImage(context.Background(), bad); err == nil {
		t.Error("NaN pixel: no error")
	}
	feat, err := m.EncodeImage(context.Background(), px)
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	for _, tc := range []struct {
		name string
		ids  []int
	}{
		{"negative id", []int{2, -1, 3}},
		{"id past vocab", []int{2, info.QFormer.VocabSize, 3}},
		{"too long", make([]int, info.QFormer.MaxPositions+1)},
	} {
		if _, err := m.QFormer(context.Background(), feat, tc.ids); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := m.QFormer(context.Background(), &ImageFeatures{Tokens: 3, Dim: 4, Data: make([]float32, 12)}, nil); err == nil {
		t.Error("foreign features: no error")
	}
	if _, err := m.Project(make([]float32, 5)); err == nil {
		t.Error("Project of wrong size: no error")
	}
	b := loadModel(t, "blip2-opt", "f32")
	bf, _ := b.EncodeImage(context.Background(), px)
	if _, err := b.QFormer(context.Background(), bf, []int{2, 3}); err == nil {
		t.Error("instruction to a BLIP-2 Q-Former: no error")
	}
	itm := loadModel(t, "blip2-itm", "f32")
	f, _ := itm.EncodeImage(context.Background(), px)
	q, _ := itm.QFormer(context.Background(), f, nil)
	if _, err := itm.Project(q); err == nil || !strings.Contains(err.Error(), "projection") {
		t.Errorf("Project without projection: %v", err)
	}
}

// TestInfo: the metadata round-trips from the checkpoint's config.
func TestInfo(t *testing.T) {
	m := loadModel(t, "instructblip-llama", "q8_0")
	in := m.Info()
	if in.Family != "instructblip" || in.LLMFamily != "llama" || in.PromptFormat != convert.PromptFormatInstructBLIP {
		t.Errorf("family %q llm %q prompt %q", in.Family, in.LLMFamily, in.PromptFormat)
	}
	if in.Vision.Tokens != 257 || in.Vision.HiddenSize != 176 || in.QFormer.HiddenSize != 128 || in.NumQueryTokens != 8 || in.ProjectionSize != 64 {
		t.Errorf("sizes: %+v %+v Q=%d E=%d", in.Vision, in.QFormer, in.NumQueryTokens, in.ProjectionSize)
	}
	if !in.QFormer.TextInput || len(in.Vocab) != 1000 || !in.LowerCase {
		t.Errorf("text input %v vocab %d lower %v", in.QFormer.TextInput, len(in.Vocab), in.LowerCase)
	}
	o := in.ImageOptions()
	if o.Width != 224 || o.Height != 224 || o.Mean[0] != 0.48145466 || o.Std[2] != 0.27577711 || math.Abs(float64(o.RescaleFactor)-1.0/255) > 1e-9 {
		t.Errorf("image options %+v", o)
	}
	if got := in.Prompt("why?"); got != "why?" {
		t.Errorf("Prompt = %q", got)
	}
	if in.WeightType != "q8_0" {
		t.Errorf("weight type %q", in.WeightType)
	}
	if b := loadModel(t, "blip2-t5", "f16").Info(); b.Family != "blip-2" || b.PromptFormat != convert.PromptFormatBLIP2 || b.QFormer.TextInput {
		t.Errorf("blip2-t5: %q %q %v", b.Family, b.PromptFormat, b.QFormer.TextInput)
	} else if got := b.Prompt("what is it?"); got != "Question: what is it? Answer:" {
		t.Errorf("Prompt = %q", got)
	}
	if b := loadModel(t, "blip2-itm", "f32").Info(); b.LLMFamily != "" || b.ProjectionSize != 0 || b.Architecture != "Blip2ForImageTextRetrieval" {
		t.Errorf("blip2-itm: llm %q projection %d arch %q", b.LLMFamily, b.ProjectionSize, b.Architecture)
	}
}

// BenchmarkEncodeImage: the ViT of the tiny golden model (257 tokens,
// width 176, 2 layers), f16 weights.
func BenchmarkEncodeImage(b *testing.B) {
	m := loadModel(b, "blip2-opt", "f16")
	px := readGolden(b, "blip2-opt").pixels(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.EncodeImage(context.Background(), px); err != nil {
			b.Fatal(err)
		}
	}
}

// TestInstructionTruncationMetadata: the Q-Former tokenizer's limit and
// side as vision.gguf records them; a file converted before they were
// recorded reads as convert writes them now (InstructBLIP: 128, left);
// values convert would not write are refused in one line.
func TestInstructionTruncationMetadata(t *testing.T) {
	src := modelPath(t, "instructblip-llama", "f32")
	long := strings.Repeat("describe the dog on the beach in detail, ", 60) + "then say what colour its collar is"
	for _, c := range []struct {
		name  string
		edit  map[string]any // nil value: the key is dropped
		n     int            // 0: the default (min(128, positions))
		left  bool
		fault string
	}{
		{name: "older file", edit: map[string]any{convert.KeyQFormerMaxLength: nil, convert.KeyQFormerTruncationSide: nil}, left: true},
		{name: "right", edit: map[string]any{convert.KeyQFormerTruncationSide: "right"}},
		{name: "shorter", edit: map[string]any{convert.KeyQFormerMaxLength: uint32(16)}, n: 16, left: true},
		{name: "bad side", edit: map[string]any{convert.KeyQFormerTruncationSide: "middle"}, fault: `truncation_side = "middle"`},
		{name: "too short", edit: map[string]any{convert.KeyQFormerMaxLength: uint32(1)}, fault: "max_length = 1 is out of range"},
		{name: "past positions", edit: map[string]any{convert.KeyQFormerMaxLength: uint32(1 << 20)}, fault: "out of range"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), convert.VisionFile)
			rewriteVision(t, src, path, c.edit)
			m, err := Load(path, Options{})
			if c.fault != "" {
				if err == nil {
					m.Close()
					t.Fatalf("loaded; want %q", c.fault)
				}
				if !strings.Contains(err.Error(), c.fault) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q; want one line with %q", err, c.fault)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			in := m.Info()
			n := c.n
			if n == 0 {
				n = min(convert.QFormerMaxLength, in.QFormer.MaxPositions)
			}
			full := m.wp.Encode(long)
			ids, err := m.Tokenize(long)
			if err != nil || in.MaxTextTokens != n || in.TruncateLeft != c.left || len(ids) != n {
				t.Fatalf("%d ids (%v), limit %d, left %v; want %d, left %v", len(ids), err, in.MaxTextTokens, in.TruncateLeft, n, c.left)
			}
			want := append(full[:n-1:n-1], full[len(full)-1])
			if c.left {
				want = append(full[:1:1], full[len(full)-(n-1):]...)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("cut to %v, want %v", ids, want)
			}
		})
	}
}

// rewriteVision writes src to dst with edit's keys set (nil: dropped).
func rewriteVision(t *testing.T, src, dst string, edit map[string]any) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KV {
		v, ok := edit[kv.Key]
		switch {
		case !ok:
			w.Add(kv.Key, kv.Value)
		case v != nil:
			w.Add(kv.Key, v)
		}
	}
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
			t.Fatal(err)
		}
	}
	err = gguf.WriteFile(dst, w, func(_ int, info gguf.TensorInfo, out io.Writer) error {
		_, data, _ := f.Tensor(info.Name)
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
