//go:build linux

package lmconv_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/synth"
)

// Environment of TestRealSizeConvertRSS, which is skipped without it (CI
// never sets it: it writes tens of GB).
const (
	envRealSize   = "BLIP2CHAT_REALSIZE"        // synth real-shape name: opt-2.7b, flan-t5-xl, vicuna-7b
	envRealDir    = "BLIP2CHAT_REALSIZE_DIR"    // scratch folder (checkpoint and model; removed after)
	envRealLayers = "BLIP2CHAT_REALSIZE_LAYERS" // language-model layers to keep; default all
	envRealKeep   = "BLIP2CHAT_REALSIZE_KEEP"   // "1": keep the checkpoint for another run
)

// memStatus is the process's resident memory from /proc/self/status.
type memStatus struct{ rss, anon, file int64 }

func readStatus() (memStatus, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return memStatus{}, err
	}
	defer f.Close()
	var m memStatus
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n << 10
		case "RssAnon":
			m.anon = n << 10
		case "RssFile":
			m.file = n << 10
		}
	}
	return m, s.Err()
}

// TestRealSizeConvertRSS converts a checkpoint of real shapes (written by
// synth.WriteCheckpoint: float32 random weights in 3 shards, as the
// Salesforce repositories store them) with the family's default types,
// through llama.cpp's quantizer for LLaMA and T5, sampling the process's
// resident memory (VmRSS = anonymous + file-mapped) every 20 ms, and
// requires it to stay under 2 GB in every phase.
//
//	BLIP2CHAT_REALSIZE=opt-2.7b BLIP2CHAT_REALSIZE_DIR=/scratch \
//	  go test ./weights/lmconv -run TestRealSizeConvertRSS -v -timeout 2h
func TestRealSizeConvertRSS(t *testing.T) {
	name, dir := os.Getenv(envRealSize), os.Getenv(envRealDir)
	if name == "" || dir == "" {
		t.Skipf("set %s (%s) and %s to convert a real-size checkpoint", envRealSize, strings.Join(synth.Names(), ", "), envRealDir)
	}
	layers, _ := strconv.Atoi(os.Getenv(envRealLayers))
	ckpt := filepath.Join(dir, fmt.Sprintf("%s-L%d-checkpoint", name, layers))
	out := filepath.Join(dir, name+"-model")
	defer os.RemoveAll(out)
	if os.Getenv(envRealKeep) != "1" {
		defer os.RemoveAll(ckpt)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "model.safetensors.index.json")); err != nil {
		start := time.Now()
		if err := synth.WriteCheckpoint(ckpt, name, 3, layers, 1); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s in %s", ckpt, time.Since(start).Round(time.Second))
	}
	debug.FreeOSMemory()

	var phase atomic.Value
	phase.Store("start")
	type peak struct{ rss, anon, file memStatus }
	peaks := map[string]*peak{}
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			m, err := readStatus()
			if err == nil {
				p := phase.Load().(string)
				if p != "quantize" {
					// Which file is being written.
					if ents, _ := os.ReadDir(out); len(ents) > 0 {
						for _, e := range ents {
							if strings.HasPrefix(e.Name(), ".llm.gguf.partial") {
								p = "llm"
							} else if strings.HasPrefix(e.Name(), ".vision.gguf.partial") && p != "llm" {
								p = "vision"
							}
						}
					}
				}
				mu.Lock()
				pk := peaks[p]
				if pk == nil {
					pk = &peak{}
					peaks[p] = pk
				}
				if m.rss > pk.rss.rss {
					pk.rss = m
				}
				if m.anon > pk.anon.anon {
					pk.anon = m
				}
				if m.file > pk.file.file {
					pk.file = m
				}
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	opt := convert.Options{}
	cfg, err := synth.Config(name)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Text.ModelType != "opt" {
		l := library(t)
		opt.Quantizer = func(in, outPath string, ftype int32) error {
			phase.Store("quantize")
			p := l.DefaultQuantizeParams()
			p.FType = ftype
			p.NThread = 2
			return l.Quantize(in, outPath, p)
		}
	}
	start := time.Now()
	res, err := convert.Convert(context.Background(), ckpt, out, opt)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("converted %s (%d tensors, %.1f GB written) in %s", name, res.Tensors, float64(res.Bytes)/1e9, time.Since(start).Round(time.Second))
	var ckBytes int64
	ents, _ := os.ReadDir(ckpt)
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			ckBytes += info.Size()
		}
	}
	t.Logf("checkpoint %.1f GB; peak resident memory by phase (MiB, at each peak: VmRSS = RssAnon + RssFile):", float64(ckBytes)/1e9)
	const limit = 2 << 30
	for _, p := range []string{"start", "vision", "llm", "quantize"} {
		pk := peaks[p]
		if pk == nil {
			continue
		}
		mib := func(m memStatus) string { return fmt.Sprintf("%d = %d + %d", m.rss>>20, m.anon>>20, m.file>>20) }
		t.Logf("  %-8s VmRSS %s   max RssAnon %s   max RssFile %s", p, mib(pk.rss), mib(pk.anon), mib(pk.file))
		if pk.rss.rss > limit {
			t.Errorf("%s: resident memory peaked at %d MiB, over 2 GB", p, pk.rss.rss>>20)
		}
	}
}
