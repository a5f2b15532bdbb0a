package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/blip2chat/blip2chat/engine/lm"
	_ "github.com/blip2chat/blip2chat/engine/lm/llamacpp" // llama.cpp backend (LLaMA, T5)
	"github.com/blip2chat/blip2chat/engine/model"
)

func init() {
	register(&command{
		name:    "tokenize",
		summary: "show how the language model's tokenizer splits a text",
		usage:   "-m MODEL_DIR TEXT [--json] [--no-special]",
		run:     runTokenize,
	})
}

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["tokenize"], stderr)
	modelDir := fs.String("m", "", "model `folder` or installed name (its llm.gguf is read)")
	llm := fs.String("llm", "", "language model GGUF `file` (instead of MODEL_DIR/llm.gguf)")
	llamaLib := fs.String("llama-lib", "", "llama.cpp library `folder`")
	asJSON := fs.Bool("json", false, `print {"ids":[…],"pieces":[…]}`)
	noSpecial := fs.Bool("no-special", false, "do not add BOS/EOS (by default they are added as the model's tokenizer adds them)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if len(pos) != 1 || (*modelDir == "" && *llm == "") {
		return errUsage
	}
	path, err := model.LLMPath(*modelDir, *llm)
	if err != nil {
		return withLLMHint(err)
	}
	m, err := model.OpenLLM(path, *llamaLib, lm.OpenOptions{VocabOnly: true})
	if err != nil {
		return err
	}
	defer m.Close()
	ids, err := m.Tokenize(pos[0], !*noSpecial)
	if err != nil {
		return err
	}
	pieces := make([]string, len(ids))
	for i, id := range ids {
		pieces[i] = m.Piece(id)
	}
	if *asJSON {
		if ids == nil {
			ids = []int32{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(struct {
			IDs    []int32  `json:"ids"`
			Pieces []string `json:"pieces"`
		}{ids, pieces})
	}
	for i, id := range ids {
		fmt.Fprintf(stdout, "%6d  %s\n", id, strconv.Quote(pieces[i]))
	}
	return nil
}
