package lmconv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/plan"
)

// Values of enum llama_ftype (general.file_type).
const (
	ftypeAllF32     = 0
	ftypeMostlyF16  = 1
	ftypeMostlyQ8_0 = 7
	ftypeQ4_K_M     = 15
)

// DefaultType is the --llm-type used when none is given: 4-bit k-quants
// (llama.cpp's Q4_K_M mix) keep a 7B model near 4 GB.
const DefaultType = "q4_k_m"

// Type is a parsed --llm-type.
type Type struct {
	Name string // "f32", "f16", "q8_0" or "q4_k_m"
	// Write is the matrix type PlanFile writes: F32, F16 or Q8_0.
	Write gguf.Type
	// FType is the llama_ftype of the finished file.
	FType int32
	// Quantize says the written file (f16) must then be quantized to FType
	// by llama.cpp's llama_model_quantize: see Finish.
	Quantize bool
}

// TypeNames lists the accepted --llm-type values.
func TypeNames() []string { return []string{"f32", "f16", "q8_0", "q4_k_m"} }

// ParseType parses an --llm-type value; "" means DefaultType.
func ParseType(s string) (Type, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if name == "" {
		name = DefaultType
	}
	switch name {
	case "f32":
		return Type{Name: name, Write: gguf.TypeF32, FType: ftypeAllF32}, nil
	case "f16":
		return Type{Name: name, Write: gguf.TypeF16, FType: ftypeMostlyF16}, nil
	case "q8_0":
		// Written directly, as convert_hf_to_gguf.py --outtype q8_0 does.
		return Type{Name: name, Write: gguf.TypeQ8_0, FType: ftypeMostlyQ8_0}, nil
	case "q4_k_m":
		return Type{Name: name, Write: gguf.TypeF16, FType: ftypeQ4_K_M, Quantize: true}, nil
	}
	return Type{}, fmt.Errorf("unknown language-model type %q (want %s)", s, strings.Join(TypeNames(), ", "))
}

// ParseFamilyType parses an --llm-type value for a language model of the
// given family (text_config.model_type): ParseOPTType for "opt", ParseType
// for the llama.cpp families.
func ParseFamilyType(family, s string) (Type, error) {
	if family == "opt" {
		return ParseOPTType(s)
	}
	return ParseType(s)
}

// Quantizer quantizes the GGUF model file in into a new file out with
// llama.cpp's llama_model_quantize, to the given llama_ftype. weights cannot
// import engine, so the convert command passes one built on
// engine/llamacpp/capi's Library.Quantize.
type Quantizer func(in, out string, ftype int32) error

// Finish completes a conversion to t of the file at path, planned by
// PlanFile and written by plan.WriteFiles: when t.Quantize, the file is quantized into a temporary
// file in the same folder, which then replaces it. On error path is left as
// it was (a working f16 model) and the temporary file is removed.
func Finish(path string, t Type, q Quantizer) error {
	if !t.Quantize {
		return nil
	}
	if q == nil {
		return fmt.Errorf("%s: quantizing to %s needs the llama.cpp library", filepath.Base(path), t.Name)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".quant-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	// The converter's last tensors (the LM head: 0.5 GB of f32 for a 7B)
	// are garbage by now; give them back before llama.cpp allocates its
	// own buffers, or both count in the process's peak.
	debug.FreeOSMemory()
	if err := q(path, tmp, t.FType); err != nil {
		os.Remove(tmp)
		// llama.cpp reports a full disk as "basic_ios::clear: iostream
		// error": say what happened when the disk is (nearly) full.
		if free, ok := plan.FreeSpace(filepath.Dir(path)); ok && free < 64<<20 {
			need := int64(0)
			if st, err := os.Stat(path); err == nil {
				need = st.Size()
			}
			return &plan.NoSpaceError{Dir: filepath.Dir(path), Need: need, Free: -1, File: fmt.Sprintf("%s as %s", filepath.Base(path), t.Name)}
		}
		return fmt.Errorf("quantizing %s to %s: %w", filepath.Base(path), t.Name, err)
	}
	if st, err := os.Stat(tmp); err != nil || st.Size() == 0 {
		os.Remove(tmp)
		if err == nil {
			err = errors.New("the quantizer wrote nothing")
		}
		return fmt.Errorf("quantizing %s to %s: %w", filepath.Base(path), t.Name, err)
	}
	// llama.cpp does not sync what it writes; do it before the rename.
	if f, err := os.OpenFile(tmp, os.O_RDWR, 0); err == nil {
		f.Chmod(0o644) // CreateTemp makes 0600, like the file it replaces is not
		f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// QuantizedBytes bounds the size of the file llama.cpp's quantizer makes of
// the planned f16 file f for type t, for the free-space check before a
// conversion: a matrix whose rows are a multiple of 256 takes at most
// Q6_K's 210 bytes per 256 weights (q4_k_m makes most Q4_K, 144), any
// other at most Q8_0's 34 per 32 (the fallback for rows Q4_K cannot
// split), vectors stay f32; 1 MB more for the header.
func QuantizedBytes(f *plan.File, t Type) int64 {
	if !t.Quantize {
		return 0
	}
	n := int64(1 << 20)
	for _, x := range f.Tensors {
		e := int64(x.NumElements())
		switch {
		case len(x.Shape) < 2 || x.Type == gguf.TypeF32:
			n += 4 * e
		case x.Shape[len(x.Shape)-1]%256 == 0:
			n += e / 256 * 210
		default:
			n += (e + 31) / 32 * 34
		}
	}
	return n
}
