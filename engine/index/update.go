package index

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Encoder embeds images for an index: a retrieval model (cmd's adapter of
// engine/retrieval), or a stand-in in tests.
type Encoder interface {
	// Model identifies the model; Digest must be set.
	Model() Model
	// Decode reads the image file at path (an error: the file is skipped
	// as unreadable).
	Decode(ctx context.Context, path string) (image.Image, error)
	// Embed returns the image's Q x E contrastive embeddings. It stops
	// when ctx is done, returning ctx's error.
	Embed(ctx context.Context, img image.Image) ([]float32, error)
}

// UpdateOptions configure Update.
type UpdateOptions struct {
	// Rebuild drops the index's images first, and lets another model take
	// the index over.
	Rebuild bool
	// BatchSize is the number of images committed together (0: 16); a
	// batch is committed sooner when BatchTime has passed (0: 5 s), so
	// that an interruption loses little.
	BatchSize int
	BatchTime time.Duration
	// Progress receives the progress bar (nil: none); Terminal redraws one
	// line in place, else a line is printed every few seconds.
	Progress io.Writer
	Terminal bool
	// Warnings receives one line per unreadable image (nil: discarded).
	Warnings io.Writer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Stats say what an update did.
type Stats struct {
	Files      int // image files in the folder
	Unchanged  int // already indexed, same size and time: not read
	Embedded   int // new or changed images embedded now
	Removed    int // indexed images gone from the folder, dropped
	Unreadable int // images that could not be read now (a warning each)
	// StillUnreadable are images that could not be read before and have
	// not changed since: skipped without reading them again.
	StillUnreadable int
	Interrupted     bool // the context ended: what was done is kept
	Elapsed         time.Duration
}

// imageExts are the file types indexed (what engine/imageprep decodes).
var imageExts = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".webp": true}

// IsImageName reports whether a file name has an image extension the
// index reads.
func IsImageName(name string) bool { return imageExts[strings.ToLower(filepath.Ext(name))] }

// fileKey is what says a file changed.
type fileKey struct {
	size, mtime int64
}

// scan lists the image files under folder, by path relative to it (with
// slashes), skipping hidden files and folders (a thumbnail cache, .git).
func scan(ctx context.Context, folder string) (map[string]fileKey, error) {
	files := map[string]fileKey{}
	err := filepath.WalkDir(folder, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == folder {
				return err
			}
			return nil // an unreadable subfolder: skip it
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := d.Name()
		if p != folder && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !IsImageName(name) {
			return nil
		}
		st, err := os.Stat(p) // follows a symlink to its file
		if err != nil || !st.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(folder, p)
		if err != nil {
			return nil
		}
		files[filepath.ToSlash(rel)] = fileKey{st.Size(), st.ModTime().UnixNano()}
		return nil
	})
	return files, err
}

// known reads the (path, size, mtime) rows of a table.
func (ix *Index) known(table string) (map[string]fileKey, error) {
	rows, err := ix.db.Query(`SELECT path, size, mtime FROM ` + table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]fileKey{}
	for rows.Next() {
		var p string
		var k fileKey
		if err := rows.Scan(&p, &k.size, &k.mtime); err != nil {
			return nil, err
		}
		out[p] = k
	}
	return out, rows.Err()
}

// Update brings the index up to date with its folder using enc (see the
// package comment). When ctx ends it commits what is done and returns
// with Stats.Interrupted set and a nil error.
func (ix *Index) Update(ctx context.Context, enc Encoder, o UpdateOptions) (Stats, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 16
	}
	if o.BatchTime <= 0 {
		o.BatchTime = 5 * time.Second
	}
	start := o.Now()
	var st Stats
	folder := ix.Meta.Folder
	if fi, err := os.Stat(folder); err != nil || !fi.IsDir() {
		return st, fmt.Errorf("%s: no such folder", folder)
	}
	m := enc.Model()
	if m.Digest == "" || m.Queries <= 0 || m.EmbedSize <= 0 {
		return st, errors.New("index: the encoder does not identify its model")
	}
	if old := ix.Meta.Model; old.Digest != "" && old.Digest != m.Digest && !o.Rebuild {
		return st, fmt.Errorf("%s is indexed with another model (%s, %s); index it with that model, or with --rebuild to replace the index", folder, old.Dir, old.Arch)
	}

	files, err := scan(ctx, folder)
	if err != nil {
		if ctx.Err() != nil {
			st.Interrupted = true
			return st, nil
		}
		return st, err
	}
	st.Files = len(files)
	indexed, err := ix.known("images")
	if err != nil {
		return st, err
	}
	unreadable, err := ix.known("unreadable")
	if err != nil {
		return st, err
	}
	if o.Rebuild {
		indexed, unreadable = map[string]fileKey{}, map[string]fileKey{}
	}

	// What to drop, what to read.
	var gone, todo []string
	for p := range indexed {
		if _, ok := files[p]; !ok {
			gone = append(gone, p)
		}
	}
	for p, k := range files {
		switch {
		case indexed[p] == k:
			st.Unchanged++
		case unreadable[p] == k:
			st.StillUnreadable++
		default:
			todo = append(todo, p)
		}
	}
	sortPaths(gone)
	sortPaths(todo)

	// One transaction: the model, the rebuild, the files gone.
	tx, err := ix.db.Begin()
	if err != nil {
		return st, err
	}
	first := func() error {
		if o.Rebuild {
			for _, q := range []string{`DELETE FROM images`, `DELETE FROM unreadable`} {
				if _, err := tx.Exec(q); err != nil {
					return err
				}
			}
		}
		meta := ix.Meta
		meta.Model = m
		if err := writeMeta(tx, meta); err != nil {
			return err
		}
		for p := range unreadable {
			if _, ok := files[p]; !ok {
				if _, err := tx.Exec(`DELETE FROM unreadable WHERE path = ?`, p); err != nil {
					return err
				}
			}
		}
		for _, p := range gone {
			if _, err := tx.Exec(`DELETE FROM images WHERE path = ?`, p); err != nil {
				return err
			}
		}
		return tx.Commit()
	}
	if err := first(); err != nil {
		tx.Rollback()
		return st, fmt.Errorf("index %s: %w", ix.Path, err)
	}
	ix.Meta.Model = m
	st.Removed = len(gone)

	st.Interrupted, err = ix.embed(ctx, enc, todo, files, &st, o)
	if err != nil {
		return st, err
	}
	if !st.Interrupted {
		ix.Meta.Updated = o.Now()
		if _, err := ix.db.Exec(`INSERT OR REPLACE INTO meta(key, value) VALUES('updated', ?)`, fmt.Sprint(ix.Meta.Updated.UnixNano())); err != nil {
			return st, err
		}
	}
	st.Elapsed = o.Now().Sub(start)
	return st, nil
}

