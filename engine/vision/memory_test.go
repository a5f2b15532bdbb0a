package vision

import (
	"os"
	"reflect"
	"runtime"
	"testing"

	"github.com/blip2chat/blip2chat/engine/tensor"
)

// TestLoadDoesNotCopyWeights: loading a vision.gguf maps the file; the Go
// heap must not grow by anything like the weights' size (f32 tensors are
// viewed in place, f16/q8_0 matrices are converted inside the kernels).
// The activation buffers are allocated at load (they dominate on these tiny
// models but are megabytes against gigabytes on real ones), so they are
// counted separately; anything beyond them must stay under a quarter of the
// file, which a second copy of the matrices (most of the file) exceeds.
func TestLoadDoesNotCopyWeights(t *testing.T) {
	for _, wt := range []string{"f32", "f16", "q8_0"} {
		t.Run(wt, func(t *testing.T) {
			path := modelPath(t, "instructblip-llama", wt)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m, err := Load(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			runtime.GC()
			runtime.ReadMemStats(&after)
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			buffers := bufferBytes(&m.buf)
			if limit := buffers + st.Size()/4; grown > limit {
				t.Errorf("Load grew the heap by %d bytes for a %d-byte file with %d bytes of activation buffers: weights were copied", grown, st.Size(), buffers)
			}
			t.Logf("%s: file %d bytes, heap +%d bytes after Load, of which activation buffers %d", wt, st.Size(), grown, buffers)
		})
	}
}

// bufferBytes sums the activation buffers of a model.
func bufferBytes(b *buffers) int64 {
	var n int64
	v := reflect.ValueOf(b).Elem()
	matType := reflect.TypeFor[*tensor.Mat]()
	for i := range v.NumField() {
		if f := v.Field(i); f.Type() == matType && !f.IsNil() {
			n += int64(f.Elem().FieldByName("Data").Len()) * 4
		}
	}
	return n
}
