package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// ErrPickle is wrapped by every error refusing a PyTorch pickle checkpoint.
var ErrPickle = errors.New("refusing a PyTorch pickle checkpoint")

// pickleAdvice says why pickles are refused and how to get safetensors.
const pickleAdvice = "PyTorch pickle files can run arbitrary code when loaded and blip2chat never executes them; " +
	"download the model.safetensors files instead (the Hugging Face repos of Salesforce/blip2-* have them, e.g. " +
	`huggingface-cli download Salesforce/blip2-opt-2.7b --include "*.safetensors" "*.json" "*.model" "*.txt"), ` +
	"or convert the checkpoint to safetensors elsewhere"

func pickleError(path, what string) error {
	return fmt.Errorf("%s: %s: %w: %s", path, what, ErrPickle, pickleAdvice)
}

var pickleExts = []string{".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}

// hasPickleExt reports file names PyTorch uses for pickles, including the
// index of a sharded pickle checkpoint (pytorch_model.bin.index.json).
func hasPickleExt(path string) bool {
	name := strings.ToLower(filepath.Base(path))
	name = strings.TrimSuffix(name, ".index.json")
	for _, ext := range pickleExts {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// looksLikePickle reports a zip (torch.save since 1.6) or raw pickle
// (protocol 2-5) signature that is not also a plausible safetensors start.
// The check matters because a safetensors header of 640 bytes begins with
// 0x80 0x02 too; a real one is followed by '{' at offset 8.
func looksLikePickle(head []byte, size int64) bool {
	zip := len(head) >= 4 && string(head[:4]) == "PK\x03\x04"
	pkl := len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5
	if !zip && !pkl {
		return false
	}
	if len(head) >= 9 && head[8] == '{' {
		n := binary.LittleEndian.Uint64(head)
		if n <= MaxHeaderSize && size >= 8 && n <= uint64(size-8) {
			return false
		}
	}
	return true
}

// CheckNotPickle returns an ErrPickle-wrapped error when path is named like a
// PyTorch pickle (*.bin, *.pt, *.pth, *.ckpt, *.pkl, pytorch_model.bin.index.json)
// or, whatever its name, starts with zip or pickle magic. It returns nil for
// anything else, including a missing file.
func CheckNotPickle(path string) error {
	if hasPickleExt(path) {
		return pickleError(path, "is a PyTorch pickle file")
	}
	f, err := safefile.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	head := make([]byte, 9)
	n, _ := io.ReadFull(f, head)
	if looksLikePickle(head[:n], st.Size()) {
		return pickleError(path, "holds PyTorch pickle/zip data, not safetensors")
	}
	return nil
}
