package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// valueType is gguf_type, the type tag of a metadata value.
type valueType uint32

const (
	typeUint8   valueType = 0
	typeInt8    valueType = 1
	typeUint16  valueType = 2
	typeInt16   valueType = 3
	typeUint32  valueType = 4
	typeInt32   valueType = 5
	typeFloat32 valueType = 6
	typeBool    valueType = 7
	typeString  valueType = 8
	typeArray   valueType = 9
	typeUint64  valueType = 10
	typeInt64   valueType = 11
	typeFloat64 valueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t valueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// size is the encoded size of a fixed-size type, 0 for string and array.
func (t valueType) size() int {
	switch t {
	case typeUint8, typeInt8, typeBool:
		return 1
	case typeUint16, typeInt16:
		return 2
	case typeUint32, typeInt32, typeFloat32:
		return 4
	case typeUint64, typeInt64, typeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one value of type t can take; it bounds array
// lengths by the bytes left before anything is allocated.
func (t valueType) minSize() int {
	switch t {
	case typeString:
		return 8 // length
	case typeArray:
		return 12 // element type + count
	}
	return t.size()
}

// maxArrayDepth bounds nested arrays so a hostile file cannot recurse deeply.
const maxArrayDepth = 8

// le is the byte order of every GGUF number (big-endian files are refused).
var le = binary.LittleEndian

// decoder reads GGUF values from a byte slice; every read is bounds-checked
// and reports what it was reading when it runs out.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) take(n int, what string) ([]byte, error) {
	if n < 0 || n > d.left() {
		return nil, fmt.Errorf("%s: needs %d bytes at offset %d, only %d left", what, n, d.off, d.left())
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p, nil
}

func (d *decoder) u32(what string) (uint32, error) {
	p, err := d.take(4, what)
	if err != nil {
		return 0, err
	}
	return le.Uint32(p), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	p, err := d.take(8, what)
	if err != nil {
		return 0, err
	}
	return le.Uint64(p), nil
}

func (d *decoder) str(what string) (string, error) {
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(d.left()) {
		return "", fmt.Errorf("%s: length %d exceeds the %d bytes left at offset %d", what, n, d.left(), d.off)
	}
	p, _ := d.take(int(n), what)
	return string(p), nil
}

// value decodes one value of type t (the type tag already read).
func (d *decoder) value(t valueType, depth int) (any, error) {
	if t == typeArray {
		return d.array(depth)
	}
	if t == typeString {
		return d.str("string")
	}
	n := t.size()
	if n == 0 {
		return nil, fmt.Errorf("unknown value type %d", uint32(t))
	}
	p, err := d.take(n, t.String()+" value")
	if err != nil {
		return nil, err
	}
	switch t {
	case typeUint8:
		return p[0], nil
	case typeInt8:
		return int8(p[0]), nil
	case typeUint16:
		return le.Uint16(p), nil
	case typeInt16:
		return int16(le.Uint16(p)), nil
	case typeUint32:
		return le.Uint32(p), nil
	case typeInt32:
		return int32(le.Uint32(p)), nil
	case typeFloat32:
		return math.Float32frombits(le.Uint32(p)), nil
	case typeBool:
		return decodeBool(p[0])
	case typeUint64:
		return le.Uint64(p), nil
	case typeInt64:
		return int64(le.Uint64(p)), nil
	default: // typeFloat64
		return math.Float64frombits(le.Uint64(p)), nil
	}
}

func decodeBool(b byte) (bool, error) {
	// The spec allows only 0 and 1; anything else is corruption.
	switch b {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, fmt.Errorf("bool value %d is neither 0 nor 1", b)
}

// array decodes an array's element type, count and elements into a typed
// slice ([]uint32, []string, ...) or, for arrays of arrays, []any.
func (d *decoder) array(depth int) (any, error) {
	if depth >= maxArrayDepth {
		return nil, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
	}
	et, err := d.u32("array element type")
	if err != nil {
		return nil, err
	}
	t := valueType(et)
	min := t.minSize()
	if min == 0 {
		return nil, fmt.Errorf("array of unknown value type %d", et)
	}
	count, err := d.u64("array length")
	if err != nil {
		return nil, err
	}
	if count > uint64(d.left()/min) {
		return nil, fmt.Errorf("array of %d %s values needs at least %d bytes per value, only %d bytes left", count, t, min, d.left())
	}
	n := int(count)
	switch t {
	case typeString:
		v := make([]string, n)
		for i := range v {
			if v[i], err = d.str(fmt.Sprintf("string %d", i)); err != nil {
				return nil, err
			}
		}
		return v, nil
	case typeArray:
		v := make([]any, n)
		for i := range v {
			if v[i], err = d.array(depth + 1); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return v, nil
	}
	p, _ := d.take(n*min, t.String()+" array") // length checked above
	switch t {
	case typeUint8:
		return append([]uint8{}, p...), nil
	case typeInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(p[i])
		}
		return v, nil
	case typeBool:
		v := make([]bool, n)
		for i := range v {
			if v[i], err = decodeBool(p[i]); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return v, nil
	case typeUint16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = le.Uint16(p[2*i:])
		}
		return v, nil
	case typeInt16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(le.Uint16(p[2*i:]))
		}
		return v, nil
	case typeUint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = le.Uint32(p[4*i:])
		}
		return v, nil
	case typeInt32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(le.Uint32(p[4*i:]))
		}
		return v, nil
	case typeFloat32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(p[4*i:]))
		}
		return v, nil
	case typeUint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = le.Uint64(p[8*i:])
		}
		return v, nil
	case typeInt64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(le.Uint64(p[8*i:]))
		}
		return v, nil
	default: // typeFloat64
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(p[8*i:]))
		}
		return v, nil
	}
}