// decoded is an image read ahead of the model.
type decoded struct {
	path string
	img  image.Image
	err  error
}

// embed embeds the images todo, committing a batch at a time, the next
// image decoded while the model runs on this one.
func (ix *Index) embed(ctx context.Context, enc Encoder, todo []string, files map[string]fileKey, st *Stats, o UpdateOptions) (interrupted bool, err error) {
	if len(todo) == 0 {
		return false, nil
	}
	folder := ix.Meta.Folder
	bar := newMeter(o.Progress, o.Terminal, len(todo), o.Now)
	defer bar.finish()

	dctx, stop := context.WithCancel(ctx)
	defer stop()
	ahead := make(chan decoded, 1)
	go func() {
		defer close(ahead)
		for _, p := range todo {
			img, err := enc.Decode(dctx, filepath.Join(folder, filepath.FromSlash(p)))
			select {
			case ahead <- decoded{p, img, err}:
			case <-dctx.Done():
				return
			}
		}
	}()

	type row struct {
		path     string
		key      fileKey
		embeds   []byte
		errText  string
		readable bool
	}
	var batch []row
	lastCommit := o.Now()
	commit := func() error {
		if len(batch) == 0 {
			return nil
		}
		tx, err := ix.db.Begin()
		if err != nil {
			return err
		}
		for _, r := range batch {
			if r.readable {
				_, err = tx.Exec(`INSERT OR REPLACE INTO images(path, size, mtime, embeds) VALUES(?, ?, ?, ?)`, r.path, r.key.size, r.key.mtime, r.embeds)
				if err == nil {
					_, err = tx.Exec(`DELETE FROM unreadable WHERE path = ?`, r.path)
				}
			} else {
				_, err = tx.Exec(`INSERT OR REPLACE INTO unreadable(path, size, mtime, error) VALUES(?, ?, ?, ?)`, r.path, r.key.size, r.key.mtime, r.errText)
				if err == nil {
					_, err = tx.Exec(`DELETE FROM images WHERE path = ?`, r.path)
				}
			}
			if err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		batch, lastCommit = batch[:0], o.Now()
		return nil
	}
	m := enc.Model()
	for d := range ahead {
		if ctx.Err() != nil {
			break
		}
		r := row{path: d.path, key: files[d.path]}
		err := d.err
		var v []float32
		if err == nil {
			v, err = enc.Embed(ctx, d.img)
			if ctx.Err() != nil {
				break // the image in progress is not kept
			}
			if err == nil && len(v) != m.Queries*m.EmbedSize {
				err = fmt.Errorf("the model gave %d values, want %d", len(v), m.Queries*m.EmbedSize)
			}
		}
		if err != nil {
			r.errText = oneLine(err.Error())
			st.Unreadable++
			if o.Warnings != nil {
				bar.clear()
				fmt.Fprintf(o.Warnings, "warning: skipped %s: %s\n", d.path, r.errText)
			}
		} else {
			r.readable, r.embeds = true, encodeEmbeds(v)
			st.Embedded++
		}
		batch = append(batch, r)
		bar.step()
		if len(batch) >= o.BatchSize || o.Now().Sub(lastCommit) >= o.BatchTime {
			if err := commit(); err != nil {
				return false, fmt.Errorf("index %s: %w", ix.Path, err)
			}
		}
	}
	if err := commit(); err != nil {
		return false, fmt.Errorf("index %s: %w", ix.Path, err)
	}
	return ctx.Err() != nil, nil
}

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// sortPaths sorts paths so that images are embedded folder by folder, in
// name order (the order a user sees them, and a stable one for tests).
func sortPaths(p []string) { slices.Sort(p) }
