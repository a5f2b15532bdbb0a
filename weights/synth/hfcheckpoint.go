package synth

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/blip2chat/blip2chat/weights/hfconfig"
)

// WriteCheckpoint writes a Hugging Face checkpoint folder of the
// real-shape model name into dir, as the Salesforce repositories store one:
// config.json, the generated tokenizer files, and float32 random weights
// in shards safetensors files (hub tensor names, q_bias/v_bias) with their
// model.safetensors.index.json. layers > 0 keeps only that many
// language-model layers (a 7B's tensors at a fraction of its 32 GB). It
// streams: memory stays at a few MB whatever the size (15 GB for
// opt-2.7b). For measuring conversion at real sizes, never run by `make
// test`.
func WriteCheckpoint(dir, name string, shards, layers int, seed uint64) error {
	m, err := lookup(name)
	if err != nil {
		return err
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(m.config), &raw); err != nil {
		return err
	}
	if tc, ok := raw["text_config"].(map[string]any); ok && layers > 0 && m.hasLLM {
		for _, k := range []string{"num_hidden_layers", "num_layers", "num_decoder_layers"} {
			if _, ok := tc[k]; ok {
				tc[k] = layers
			}
		}
	}
	config, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return err
	}
	return writeCheckpoint(dir, config, shards, seed)
}

// writeCheckpoint writes the checkpoint folder of config.json config (see
// WriteCheckpoint).
func writeCheckpoint(dir string, config []byte, shards int, seed uint64) error {
	cfg, err := hfconfig.Parse(config)
	if err != nil {
		return err
	}
	ck, err := checkpointTensors(cfg)
	if err != nil {
		return err
	}
	files := map[string][]byte{"config.json": config}
	if _, ok := cfg.Text.Raw["model_type"]; ok {
		tok, err := tokenizerFiles(&cfg.Text)
		if err != nil {
			return err
		}
		for n, d := range tok {
			files[n] = d
		}
	} else {
		ck = withoutLLM(ck)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(dir, n), d, 0o644); err != nil {
			return err
		}
	}

	// Shards of about equal size, tensors in name order.
	names := append([]string(nil), ck.names...)
	sort.Strings(names)
	size := func(n string) int64 {
		b := int64(4)
		for _, d := range ck.shapes[n] {
			b *= int64(d)
		}
		return b
	}
	var total int64
	for _, n := range names {
		total += size(n)
	}
	shards = max(shards, 1)
	weightMap := map[string]string{}
	r := NewRand(seed)
	for i, start := 0, 0; i < shards; i++ {
		end, acc := start, int64(0)
		for end < len(names) && (acc < total/int64(shards) || i == shards-1) {
			acc += size(names[end])
			end++
		}
		file := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, shards)
		if err := writeShard(filepath.Join(dir, file), names[start:end], ck.shapes, r); err != nil {
			return err
		}
		for _, n := range names[start:end] {
			weightMap[n] = file
		}
		start = end
	}
	index, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), index, 0o644)
}

// withoutLLM drops the language model's tensors.
func withoutLLM(c *standIn) *standIn {
	out := &standIn{}
	for _, n := range c.names {
		if len(n) < len("language_model.") || n[:len("language_model.")] != "language_model." {
			out.add(n, c.shapes[n]...)
		}
	}
	return out
}

// writeShard streams one float32 safetensors file of the named tensors,
// values uniform in ±0.02 (finite, small: any converter type holds them).
func writeShard(path string, names []string, shapes map[string][]int, r *Rand) error {
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, n := range names {
		b := int64(4)
		for _, d := range shapes[n] {
			b *= int64(d)
		}
		header[n] = map[string]any{"dtype": "F32", "shape": shapes[n], "data_offsets": []int64{off, off + b}}
		off += b
	}
	h, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(h)))
	w.Write(n8[:])
	w.Write(h)
	buf := make([]byte, 4<<20)
	for left := off; left > 0; {
		chunk := buf[:min(int64(len(buf)), left)]
		for i := 0; i < len(chunk); i += 4 {
			binary.LittleEndian.PutUint32(chunk[i:], math.Float32bits(0.02*r.Float32()))
		}
		if _, err := w.Write(chunk); err != nil {
			f.Close()
			return err
		}
		left -= int64(len(chunk))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