// appendValue appends v's GGUF type tag and encoding to b. The GGUF type
// follows the Go type exactly; other Go types (int, uint, named types, maps)
// are refused.
func appendValue(b []byte, v any, depth int) ([]byte, error) {
	t, err := typeOf(v, depth)
	if err != nil {
		return nil, err
	}
	b = le.AppendUint32(b, uint32(t))
	return appendPayload(b, v, depth)
}

// typeOf returns the GGUF type tag for a Go value.
func typeOf(v any, depth int) (valueType, error) {
	switch v.(type) {
	case uint8:
		return typeUint8, nil
	case int8:
		return typeInt8, nil
	case uint16:
		return typeUint16, nil
	case int16:
		return typeInt16, nil
	case uint32:
		return typeUint32, nil
	case int32:
		return typeInt32, nil
	case float32:
		return typeFloat32, nil
	case bool:
		return typeBool, nil
	case string:
		return typeString, nil
	case uint64:
		return typeUint64, nil
	case int64:
		return typeInt64, nil
	case float64:
		return typeFloat64, nil
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []float32, []bool, []string, []uint64, []int64, []float64, []any:
		if depth >= maxArrayDepth {
			return 0, fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
		}
		return typeArray, nil
	}
	return 0, fmt.Errorf("unsupported Go type %T (use uint8..uint64, int8..int64, float32, float64, bool, string, a slice of one of these, or []any of slices)", v)
}

// appendPayload appends v's encoding without its type tag.
func appendPayload(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case uint8:
		return append(b, x), nil
	case int8:
		return append(b, byte(x)), nil
	case uint16:
		return le.AppendUint16(b, x), nil
	case int16:
		return le.AppendUint16(b, uint16(x)), nil
	case uint32:
		return le.AppendUint32(b, x), nil
	case int32:
		return le.AppendUint32(b, uint32(x)), nil
	case float32:
		return le.AppendUint32(b, math.Float32bits(x)), nil
	case bool:
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
	case string:
		b = le.AppendUint64(b, uint64(len(x)))
		return append(b, x...), nil
	case uint64:
		return le.AppendUint64(b, x), nil
	case int64:
		return le.AppendUint64(b, uint64(x)), nil
	case float64:
		return le.AppendUint64(b, math.Float64bits(x)), nil
	case []uint8:
		return appendArray(b, typeUint8, x, func(b []byte, e uint8) []byte { return append(b, e) }), nil
	case []int8:
		return appendArray(b, typeInt8, x, func(b []byte, e int8) []byte { return append(b, byte(e)) }), nil
	case []uint16:
		return appendArray(b, typeUint16, x, le.AppendUint16), nil
	case []int16:
		return appendArray(b, typeInt16, x, func(b []byte, e int16) []byte { return le.AppendUint16(b, uint16(e)) }), nil
	case []uint32:
		return appendArray(b, typeUint32, x, le.AppendUint32), nil
	case []int32:
		return appendArray(b, typeInt32, x, func(b []byte, e int32) []byte { return le.AppendUint32(b, uint32(e)) }), nil
	case []float32:
		return appendArray(b, typeFloat32, x, func(b []byte, e float32) []byte { return le.AppendUint32(b, math.Float32bits(e)) }), nil
	case []bool:
		return appendArray(b, typeBool, x, func(b []byte, e bool) []byte {
			if e {
				return append(b, 1)
			}
			return append(b, 0)
		}), nil
	case []string:
		return appendArray(b, typeString, x, func(b []byte, e string) []byte {
			b = le.AppendUint64(b, uint64(len(e)))
			return append(b, e...)
		}), nil
	case []uint64:
		return appendArray(b, typeUint64, x, le.AppendUint64), nil
	case []int64:
		return appendArray(b, typeInt64, x, func(b []byte, e int64) []byte { return le.AppendUint64(b, uint64(e)) }), nil
	case []float64:
		return appendArray(b, typeFloat64, x, func(b []byte, e float64) []byte { return le.AppendUint64(b, math.Float64bits(e)) }), nil
	case []any:
		// GGUF arrays are homogeneous: an array of arrays, where each inner
		// array carries its own element type.
		b = le.AppendUint32(b, uint32(typeArray))
		b = le.AppendUint64(b, uint64(len(x)))
		for i, e := range x {
			t, err := typeOf(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			if t != typeArray {
				return nil, fmt.Errorf("element %d: []any may only hold arrays (GGUF arrays are homogeneous), got %T", i, e)
			}
			if b, err = appendPayload(b, e, depth+1); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("unsupported Go type %T", v)
}

func appendArray[T any](b []byte, t valueType, x []T, put func([]byte, T) []byte) []byte {
	b = le.AppendUint32(b, uint32(t))
	b = le.AppendUint64(b, uint64(len(x)))
	for _, e := range x {
		b = put(b, e)
	}
	return b
}
