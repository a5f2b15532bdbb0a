package safetensors

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzParse checks that Parse never panics, that whatever it accepts is
// self-consistent, and that writing an accepted file and parsing it again
// gives the same tensors and metadata.
func FuzzParse(f *testing.F) {
	f.Add(readGolden(f, "blip2-itm/golden.safetensors"))
	for _, h := range []string{
		`{}`,
		`{"__metadata__":{"format":"pt"}}`,
		`{"__metadata__":null,"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`,
		`{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}`,
		`{"x.weight":{"dtype":"U8","shape":[2],"data_offsets":[10,8]}}`,
		`{"s":{"dtype":"F64","shape":[],"data_offsets":[8,16]},"e":{"dtype":"BOOL","shape":[0],"data_offsets":[3,3]}}`,
		`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`,
		`{"a":{"data_offsets":[0,1],"extra":[{}],"shape":[1],"dtype":"F8_E4M3"}}`,
	} {
		f.Add(rawFile(h, 24))
	}
	var buf bytes.Buffer
	var all []WriteTensor
	for i, dt := range allDTypes {
		all = append(all, WriteTensor{Name: string(dt), DType: dt, Shape: []int{i % 3, 1}, Data: make([]byte, i%3*dt.Size())})
	}
	if err := Write(&buf, all, map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		checkInvariants(t, file, len(data))
		var out bytes.Buffer
		if err := Write(&out, toWrite(file), file.Metadata()); err != nil {
			t.Fatalf("accepted file cannot be rewritten: %v", err)
		}
		again, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if !slices.Equal(again.Names(), file.Names()) || len(again.Metadata()) != len(file.Metadata()) {
			t.Fatal("rewrite changed names or metadata")
		}
		for k, v := range file.Metadata() {
			if again.Metadata()[k] != v {
				t.Fatalf("metadata %q changed", k)
			}
		}
		for _, name := range file.Names() {
			a, _ := file.Tensor(name)
			b, _ := again.Tensor(name)
			if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("tensor %q changed in the rewrite", name)
			}
		}
	})
}
