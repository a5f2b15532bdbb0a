package plan

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/blip2chat/blip2chat/weights/gguf"
	"github.com/blip2chat/blip2chat/weights/safetensors"
)

type checkpoint map[string]safetensors.Tensor

func (c checkpoint) Tensor(name string) (safetensors.Tensor, bool) {
	t, ok := c[name]
	return t, ok
}

func (c checkpoint) Names() []string { return slices.Sorted(maps.Keys(c)) }

func TestExpect(t *testing.T) {
	ck := checkpoint{
		"w":   {Name: "w", DType: safetensors.BF16, Shape: []int{4, 8}},
		"ids": {Name: "ids", DType: safetensors.I64, Shape: []int{4}},
	}
	tests := []struct {
		name  string
		shape []int
		want  string // "" for no error
	}{
		{"w", []int{4, 8}, ""},
		{"w", []int{8, 4}, "checkpoint ck: tensor w has shape [4 8], expected [8 4] from config.json"},
		{"w", []int{32}, "has shape [4 8], expected [32]"},
		{"ids", []int{4}, "checkpoint ck: tensor ids has dtype I64, expected F32, F16 or BF16"},
		{"nope", []int{3}, "checkpoint ck: tensor nope is missing (expected shape [3])"},
	}
	for _, tt := range tests {
		got, err := Expect(ck, "ck", tt.name, tt.shape...)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Expect(%s, %v): %v", tt.name, tt.shape, err)
		case tt.want == "" && got.Name != tt.name:
			t.Errorf("Expect(%s) returned %q", tt.name, got.Name)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("Expect(%s, %v) = %v, want %q", tt.name, tt.shape, err, tt.want)
		}
	}
}

func TestTensorSizes(t *testing.T) {
	tests := []struct {
		t     Tensor
		n     int
		dims  []uint64
		bytes int64
		err   string
	}{
		{Tensor{Name: "m", Type: gguf.TypeQ8_0, Shape: []int{3, 64}}, 192, []uint64{64, 3}, 3 * 2 * 34, ""},
		{Tensor{Name: "v", Type: gguf.TypeF32, Shape: []int{5}}, 5, []uint64{5}, 20, ""},
		{Tensor{Name: "h", Type: gguf.TypeBF16, Shape: []int{2, 3, 4}}, 24, []uint64{4, 3, 2}, 48, ""},
		{Tensor{Name: "odd", Type: gguf.TypeQ8_0, Shape: []int{2, 33}}, 66, []uint64{33, 2}, 0, "tensor odd:"},
		{Tensor{Name: "s", Type: gguf.TypeF32}, 1, []uint64{}, 0, "tensor s: no shape"},
	}
	for _, tt := range tests {
		if n := tt.t.NumElements(); n != tt.n {
			t.Errorf("%s: NumElements %d, want %d", tt.t.Name, n, tt.n)
		}
		if d := tt.t.Dims(); !slices.Equal(d, tt.dims) {
			t.Errorf("%s: Dims %v, want %v", tt.t.Name, d, tt.dims)
		}
		b, err := tt.t.Bytes()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: Bytes error %v, want %q", tt.t.Name, err, tt.err)
			}
		} else if err != nil || b != tt.bytes {
			t.Errorf("%s: Bytes = %d, %v; want %d", tt.t.Name, b, err, tt.bytes)
		}
	}
}

func TestEncode(t *testing.T) {
	vals := func(v ...float32) func() ([]float32, error) { return func() ([]float32, error) { return v, nil } }
	tests := []struct {
		t    Tensor
		want string // error
	}{
		{Tensor{Name: "ok", Type: gguf.TypeF32, Shape: []int{2}, Values: vals(1, 2)}, ""},
		{Tensor{Name: "short", Type: gguf.TypeF32, Shape: []int{3}, Values: vals(1, 2)}, "2 values for shape [3]"},
		{Tensor{Name: "fails", Type: gguf.TypeF32, Shape: []int{1},
			Values: func() ([]float32, error) { return nil, errors.New("read error") }}, "read error"},
		{Tensor{Name: "q4", Type: gguf.TypeQ4_K, Shape: []int{1}, Values: vals(1)}, "cannot encode type Q4_K"},
	}
	for _, tt := range tests {
		b, err := tt.t.Encode()
		if tt.want == "" {
			if err != nil || !bytes.Equal(b, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}) {
				t.Errorf("%s: Encode = %x, %v", tt.t.Name, b, err)
			}
			continue
		}
		if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
			t.Errorf("%s: Encode error %v, want %q", tt.t.Name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), tt.t.Name) {
			t.Errorf("%s: error %q repeats the tensor name", tt.t.Name, err)
		}
	}
}

func TestNewWriter(t *testing.T) {
	ts := []Tensor{{Name: "a", Type: gguf.TypeF32, Shape: []int{2, 3}}, {Name: "b", Type: gguf.TypeF16, Shape: []int{4}}}
	w, err := (&File{KV: []gguf.KV{{Key: gguf.KeyArchitecture, Value: "x"}}, Tensors: ts}).newWriter()
	if err != nil {
		t.Fatal(err)
	}
	infos := w.Tensors()
	if len(infos) != 2 || infos[0].Name != "a" || !slices.Equal(infos[0].Dims, []uint64{3, 2}) ||
		infos[1].Name != "b" || infos[1].Type != gguf.TypeF16 {
		t.Errorf("tensors %+v", infos)
	}
	_, err = (&File{Tensors: []Tensor{ts[0], ts[0]}}).newWriter()
	if err == nil || !strings.Contains(err.Error(), `tensor "a" added twice`) {
		t.Errorf("duplicate tensor: %v", err)
	}
}
