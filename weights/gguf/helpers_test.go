package gguf

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
)

// raw builds GGUF bytes by hand, independently of the Writer, for malformed
// inputs.
type raw struct{ b []byte }

func (r *raw) u8(v uint8) *raw   { r.b = append(r.b, v); return r }
func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) pad(a int) *raw {
	for len(r.b)%a != 0 {
		r.b = append(r.b, 0)
	}
	return r
}
func (r *raw) zeros(n int) *raw { r.b = append(r.b, make([]byte, n)...); return r }

// header starts a file: magic, version, tensor count, KV count.
func header(version uint32, nTensors, nKV uint64) *raw {
	r := &raw{b: []byte("GGUF")}
	return r.u32(version).u64(nTensors).u64(nKV)
}

// tensorInfo appends one tensor description.
func (r *raw) tensorInfo(name string, dims []uint64, typ Type, off uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(off)
}

// testTensor is a tensor to write and the bytes expected back.
type testTensor struct {
	name string
	typ  Type
	dims []uint64
	data []byte
}

// writeTensors writes kvs and tensors with w and returns the file bytes.
// Data is fed through the callback in small uneven pieces to exercise
// streaming.
func writeTensors(t testing.TB, w *Writer, tensors []testTensor) []byte {
	t.Helper()
	for _, tt := range tensors {
		if err := w.AddTensor(tt.name, tt.typ, tt.dims); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	err := w.WriteTo(&buf, func(i int, info TensorInfo, out io.Writer) error {
		d := tensors[i].data
		for len(d) > 0 {
			n := min(len(d), 7)
			if _, err := out.Write(d[:n]); err != nil {
				return err
			}
			d = d[n:]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
