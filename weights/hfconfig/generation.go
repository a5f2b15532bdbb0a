package hfconfig

import (
	"fmt"
	"path/filepath"
)

// GenerationConfig is generation_config.json: the model's default decoding
// settings. Token ids the file leaves out are -1 (take them from the text
// config); every other absent field has transformers' GenerationConfig
// default.
type GenerationConfig struct {
	BOSTokenID, PadTokenID, DecoderStartTokenID int
	EOSTokenIDs                                 []int // nil when absent
	MaxLength                                   int   // prompt + new tokens; default 20
	MaxNewTokens                                int   // 0 when absent
	MinLength, MinNewTokens                     int
	NumBeams                                    int // default 1
	DoSample                                    bool
	Temperature, TopP                           float64 // defaults 1.0
	TopK                                        int     // default 50
	RepetitionPenalty, LengthPenalty            float64 // defaults 1.0
	NoRepeatNGramSize                           int
}

// DefaultGenerationConfig is transformers' GenerationConfig() with no token ids.
func DefaultGenerationConfig() *GenerationConfig {
	return &GenerationConfig{
		BOSTokenID: -1, PadTokenID: -1, DecoderStartTokenID: -1,
		MaxLength: 20, NumBeams: 1, Temperature: 1, TopP: 1, TopK: 50,
		RepetitionPenalty: 1, LengthPenalty: 1,
	}
}

// LoadGenerationConfig reads dir/generation_config.json; an absent file gives
// DefaultGenerationConfig and no error.
func LoadGenerationConfig(dir string) (*GenerationConfig, error) {
	return LoadFile(filepath.Join(dir, "generation_config.json"), DefaultGenerationConfig, parseGenerationConfig)
}

// ParseGenerationConfig parses the contents of a generation_config.json.
func ParseGenerationConfig(data []byte) (*GenerationConfig, error) {
	g, err := parseGenerationConfig(data)
	if err != nil {
		return nil, fmt.Errorf("hfconfig: generation config: %w", err)
	}
	return g, nil
}

func parseGenerationConfig(data []byte) (*GenerationConfig, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	r := &reader{}
	o := r.root(m)
	d := DefaultGenerationConfig()
	g := &GenerationConfig{
		BOSTokenID:          o.int("bos_token_id", d.BOSTokenID),
		PadTokenID:          o.int("pad_token_id", d.PadTokenID),
		DecoderStartTokenID: o.int("decoder_start_token_id", d.DecoderStartTokenID),
		MaxLength:           o.int("max_length", d.MaxLength),
		MaxNewTokens:        o.int("max_new_tokens", 0),
		MinLength:           o.int("min_length", 0),
		MinNewTokens:        o.int("min_new_tokens", 0),
		NumBeams:            o.int("num_beams", d.NumBeams),
		DoSample:            o.bool("do_sample", false),
		Temperature:         o.float("temperature", d.Temperature),
		TopP:                o.float("top_p", d.TopP),
		TopK:                o.int("top_k", d.TopK),
		RepetitionPenalty:   o.float("repetition_penalty", d.RepetitionPenalty),
		LengthPenalty:       o.float("length_penalty", d.LengthPenalty),
		NoRepeatNGramSize:   o.int("no_repeat_ngram_size", 0),
	}
	g.EOSTokenIDs, _ = o.ints("eos_token_id")
	o.checkRange("max_length", g.MaxLength, 0, MaxPositions)
	o.checkRange("max_new_tokens", g.MaxNewTokens, 0, MaxPositions)
	o.checkRange("num_beams", g.NumBeams, 1, 1024)
	o.checkRange("top_k", g.TopK, 0, MaxVocab)
	if g.Temperature < 0 {
		o.fail("temperature", "%g must not be negative", g.Temperature)
	}
	if r.err != nil {
		return nil, r.err
	}
	return g, nil
}
