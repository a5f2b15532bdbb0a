package gguf

import (
	"fmt"
	"math/bits"
)

// Type is a tensor element type, ggml's enum ggml_type. Quantized types
// store elements in blocks: BlockSize elements in BlockBytes bytes.
type Type uint32

// The ggml tensor types (values as in ggml.h; 4, 5, 31-33 and 36-38 were
// removed from ggml and are unknown here).
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
	TypeMXFP4   Type = 39
	TypeNVFP4   Type = 40
	TypeQ1_0    Type = 41
	TypeQ2_0    Type = 42
)

type typeTraits struct {
	name       string
	blockSize  int
	blockBytes int
}

// qkK is ggml's QK_K, the super-block size of the k-quants.
const qkK = 256

// types holds each known type's block layout: sizeof(block_xxx) from
// ggml-common.h. (gguf-py's GGML_QUANT_SIZES says 40 bytes for Q8_1; ggml's
// block_q8_1 is 36, and ggml is what reads the files.)
var types = map[Type]typeTraits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 18},
	TypeQ4_1:    {"Q4_1", 32, 20},
	TypeQ5_0:    {"Q5_0", 32, 22},
	TypeQ5_1:    {"Q5_1", 32, 24},
	TypeQ8_0:    {"Q8_0", 32, 34},
	TypeQ8_1:    {"Q8_1", 32, 36},
	TypeQ2_K:    {"Q2_K", qkK, 84},
	TypeQ3_K:    {"Q3_K", qkK, 110},
	TypeQ4_K:    {"Q4_K", qkK, 144},
	TypeQ5_K:    {"Q5_K", qkK, 176},
	TypeQ6_K:    {"Q6_K", qkK, 210},
	TypeQ8_K:    {"Q8_K", qkK, 292},
	TypeIQ2_XXS: {"IQ2_XXS", qkK, 66},
	TypeIQ2_XS:  {"IQ2_XS", qkK, 74},
	TypeIQ3_XXS: {"IQ3_XXS", qkK, 98},
	TypeIQ1_S:   {"IQ1_S", qkK, 50},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18},
	TypeIQ3_S:   {"IQ3_S", qkK, 110},
	TypeIQ2_S:   {"IQ2_S", qkK, 82},
	TypeIQ4_XS:  {"IQ4_XS", qkK, 136},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", qkK, 56},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", qkK, 54},
	TypeTQ2_0:   {"TQ2_0", qkK, 66},
	TypeMXFP4:   {"MXFP4", 32, 17},
	TypeNVFP4:   {"NVFP4", 64, 36},
	TypeQ1_0:    {"Q1_0", 128, 18},
	TypeQ2_0:    {"Q2_0", 64, 18},
}

// String returns the type's name as gguf-py spells it ("F32", "Q4_K"), or
// "Type(N)" for an unknown type.
func (t Type) String() string {
	if tt, ok := types[t]; ok {
		return tt.name
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// Known reports whether t is a ggml type this package knows the layout of.
func (t Type) Known() bool {
	_, ok := types[t]
	return ok
}

// BlockSize is the number of elements per block (1 for plain types), or 0
// for an unknown type.
func (t Type) BlockSize() int { return types[t].blockSize }

// BlockBytes is the number of bytes per block, or 0 for an unknown type.
func (t Type) BlockBytes() int { return types[t].blockBytes }

// RowBytes returns the bytes taken by n consecutive elements (a row of n
// columns). It fails when t is unknown, n is negative or n is not a multiple
// of the block size.
func (t Type) RowBytes(n int) (int, error) {
	tt, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("gguf: unknown tensor type %d", uint32(t))
	}
	if n < 0 {
		return 0, fmt.Errorf("gguf: negative row length %d", n)
	}
	if n%tt.blockSize != 0 {
		return 0, fmt.Errorf("gguf: row of %d elements is not a multiple of the %s block size %d", n, tt.name, tt.blockSize)
	}
	return n / tt.blockSize * tt.blockBytes, nil
}

// maxDims is ggml's GGML_MAX_DIMS.
const maxDims = 4

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name string
	// Dims is the shape in ggml order: Dims[0] is the fastest-varying
	// dimension (the columns of a row-major matrix), so a PyTorch weight of
	// shape [out, in] has Dims {in, out}.
	Dims   []uint64
	Type   Type
	Offset uint64 // of the tensor's bytes from the start of the data section
}

// Shape is the tensor's shape in row-major (PyTorch) order, outermost
// first: Dims reversed. Messages print shapes in this order only, the
// order of a checkpoint's and of the schemas' shapes.
func (t TensorInfo) Shape() []uint64 {
	s := make([]uint64, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = d
	}
	return s
}

// NumElements is the product of the dimensions (1 for no dimensions).
func (t TensorInfo) NumElements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Size is the number of bytes the tensor's data takes, or 0 for an unknown
// type.
func (t TensorInfo) Size() uint64 {
	tt, ok := types[t.Type]
	if !ok {
		return 0
	}
	return t.NumElements() / uint64(tt.blockSize) * uint64(tt.blockBytes)
}

// checkShape validates a tensor's dimensions and type the way ggml does and
// returns its size in bytes: at most maxDims dimensions, each below 2^63, a
// known type, a row length that is a multiple of the block size, and an
// element count and byte size that fit in an int64.
func checkShape(dims []uint64, typ Type) (uint64, error) {
	if len(dims) > maxDims {
		return 0, fmt.Errorf("%d dimensions, at most %d allowed", len(dims), maxDims)
	}
	tt, ok := types[typ]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(typ))
	}
	n := uint64(1)
	for i, d := range dims {
		if d > 1<<63-1 {
			return 0, fmt.Errorf("dimension %d is %d, too large", i, d)
		}
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > 1<<63-1 {
			return 0, fmt.Errorf("shape %v has too many elements", dims)
		}
		n = lo
	}
	row := uint64(1)
	if len(dims) > 0 {
		row = dims[0]
	}
	if row%uint64(tt.blockSize) != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of the %s block size %d", row, tt.name, tt.blockSize)
	}
	hi, size := bits.Mul64(n/uint64(tt.blockSize), uint64(tt.blockBytes))
	if hi != 0 || size > 1<<63-1 {
		return 0, fmt.Errorf("shape %v is too large in bytes", dims)
	}
	return size, nil
}
