package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/model"
	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/engine/vision"
)

func init() {
	register(&command{
		name:    "index",
		summary: "make a folder of images searchable by text (run again to update it; Ctrl+C keeps what is done)",
		usage:   "[-m MODEL_DIR] DIR [--rebuild] [--threads N]",
		run:     runIndex,
	})
}

func runIndex(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["index"], stderr)
	modelDir := fs.String("m", "", "retrieval model `folder` or installed name (default: the one that indexed DIR before)")
	rebuild := fs.Bool("rebuild", false, "embed every image again (and let another model take the index over)")
	threads := fs.Int("threads", 0, "compute threads (0: all usable cores)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if *modelDir, err = resolveModelArg(*modelDir); err != nil {
		return err
	}
	if len(pos) != 1 {
		return errUsage
	}
	if *threads < 0 {
		return badUsage("--threads must not be negative, is %d", *threads)
	}
	folder := pos[0]
	if st, err := os.Stat(folder); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: no such folder", folder)
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	ix, err := index.Create(data, folder)
	if err != nil {
		return err
	}
	defer ix.Close()
	dir := *modelDir
	if dir == "" {
		if dir = ix.Meta.Model.Dir; dir == "" {
			return badUsage("%s has no index yet: give the retrieval model with -m", folder)
		}
	}
	m, err := openRetrieval(dir, *threads)
	if err != nil {
		return err
	}
	defer m.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := ix.Update(ctx, m.Encoder(), index.UpdateOptions{
		Rebuild: *rebuild, Progress: stderr, Terminal: isTerminal(stderr), Warnings: stderr,
	})
	if err != nil {
		return err
	}
	rate := ""
	if st.Embedded > 0 && st.Elapsed > 0 {
		rate = fmt.Sprintf(", %.2f images/s", float64(st.Embedded)/st.Elapsed.Seconds())
	}
	fmt.Fprintf(stdout, "%s: %d images: %d embedded, %d unchanged, %d removed, %d unreadable (skipped) in %s%s\n",
		ix.Meta.Folder, st.Files, st.Embedded, st.Unchanged, st.Removed, st.Unreadable+st.StillUnreadable,
		st.Elapsed.Round(time.Millisecond), rate)
	if st.Interrupted {
		fmt.Fprintf(stderr, "blip2chat index: interrupted; the %d images embedded are kept, run index again to finish\n", st.Embedded)
		return exitError{130}
	}
	return nil
}

// openRetrieval opens a retrieval model, saying what to do with another
// kind.
func openRetrieval(dir string, threads int) (*retrieval.Model, error) {
	m, err := retrieval.Open(dir, vision.Options{Threads: threads})
	if errors.Is(err, retrieval.ErrNotRetrieval) {
		return nil, fmt.Errorf("%s is not a retrieval model: index and search need one converted from Salesforce/blip2-itm-vit-g (BLIP-2 generation checkpoints have no text encoder for search)", dir)
	}
	return m, err
}

// isRetrievalDir reports whether dir is a retrieval model folder (false
// when it cannot tell: opening it will say why).
func isRetrievalDir(dir string) bool {
	r, err := model.IsRetrieval(dir)
	return err == nil && r
}
