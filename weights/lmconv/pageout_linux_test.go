package lmconv

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

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
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no RssFile")
	return 0
}

// TestPageOut maps a 64 MiB file as llama.cpp's quantizer maps its input,
// reads it all, and checks that pageOut takes its pages out of the
// process's resident memory while the mapping stays readable.
func TestPageOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.gguf")
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	before := rssFile(t)
	var sum int
	for i := 0; i < len(m); i += 4096 {
		sum += int(m[i])
	}
	read := rssFile(t)
	if sum == 0 {
		t.Fatal("read nothing")
	}
	if read-before < 48<<20 {
		t.Skipf("reading 64 MiB raised RssFile by %d MiB only", (read-before)>>20)
	}
	stop := pageOut(path)
	time.Sleep(3 * pageOutEvery)
	stop()
	after := rssFile(t)
	t.Logf("RssFile %d MiB, %d MiB after reading, %d MiB after pageOut", before>>20, read>>20, after>>20)
	if after-before > 16<<20 {
		t.Errorf("RssFile still %d MiB above the start", (after-before)>>20)
	}
	if m[len(m)-1] != data[len(data)-1] || m[4096*7] != 7 {
		t.Error("mapping changed")
	}
}
