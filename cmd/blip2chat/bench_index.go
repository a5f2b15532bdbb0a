package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/bench"
	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/engine/vision"
	"github.com/blip2chat/blip2chat/weights/convert"
	"github.com/blip2chat/blip2chat/weights/synth"
)

type benchIndexArgs struct {
	synthetic, modelDir, cacheDir, visionType string
	seed                                      uint64
	embeddings                                int
	asJSON                                    bool
}

// runBenchIndex is bench --index: index throughput and query latency of a
// retrieval model (rep holds the threads and runs).
func runBenchIndex(ctx context.Context, rep *bench.Report, a benchIndexArgs, stdout, stderr io.Writer) error {
	if a.embeddings < 1 {
		return badUsage("--embeddings must be at least 1, is %d", a.embeddings)
	}
	visionPath := filepath.Join(a.modelDir, convert.VisionFile)
	rep.Model = a.modelDir
	if a.synthetic != "" {
		if synth.HasLLM(a.synthetic) {
			return badUsage("--index needs a retrieval model: --synthetic %s", synth.ITM)
		}
		files, err := synth.Ensure(ctx, a.synthetic, synth.Options{CacheDir: a.cacheDir, Seed: a.seed, VisionType: a.visionType,
			Progress: stderr, Terminal: isTerminal(stderr)})
		if err != nil {
			return err
		}
		visionPath, rep.Model = files.Vision, "synthetic "+a.synthetic
	}
	bench.ResetPeakRSS()
	vm, err := vision.Load(visionPath, vision.Options{Threads: rep.Threads})
	if err != nil {
		return err
	}
	m, err := retrieval.New(rep.Model, vm, rep.Threads)
	if err != nil {
		vm.Close()
		return fmt.Errorf("%w (bench --index needs a retrieval model)", err)
	}
	defer m.Close()
	rep.VisionType = vm.Info().WeightType
	tmp, err := os.MkdirTemp("", "blip2chat-bench-index-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rep.Stages, err = bench.Index(ctx, m, bench.IndexOptions{Runs: rep.Runs, Embeddings: a.embeddings, Dir: tmp, Seed: a.seed})
	if err != nil {
		return err
	}
	if rss, err := bench.PeakRSS(); err == nil {
		rep.PeakRSS = rss
	}
	rep.LoadAvg, _ = bench.LoadAverage()
	if a.asJSON {
		return rep.WriteJSON(stdout)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	img, q := rep.Stage(bench.StageIndexImage), rep.Stage(bench.StageQuery)
	fmt.Fprintf(stdout, "\nindex: %.2f images/s (median); search: %s per query over %d images (median, index in memory)\n",
		1/img.Median().Seconds(), q.Median(), a.embeddings)
	return nil
}
