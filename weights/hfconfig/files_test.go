package hfconfig

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var allCases = []string{"blip2-llama", "blip2-t5", "blip2-opt", "instructblip-llama", "blip2-itm"}

func TestGoldenPreprocessor(t *testing.T) {
	// Every golden preprocessor_config.json says: 224x224, CLIP mean/std,
	// rescale 1/255 (0.00392156862745098), bicubic (3), all steps on.
	want := Preprocessor{
		Height: 224, Width: 224,
		Mean:          [3]float32{0.48145466, 0.4578275, 0.40821073},
		Std:           [3]float32{0.26862954, 0.26130258, 0.27577711},
		RescaleFactor: float32(0.00392156862745098), Resample: 3,
		DoConvertRGB: true, DoResize: true, DoRescale: true, DoNormalize: true,
		ImageProcessorType: "BlipImageProcessor",
	}
	for _, c := range allCases {
		t.Run(c, func(t *testing.T) {
			p, err := LoadPreprocessor(goldenDir(c))
			if err != nil {
				t.Fatal(err)
			}
			if *p != want {
				t.Errorf("got %+v\nwant %+v", *p, want)
			}
		})
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPreprocessorVariants(t *testing.T) {
	const cfg364 = `{"model_type":"instructblip","vision_config":{"image_size":364}}`
	tests := []struct {
		name          string
		files         map[string]string
		height, width int
		mean0, std0   float32
		resample      int
		doNormalize   bool
		wantErr       string
	}{
		{"no files", nil, 224, 224, 0.48145466, 0.26862954, 3, true, ""},
		{"only config.json", map[string]string{"config.json": cfg364}, 364, 364, 0.48145466, 0.26862954, 3, true, ""},
		{"no size in file", map[string]string{"config.json": cfg364, "preprocessor_config.json": `{"do_normalize":false}`}, 364, 364, 0.48145466, 0.26862954, 3, false, ""},
		{"int size", map[string]string{"preprocessor_config.json": `{"size":336}`}, 336, 336, 0.48145466, 0.26862954, 3, true, ""},
		{"shortest_edge", map[string]string{"preprocessor_config.json": `{"size":{"shortest_edge":364}}`}, 364, 364, 0.48145466, 0.26862954, 3, true, ""},
		{"list size", map[string]string{"preprocessor_config.json": `{"size":[200,300],"resample":2}`}, 200, 300, 0.48145466, 0.26862954, 2, true, ""},
		{"scalar mean std", map[string]string{"preprocessor_config.json": `{"image_mean":0.5,"image_std":[0.25,0.25,0.25]}`}, 224, 224, 0.5, 0.25, 3, true, ""},
		{"height only", map[string]string{"preprocessor_config.json": `{"size":{"height":224}}`}, 0, 0, 0, 0, 0, false, "size: want both height and width"},
		{"zero std", map[string]string{"preprocessor_config.json": `{"image_std":[0.2,0,0.2]}`}, 0, 0, 0, 0, 0, false, "image_std"},
		{"two means", map[string]string{"preprocessor_config.json": `{"image_mean":[0.5,0.5]}`}, 0, 0, 0, 0, 0, false, "image_mean: want 3 numbers"},
		{"bad resample", map[string]string{"preprocessor_config.json": `{"resample":9}`}, 0, 0, 0, 0, 0, false, "resample: 9 out of range"},
		{"bad json", map[string]string{"preprocessor_config.json": `{"size":`}, 0, 0, 0, 0, 0, false, "preprocessor_config.json: invalid JSON"},
		{"bad config.json", map[string]string{"config.json": `{`}, 0, 0, 0, 0, 0, false, "config.json: invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := LoadPreprocessor(writeFiles(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Height != tc.height || p.Width != tc.width || p.Mean[0] != tc.mean0 || p.Std[0] != tc.std0 ||
				p.Resample != tc.resample || p.DoNormalize != tc.doNormalize || p.RescaleFactor != float32(1.0/255) {
				t.Errorf("got %+v", *p)
			}
		})
	}
}

func ptr(b bool) *bool { return &b }

func TestGoldenTokenizerConfig(t *testing.T) {
	tests := []struct {
		dir  string
		want TokenizerConfig
	}{
		{"blip2-llama/hf", TokenizerConfig{TokenizerClass: "LlamaTokenizer", AddBOSToken: ptr(true), AddEOSToken: ptr(false),
			BOSToken: "<s>", EOSToken: "</s>", UNKToken: "<unk>", Legacy: ptr(true)}},
		{"instructblip-llama/hf", TokenizerConfig{TokenizerClass: "LlamaTokenizer", AddBOSToken: ptr(true), AddEOSToken: ptr(false),
			BOSToken: "<s>", EOSToken: "</s>", UNKToken: "<unk>", Legacy: ptr(true)}},
		{"blip2-opt/hf", TokenizerConfig{TokenizerClass: "GPT2Tokenizer", AddBOSToken: ptr(true),
			BOSToken: "</s>", EOSToken: "</s>", UNKToken: "<unk>", PadToken: "<pad>"}},
		{"blip2-t5/hf", TokenizerConfig{TokenizerClass: "T5Tokenizer", EOSToken: "</s>", UNKToken: "<unk>", PadToken: "<pad>", ExtraIDs: 100}},
		{"blip2-itm/hf", TokenizerConfig{}},                            // no tokenizer_config.json
		{"instructblip-llama/hf/qformer_tokenizer", TokenizerConfig{}}, // only vocab.txt
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			got, err := LoadTokenizerConfig(filepath.Join(golden, tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestTokenizerConfigForms(t *testing.T) {
	got, err := ParseTokenizerConfig([]byte(`{
		"tokenizer_class": "T5TokenizerFast",
		"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false},
		"pad_token": null,
		"do_lower_case": true,
		"model_max_length": 1000000000000000019884624838656,
		"additional_special_tokens": ["<extra_id_0>", {"content": "<image>"}],
		"added_tokens_decoder": {"32001": {"content": "<image>", "special": true}, "0": {"content": "<pad>", "special": true}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := TokenizerConfig{
		TokenizerClass: "T5TokenizerFast", BOSToken: "<s>", DoLowerCase: ptr(true), ExtraIDs: 100,
		AdditionalSpecialTokens: []string{"<extra_id_0>", "<image>"},
		AddedTokens:             []AddedToken{{0, "<pad>", true}, {32001, "<image>", true}},
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("got %+v\nwant %+v", *got, want)
	}
	for _, bad := range []string{`{"bos_token": 5}`, `{"add_bos_token": "yes"}`, `{"added_tokens_decoder": {"x": {}}}`, `[`} {
		if _, err := ParseTokenizerConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	dir := writeFiles(t, map[string]string{"tokenizer_config.json": `{"legacy": 1}`})
	if _, err := LoadTokenizerConfig(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json: legacy: want true or false") {
		t.Errorf("error %v", err)
	}
}

func TestGenerationConfig(t *testing.T) {
	def := DefaultGenerationConfig()
	with := func(f func(g *GenerationConfig)) GenerationConfig { g := *def; f(&g); return g }
	tests := []struct {
		dir  string
		want GenerationConfig
	}{
		{"blip2-llama", with(func(g *GenerationConfig) { g.BOSTokenID, g.EOSTokenIDs, g.PadTokenID = 1, []int{2}, 0 })},
		{"instructblip-llama", with(func(g *GenerationConfig) { g.BOSTokenID, g.EOSTokenIDs, g.PadTokenID = 1, []int{2}, 0 })},
		{"blip2-opt", with(func(g *GenerationConfig) { g.BOSTokenID, g.EOSTokenIDs, g.PadTokenID = 2, []int{2}, 1 })},
		{"blip2-t5", with(func(g *GenerationConfig) { g.DecoderStartTokenID, g.EOSTokenIDs, g.PadTokenID = 0, []int{1}, 0 })},
		{"blip2-itm", *def}, // no generation_config.json
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			g, err := LoadGenerationConfig(goldenDir(tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*g, tc.want) {
				t.Errorf("got %+v\nwant %+v", *g, tc.want)
			}
		})
	}
	g, err := ParseGenerationConfig([]byte(`{"max_new_tokens": 30, "num_beams": 5, "do_sample": true, "top_p": 0.9, "eos_token_id": [2, 32000]}`))
	if err != nil {
		t.Fatal(err)
	}
	if g.MaxNewTokens != 30 || g.NumBeams != 5 || !g.DoSample || g.TopP != 0.9 || !reflect.DeepEqual(g.EOSTokenIDs, []int{2, 32000}) || g.TopK != 50 {
		t.Errorf("got %+v", *g)
	}
	if _, err := ParseGenerationConfig([]byte(`{"num_beams": 0}`)); err == nil || !strings.Contains(err.Error(), "num_beams") {
		t.Errorf("num_beams 0: %v", err)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.txt"), filepath.Join(dir, "bad.txt")
	os.WriteFile(good, []byte("42"), 0o644)
	os.WriteFile(bad, []byte("x"), 0o644)
	parse := func(b []byte) (string, error) {
		if string(b) != "42" {
			return "", errors.New("not 42")
		}
		return "forty-two", nil
	}
	fallback := func() string { return "default" }
	tests := []struct {
		name, path string
		absent     func() string
		want, err  string
	}{
		{"parsed", good, nil, "forty-two", ""},
		{"parse error names the file", bad, fallback, "", bad + ": not 42"},
		{"absent, with a default", filepath.Join(dir, "none"), fallback, "default", ""},
		{"absent, no default", filepath.Join(dir, "none"), nil, "", "no such file"},
	}
	for _, tt := range tests {
		got, err := LoadFile(tt.path, tt.absent, parse)
		if got != tt.want || (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: LoadFile = %q, %v; want %q, error %q", tt.name, got, err, tt.want, tt.err)
		}
		if tt.name == "absent, no default" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: error %v is not fs.ErrNotExist", tt.name, err)
		}
	}
}

// TestProcessorConfig reads processor_config.json as the 2024 layout writes
// it, InstructBLIP-Vicuna's naming the video processor included.
func TestProcessorConfig(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       Processor
		err        string
	}{
		{"absent", "", Processor{}, ""},
		{"blip-2", `{"num_query_tokens": 32, "processor_class": "Blip2Processor"}`, Processor{32, "Blip2Processor"}, ""},
		{"video class", `{"num_query_tokens": 32, "processor_class": "InstructBlipVideoProcessor"}`, Processor{32, "InstructBlipVideoProcessor"}, ""},
		{"no count", `{"processor_class": "Blip2Processor"}`, Processor{0, "Blip2Processor"}, ""},
		{"negative", `{"num_query_tokens": -1}`, Processor{}, "num_query_tokens"},
		{"not a number", `{"num_query_tokens": "32"}`, Processor{}, "num_query_tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			if tc.file != "" {
				files["processor_config.json"] = tc.file
			}
			p, err := LoadProcessor(writeFiles(t, files))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "processor_config.json") {
					t.Fatalf("err %v, want one naming the file and %q", err, tc.err)
				}
				return
			}
			if err != nil || *p != tc.want {
				t.Fatalf("got %+v, %v; want %+v", p, err, tc.want)
			}
		})
	}
}

// TestSpecialTokensMap: special_tokens_map.json's tokens replace a legacy
// tokenizer_config.json's (no added_tokens_decoder), as transformers loads
// them, and only fill in the gaps of a newer one. InstructBLIP-Vicuna's map
// makes </s> its BOS and EOS.
func TestSpecialTokensMap(t *testing.T) {
	vicunaMap := `{"bos_token": "</s>", "eos_token": "</s>", "pad_token": "[PAD]", "unk_token": "</s>"}`
	for _, tc := range []struct {
		name, config, stmap string
		bos, eos, unk, pad  string
		truncation          string
	}{
		{"legacy: the map wins", `{"bos_token": "<s>", "eos_token": "</s>", "truncation_side": "left"}`, vicunaMap, "</s>", "</s>", "</s>", "[PAD]", "left"},
		{"no config", "", vicunaMap, "</s>", "</s>", "</s>", "[PAD]", ""},
		{"added_tokens_decoder: the config wins", `{"bos_token": "<s>", "added_tokens_decoder": {"0": {"content": "<unk>"}}}`, vicunaMap, "<s>", "</s>", "</s>", "[PAD]", ""},
		{"no map", `{"bos_token": {"content": "<s>"}}`, "", "<s>", "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			if tc.config != "" {
				files["tokenizer_config.json"] = tc.config
			}
			if tc.stmap != "" {
				files["special_tokens_map.json"] = tc.stmap
			}
			c, err := LoadTokenizerConfig(writeFiles(t, files))
			if err != nil {
				t.Fatal(err)
			}
			if c.BOSToken != tc.bos || c.EOSToken != tc.eos || c.UNKToken != tc.unk || c.PadToken != tc.pad || c.TruncationSide != tc.truncation {
				t.Errorf("bos %q eos %q unk %q pad %q truncation %q; want %q %q %q %q %q", c.BOSToken, c.EOSToken, c.UNKToken, c.PadToken,
					c.TruncationSide, tc.bos, tc.eos, tc.unk, tc.pad, tc.truncation)
			}
		})
	}
	if _, err := LoadTokenizerConfig(writeFiles(t, map[string]string{"tokenizer_config.json": `{"truncation_side": "middle"}`})); err == nil {
		t.Error("truncation_side middle accepted")
	}
}
