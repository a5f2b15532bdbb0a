package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"text/tabwriter"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/retrieval"
)

func init() {
	register(&command{
		name:    "search",
		summary: "find images in an indexed folder by a sentence (see index)",
		usage:   "DIR \"a dog on a beach\" [-k 10] [--rerank] [-m MODEL_DIR] [--json]",
		run:     runSearch,
	})
}

// searchResult is one hit of search --json.
type searchResult struct {
	Path string   `json:"path"`
	ITC  float64  `json:"itc"`
	ITM  *float64 `json:"itm,omitempty"` // --rerank only
}

func runSearch(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["search"], stderr)
	k := fs.Int("k", 10, "how many images to list")
	rerank := fs.Bool("rerank", false, "re-rank the k best with the matching head (reads those images again)")
	modelDir := fs.String("m", "", "model `folder` or installed name (default: the one that indexed DIR; a generation model uses the index's)")
	asJSON := fs.Bool("json", false, "print one JSON line, best first")
	threads := fs.Int("threads", 0, "compute threads (0: all usable cores)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if len(pos) != 2 || pos[1] == "" {
		return errUsage
	}
	if *k < 1 {
		return badUsage("-k must be at least 1, is %d", *k)
	}
	if *threads < 0 {
		return badUsage("--threads must not be negative, is %d", *threads)
	}
	folder, query := pos[0], pos[1]
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	ix, err := index.OpenExisting(data, folder)
	if err != nil {
		return err
	}
	defer ix.Close()

	// The model that ranks: the index's own, or one of the same
	// checkpoint; a generation model has no text encoder, so the index's
	// ranks for it.
	dir := ix.Meta.Model.Dir
	if *modelDir != "" {
		if isRetrievalDir(*modelDir) {
			dir = *modelDir
		} else {
			fmt.Fprintf(stderr, "note: %s has no text encoder for search; %s was indexed with %s, which ranks the query\n", *modelDir, ix.Meta.Folder, ix.Meta.Model.Dir)
		}
	}
	m, err := openRetrieval(dir, *threads)
	if err != nil {
		if dir == ix.Meta.Model.Dir {
			return fmt.Errorf("the model that indexed %s: %v (index it again with -m MODEL_DIR --rebuild)", ix.Meta.Folder, err)
		}
		return err
	}
	defer m.Close()
	if err := m.Belongs(ix.Meta); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	emb, bad, err := ix.Load(ctx)
	if err != nil {
		return interrupted(err, stderr, "search")
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "warning: %d damaged index entries skipped (index the folder again to repair them)\n", bad)
	}
	if len(emb.Paths) == 0 {
		return fmt.Errorf("the index of %s holds no image yet: run 'blip2chat index %s'", ix.Meta.Folder, folder)
	}
	hits, err := m.Search(ctx, emb, query, *k)
	if err != nil {
		return interrupted(err, stderr, "search")
	}
	res := make([]searchResult, 0, len(hits))
	for _, h := range hits {
		res = append(res, searchResult{Path: h.Path, ITC: float64(h.ITC)})
	}
	if *rerank {
		if res, err = rerankHits(ctx, m, res, query, stderr); err != nil {
			return interrupted(err, stderr, "search")
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"results": res})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if *rerank {
		fmt.Fprintln(tw, "#\tP(MATCH)\tITC\tPATH")
	} else {
		fmt.Fprintln(tw, "#\tITC\tPATH")
	}
	for i, r := range res {
		if r.ITM != nil {
			fmt.Fprintf(tw, "%d\t%5.1f%%\t%.4f\t%s\n", i+1, 100**r.ITM, r.ITC, clip(r.Path, 300))
		} else {
			fmt.Fprintf(tw, "%d\t%.4f\t%s\n", i+1, r.ITC, clip(r.Path, 300))
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "(%d images indexed in %s)\n", len(emb.Paths), ix.Meta.Folder)
	return nil
}

// rerankHits computes P(match) of each hit from its image file and sorts
// them by it; an image gone or unreadable since indexing is dropped with a
// warning.
func rerankHits(ctx context.Context, m *retrieval.Model, res []searchResult, query string, stderr io.Writer) ([]searchResult, error) {
	out := res[:0]
	for _, r := range res {
		img, err := m.EncodeFile(ctx, r.Path)
		if err == nil {
			var p float64
			if _, p, err = m.ITM(ctx, img, query); err == nil {
				r.ITM = &p
				out = append(out, r)
				continue
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(stderr, "warning: skipped %s: %v (index the folder again)\n", filepath.Base(r.Path), err)
	}
	sort.SliceStable(out, func(i, j int) bool { return *out[i].ITM > *out[j].ITM })
	return out, nil
}
