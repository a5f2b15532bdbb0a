package hfconfig

import (
	"fmt"
	"path/filepath"
)

// Processor is processor_config.json, which the 2024 "update for
// transformers" layout added: how many <image> placeholders the processor
// puts in a prompt. Its processor_class is informative only (the
// InstructBLIP-Vicuna repositories name InstructBlipVideoProcessor for
// an image model).
type Processor struct {
	NumQueryTokens int    // 0 when the file or the key is absent
	ProcessorClass string // "" when absent
}

// LoadProcessor reads dir/processor_config.json; an absent file gives the
// zero Processor and no error.
func LoadProcessor(dir string) (*Processor, error) {
	return LoadFile(filepath.Join(dir, "processor_config.json"), func() *Processor { return &Processor{} }, parseProcessor)
}

// ParseProcessor parses the contents of a processor_config.json.
func ParseProcessor(data []byte) (*Processor, error) {
	p, err := parseProcessor(data)
	if err != nil {
		return nil, fmt.Errorf("hfconfig: processor config: %w", err)
	}
	return p, nil
}

func parseProcessor(data []byte) (*Processor, error) {
	m, err := decodeObject(data)
	if err != nil {
		return nil, err
	}
	r := &reader{}
	o := r.root(m)
	p := &Processor{
		NumQueryTokens: o.int("num_query_tokens", 0),
		ProcessorClass: o.str("processor_class", ""),
	}
	o.checkRange("num_query_tokens", p.NumQueryTokens, 0, MaxQueries)
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}
