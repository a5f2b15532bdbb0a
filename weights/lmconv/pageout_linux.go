package lmconv

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pageOutEvery is how often pageOut gives back the quantizer's pages.
const pageOutEvery = 200 * time.Millisecond

// pageOut keeps the pages of the file at path that this process maps out
// of its resident memory until stop is called: llama.cpp's quantizer maps
// its f16 input and keeps every page it has read, 13 GB for a 7B model.
// Every pageOutEvery, each mapping of the file that /proc/self/maps lists
// (same path and inode) gets MADV_PAGEOUT, which reclaims its clean pages
// (they are read again if touched). Unlike MADV_DONTNEED it never loses
// data, even should the range have been unmapped and reused by other
// memory in the meantime. Best effort: errors are ignored.
func pageOut(path string) (stop func()) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return func() {}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return func() {}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return func() {}
	}
	ino := strconv.FormatUint(sys.Ino, 10)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(pageOutEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				pageOutMappings(abs, ino)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// pageOutMappings advises MADV_PAGEOUT on every mapping of the file abs
// (inode ino) in /proc/self/maps.
func pageOutMappings(abs, ino string) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[4] != ino || strings.Join(fields[5:], " ") != abs {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}
