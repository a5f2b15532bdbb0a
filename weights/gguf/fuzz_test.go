package gguf

import (
	"bytes"
	"io"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Parse must never panic; when it
// accepts a file, the result must satisfy the File invariants and survive a
// Writer round trip with identical metadata encodings and tensor bytes.
func FuzzParse(f *testing.F) {
	for _, align := range []int{0, 1, 64} {
		file, _ := writtenFile(f, align)
		f.Add(file)
	}
	f.Add(specFile)
	f.Add(header(3, 0, 0).b)
	f.Add(header(2, 1, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeArray)).u64(1).u32(uint32(typeString)).u64(1).str("s").
		tensorInfo("t", []uint64{32}, TypeQ8_0, 0).pad(32).zeros(34).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		checkInvariants(t, g, data)

		w := NewWriter()
		for _, kv := range g.KV {
			w.Add(kv.Key, kv.Value)
		}
		for _, ti := range g.Tensors {
			if len(ti.Name) >= maxNameLen { // legal in GGUF, refused by the ggml-compatible Writer
				return
			}
			if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
				t.Fatalf("Writer refuses parsed tensor: %v", err)
			}
		}
		var out bytes.Buffer
		err = w.WriteTo(&out, func(i int, info TensorInfo, o io.Writer) error {
			_, b, _ := g.Tensor(info.Name)
			_, err := o.Write(b)
			return err
		})
		if err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		h, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if len(h.KV) != len(g.KV) || len(h.Tensors) != len(g.Tensors) || h.Alignment != g.Alignment {
			t.Fatalf("rewrite changed counts or alignment")
		}
		for i, kv := range g.KV {
			a, errA := appendValue(nil, kv.Value, 0)
			b, errB := appendValue(nil, h.KV[i].Value, 0)
			if errA != nil || errB != nil || h.KV[i].Key != kv.Key || !bytes.Equal(a, b) {
				t.Fatalf("key %q changed in the rewrite", kv.Key)
			}
		}
		for _, ti := range g.Tensors {
			_, a, _ := g.Tensor(ti.Name)
			hi, b, ok := h.Tensor(ti.Name)
			if !ok || hi.Type != ti.Type || len(hi.Dims) != len(ti.Dims) || !bytes.Equal(a, b) {
				t.Fatalf("tensor %q changed in the rewrite", ti.Name)
			}
		}
	})
}
