package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/lmconv"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// TestNoSpace (issue 12 D5): a conversion whose files (the f16 language
// model and, for q4_k_m, the quantized copy made beside it) do not fit is
// refused before a byte is written, in one line naming the folder and the
// sizes.
func TestNoSpace(t *testing.T) {
	out := modelDirWithFile(t)
	var asked string
	free := func(dir string) (int64, bool) { asked = dir; return 1 << 20, true }
	_, err := Convert(context.Background(), hfDir("blip2-llama"), out, Options{LLMType: "q4_k_m", freeSpace: free})
	var ns *plan.NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, syscall.ENOSPC) || ns.Dir != out || asked != out ||
		!strings.HasPrefix(err.Error(), "no space left on "+out+" (needs ") || !strings.Contains(err.Error(), "1.0 MB free)") {
		t.Fatalf("error %v", err)
	}
	checkUntouched(t, out)

	// The need counts the quantized copy: just enough for the f16 files
	// is refused for q4_k_m, accepted for f16.
	f16 := func(string) (int64, bool) { return 0, false }
	res, err := Convert(context.Background(), hfDir("blip2-llama"), t.TempDir(), Options{LLMType: "f16", freeSpace: f16})
	if err != nil {
		t.Fatal(err)
	}
	var written int64
	for _, p := range res.Files {
		st, _ := os.Stat(p)
		written += st.Size()
	}
	exactly := func(string) (int64, bool) { return written + 64<<20 + written/50, true }
	if _, err := Convert(context.Background(), hfDir("blip2-llama"), t.TempDir(), Options{LLMType: "f16", freeSpace: exactly}); err != nil {
		t.Errorf("f16 with room for it: %v", err)
	}
	if _, err := Convert(context.Background(), hfDir("blip2-llama"), t.TempDir(), Options{LLMType: "q4_k_m", freeSpace: exactly}); !errors.As(err, &ns) {
		t.Errorf("q4_k_m with room for the f16 files only: %v", err)
	}
}

// TestQuantizerInConvert: with Options.Quantizer the f16 llm.gguf is
// quantized before anything is renamed into place; when the quantizer
// fails (llama.cpp says "basic_ios::clear: iostream error" on a full disk)
// the folder is left as it was, the f16 intermediate removed.
func TestQuantizerInConvert(t *testing.T) {
	var seen []string
	fake := func(in, out string, ftype int32) error {
		seen = append(seen, filepath.Base(in))
		f, err := gguf.Open(in)
		if err != nil {
			return err
		}
		f.Close()
		return os.WriteFile(out, []byte("quantized"), 0o644)
	}
	out := filepath.Join(t.TempDir(), "model")
	res, err := Convert(context.Background(), hfDir("blip2-llama"), out, Options{Quantizer: fake})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, lmconv.FileName)); string(got) != "quantized" || !res.Quantized || len(seen) != 1 || !strings.HasPrefix(seen[0], ".llm.gguf.partial-") {
		t.Errorf("llm.gguf %q, quantized %v, quantizer read %v", got, res.Quantized, seen)
	}
	if got := strings.Join(listDir(t, out), ","); got != "generation_config.json,llm.gguf,vision.gguf" {
		t.Errorf("folder holds %s", got)
	}

	failing := func(in, out string, ftype int32) error {
		os.WriteFile(out, []byte("half"), 0o644)
		return errors.New("basic_ios::clear: iostream error")
	}
	kept := modelDirWithFile(t)
	_, err = Convert(context.Background(), hfDir("blip2-llama"), kept, Options{Quantizer: failing})
	if err == nil || !strings.Contains(err.Error(), "quantizing") || strings.Contains(err.Error(), "\n") {
		t.Errorf("failing quantizer: %v", err)
	}
	checkUntouched(t, kept)

	// OPT and explicit llama.cpp-free types never call it.
	res, err = Convert(context.Background(), hfDir("blip2-opt"), t.TempDir(), Options{Quantizer: failing})
	if err != nil || res.Quantized {
		t.Errorf("OPT: %v, quantized %v", err, res.Quantized)
	}
}
