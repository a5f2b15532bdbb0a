//go:build linux

package safetensors

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rssFile reads the process's resident file-mapped memory (RssFile in
// /proc/self/status), in bytes.
func rssFile(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "RssFile:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseGivesBackPages reads a 64 MiB tensor of a mapped file, which
// makes it resident in the process, and checks that Release takes it back
// out (the converters' way of streaming a checkpoint larger than memory),
// while the data stays readable.
func TestReleaseGivesBackPages(t *testing.T) {
	const n = 16 << 20 // float32 elements: 64 MiB
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i % 1000)
	}
	path := filepath.Join(t.TempDir(), "big.safetensors")
	if err := WriteFile(path, []WriteTensor{F32Tensor("w", []int{n}, v)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := f.Tensor("w")
	before := rssFile(t)
	got, err := w.Float32()
	if err != nil {
		t.Fatal(err)
	}
	read := rssFile(t)
	w.Release()
	after := rssFile(t)
	t.Logf("RssFile: %d MiB before, %d MiB after reading, %d MiB after Release", before>>20, read>>20, after>>20)
	if read-before < 48<<20 {
		t.Skipf("reading 64 MiB raised RssFile by only %d MiB; cannot measure here", (read-before)>>20)
	}
	if after-before > 8<<20 {
		t.Errorf("RssFile %d MiB above the start after Release, want the tensor's pages given back", (after-before)>>20)
	}
	again, err := w.Float32()
	if err != nil || again[n-1] != got[n-1] || again[12345] != 345 {
		t.Errorf("data after Release: %v, %v", again[n-1], err)
	}
}

// TestReleaseKeepsOwnedMemory: a tensor of Parse's in-memory file is the
// caller's memory, which Release must leave alone (madvise would zero it).
func TestReleaseKeepsOwnedMemory(t *testing.T) {
	v := make([]float32, 1<<16)
	for i := range v {
		v[i] = 1.5
	}
	var buf strings.Builder
	if err := Write(&buf, []WriteTensor{F32Tensor("w", []int{len(v)}, v)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := f.Tensor("w")
	w.Release()
	got, err := w.Float32()
	if err != nil || got[len(got)-1] != 1.5 || math.IsNaN(float64(got[0])) {
		t.Fatalf("after Release: %v %v", got[len(got)-1], err)
	}
}
