package main

import (
	"io"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// rewriteGGUF copies the GGUF file src to dst with its metadata passed
// through edit (which returns the value to write, or nil to drop the key)
// and its tensors unchanged: the probe's ggufpatch.py and vocabpatch.py.
func rewriteGGUF(t *testing.T, src, dst string, edit func(key string, v any) any) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KV {
		if v := edit(kv.Key, kv.Value); v != nil {
			w.Add(kv.Key, v)
		}
	}
	for _, ti := range f.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims); err != nil {
			t.Fatal(err)
		}
	}
	err = gguf.WriteFile(dst, w, func(i int, info gguf.TensorInfo, out io.Writer) error {
		_, data, _ := f.Tensor(info.Name)
		_, err := out.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setKey is an edit for rewriteGGUF that sets key to v.
func setKey(key string, v any) func(string, any) any {
	return func(k string, old any) any {
		if k == key {
			return v
		}
		return old
	}
}
