package bench

import (
	"io"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/weights/gguf"
)

// TestDecodeBytesPerToken: the decoder's matrices and the head count; an
// untied input embedding and a T5 encoder do not.
func TestDecodeBytesPerToken(t *testing.T) {
	f32 := func(rows, cols uint64) int64 { return int64(4 * rows * cols) }
	for _, c := range []struct {
		name    string
		tensors map[string][2]uint64 // name -> [cols, rows] (ggml order)
		want    int64
	}{
		{"tied head (OPT)", map[string][2]uint64{"token_embd.weight": {8, 50}, "blk.0.ffn_up.weight": {8, 32}},
			f32(50, 8) + f32(32, 8)},
		{"separate head (LLaMA)", map[string][2]uint64{"token_embd.weight": {8, 50}, "output.weight": {8, 50}, "blk.0.attn_q.weight": {8, 8}},
			f32(50, 8) + f32(8, 8)},
		{"encoder-decoder (T5)", map[string][2]uint64{"token_embd.weight": {8, 50}, "output.weight": {8, 50}, "enc.blk.0.attn_q.weight": {8, 8}, "dec.blk.0.attn_q.weight": {8, 16}},
			f32(50, 8) + f32(16, 8)},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := gguf.NewWriter()
			for name, d := range c.tensors {
				if err := w.AddTensor(name, gguf.TypeF32, []uint64{d[0], d[1]}); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(t.TempDir(), "llm.gguf")
			err := gguf.WriteFile(path, w, func(_ int, info gguf.TensorInfo, out io.Writer) error {
				_, err := io.WriteString(out, strings.Repeat("\x00", int(info.Size())))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeBytesPerToken(path)
			if err != nil || got != c.want {
				t.Errorf("DecodeBytesPerToken = %d, %v; want %d", got, err, c.want)
			}
		})
	}
	s := &Stage{Name: StageDecode, Times: []time.Duration{time.Second}, Tokens: 4, BytesPerToken: 2e9}
	if got := s.GBPerSecond(); got != 8 {
		t.Errorf("GBPerSecond = %v, want 8 (2 GB x 4 tokens/s)", got)
	}
}

// TestMeasureBandwidth: the unrolled sum is the plain sum for every
// length; a measurement is a positive, finite rate.
func TestMeasureBandwidth(t *testing.T) {
	for n := 0; n < 40; n++ {
		b := make([]uint64, n)
		var want uint64
		for i := range b {
			b[i] = uint64(i*i + 7)
			want += b[i]
		}
		if got := sumWords(b); got != want {
			t.Errorf("sumWords of %d words = %d, want %d", n, got, want)
		}
	}
	if bw := MeasureBandwidth(1<<20, 2, 2); !(bw > 0) || math.IsInf(bw, 0) {
		t.Errorf("MeasureBandwidth = %v", bw)
	}
}

// BenchmarkMemoryBandwidth sums a 1 GB slice with every core.
func BenchmarkMemoryBandwidth(b *testing.B) {
	threads := runtime.GOMAXPROCS(0)
	var best float64
	for i := 0; i < b.N; i++ {
		best = max(best, MeasureBandwidth(1<<30, threads, 3))
	}
	b.ReportMetric(best/1e9, "GB/s")
	b.ReportMetric(float64(threads), "threads")
}
