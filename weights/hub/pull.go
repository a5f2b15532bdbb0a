package hub

import (
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/blip2chat/blip2chat/weights/plan"
)

// Plan is what a pull of one revision does: the commit, the files
// conversion needs, and what the cache already holds of them.
type Plan struct {
	Ref     Ref
	Commit  string
	RepoDir string // CACHE/models--ORG--NAME
	// Dir is the snapshot folder the converter reads once Fetch is done:
	// RepoDir/snapshots/<Commit>.
	Dir     string
	Files   []File // sorted by path
	Offline bool   // made from the cache alone (HF_HUB_OFFLINE)
}

// Total is the size of all of the plan's files.
func (p *Plan) Total() int64 {
	var n int64
	for _, f := range p.Files {
		n += f.Size
	}
	return n
}

// Missing is how many bytes Fetch still has to download.
func (p *Plan) Missing() int64 {
	var n int64
	for _, f := range p.Files {
		if !f.Cached {
			n += f.Size - f.Partial
		}
	}
	return n
}

// Plan resolves ref's revision to a commit, lists the commit's files,
// chooses those conversion needs (Select) and looks for them in the cache.
// It records refs/<revision> and trees/<commit>.json in the cache, as
// huggingface_hub does, and downloads nothing. Offline (Config.Offline) it
// reads the cache only, and fails with ErrNotCached naming the first
// missing file.
func (c *Client) Plan(ctx context.Context, ref Ref) (*Plan, error) {
	if err := checkRepo(ref.Repo); err != nil {
		return nil, err
	}
	if ref.Revision != "" {
		if err := checkRevision(ref.Revision); err != nil {
			return nil, err
		}
	}
	repoDir := RepoDir(c.cfg.CacheDir, ref.Repo)
	if c.cfg.Offline {
		return c.planOffline(ref, repoDir)
	}
	commit, err := c.commit(ctx, ref)
	if err != nil {
		return nil, err
	}
	listing, err := c.listTree(ctx, ref.Repo, commit)
	if err != nil {
		return nil, err
	}
	files, err := Select(listing)
	if err != nil {
		return nil, &Error{Kind: ErrNotCheckpoint, Msg: fmt.Sprintf("%s@%s: %v", ref.Repo, ref.Rev(), err)}
	}
	if err := writeRef(repoDir, ref.Rev(), commit); err != nil {
		return nil, fmt.Errorf("writing to the Hugging Face cache: %v", err)
	}
	if err := writeTrees(repoDir, commit, listing); err != nil {
		return nil, fmt.Errorf("writing to the Hugging Face cache: %v", err)
	}
	p := &Plan{Ref: ref, Commit: commit, RepoDir: repoDir, Dir: filepath.Join(repoDir, "snapshots", commit), Files: files}
	p.inspect()
	return p, nil
}

func (p *Plan) inspect() {
	slices.SortFunc(p.Files, func(a, b File) int { return cmp.Compare(a.Path, b.Path) })
	for i := range p.Files {
		inspect(p.RepoDir, p.Commit, &p.Files[i])
	}
}

// planOffline builds a plan from the cache: the commit from refs/ (or the
// revision itself when it is a commit hash), the file list from
// trees/<commit>.json when a recent huggingface_hub or this package wrote
// one, else from the snapshot folder itself (then the weights the index
// names and config.json must be there).
func (c *Client) planOffline(ref Ref, repoDir string) (*Plan, error) {
	offline := fmt.Sprintf("offline (HF_HUB_OFFLINE is set) and %s", ref)
	commit := ref.Rev()
	if !isCommit(commit) {
		sha, err := readRef(repoDir, ref.Rev())
		if err != nil {
			return nil, errorf(ErrNotCached, "%s: %v", offline, err)
		}
		if sha == "" {
			return nil, errorf(ErrNotCached, "%s is not in the Hugging Face cache %s", offline, c.cfg.CacheDir)
		}
		commit = sha
	}
	p := &Plan{Ref: ref, Commit: commit, RepoDir: repoDir, Dir: filepath.Join(repoDir, "snapshots", commit), Offline: true}
	if st, err := os.Stat(p.Dir); err != nil || !st.IsDir() {
		return nil, errorf(ErrNotCached, "%s (commit %s) is not in the Hugging Face cache %s", offline, commit[:7], c.cfg.CacheDir)
	}
	incomplete := func(missing []string) error {
		more := ""
		if len(missing) > 1 {
			more = fmt.Sprintf(" (and %d more files)", len(missing)-1)
		}
		return errorf(ErrNotCached, "%s (commit %s) is incomplete in the Hugging Face cache: %s is missing%s", offline, commit[:7], missing[0], more)
	}

	if listing, ok := readTrees(repoDir, commit); ok {
		files, err := Select(listing)
		if err != nil {
			return nil, &Error{Kind: ErrNotCheckpoint, Msg: fmt.Sprintf("%s@%s: %v", ref.Repo, ref.Rev(), err)}
		}
		p.Files = files
		p.inspect()
		var missing []string
		for _, f := range p.Files {
			if !f.Cached {
				missing = append(missing, f.Path)
			}
		}
		if len(missing) > 0 {
			return nil, incomplete(missing)
		}
		return p, nil
	}

	// No listing: what the snapshot holds is all there is to go by.
	var listing []File
	err := filepath.WalkDir(p.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := os.Stat(path) // through the symlink
		if err != nil || !st.Mode().IsRegular() {
			return nil // a dangling link is a missing file
		}
		rel, _ := filepath.Rel(p.Dir, path)
		listing = append(listing, File{Path: filepath.ToSlash(rel), Size: st.Size(), Cached: true})
		return nil
	})
	if err != nil {
		return nil, errorf(ErrNotCached, "%s: reading %s: %v", offline, p.Dir, err)
	}
	has := func(name string) bool {
		return slices.ContainsFunc(listing, func(f File) bool { return f.Path == name })
	}
	if !has("config.json") {
		return nil, incomplete([]string{"config.json"})
	}
	files, err := Select(listing)
	if err != nil {
		return nil, incomplete([]string{"the model weights (*.safetensors)"})
	}
	if !has("model.safetensors") && has(indexFile) {
		shards, err := indexShards(filepath.Join(p.Dir, indexFile))
		if err != nil {
			return nil, errorf(ErrNotCached, "%s: %v", offline, err)
		}
		var missing []string
		for _, s := range shards {
			if !has(s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return nil, incomplete(missing)
		}
	}
	p.Files = files
	slices.SortFunc(p.Files, func(a, b File) int { return cmp.Compare(a.Path, b.Path) })
	return p, nil
}

// indexShards returns the shard files a model.safetensors.index.json
// names, sorted.
func indexShards(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Base(path), err)
	}
	var shards []string
	for _, s := range idx.WeightMap {
		if checkPath(s) != nil {
			return nil, fmt.Errorf("%s: unsafe shard name %q", filepath.Base(path), s)
		}
		if !slices.Contains(shards, s) {
			shards = append(shards, s)
		}
	}
	slices.Sort(shards)
	return shards, nil
}

// FetchOptions tune a Fetch.
type FetchOptions struct {
	// OutputDir and OutputBytes are where the conversion that follows will
	// write and how much: the free-space check counts them with the
	// download (together when both are on one filesystem).
	OutputDir   string
	OutputBytes int64
	// Progress, if set, receives progress reports, one call at a time.
	Progress func(Progress)
}

// Fetch downloads what the plan's files still miss into the cache, after
// checking the free space, several files at once. Each file goes to
// blobs/<hash>.incomplete, resumed from what an earlier run left there, is
// checked against its sha256 (LFS) or git blob id, and only then renamed to
// blobs/<hash> and linked into the snapshot; a killed or failed run leaves
// a state from which the next one goes on. On success every file of the
// plan is in p.Dir and marked Cached.
func (c *Client) Fetch(ctx context.Context, p *Plan, opt FetchOptions) error {
	p.inspect() // the cache may have changed since Plan
	need := p.Missing()
	if err := c.checkSpace(p, need, opt.OutputDir, opt.OutputBytes); err != nil {
		return err
	}
	tr := newTracker(opt.Progress, p.Files)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel(err)
		}
	}
	// Small files first: the configs arrive at once, the shards stream
	// side by side.
	queue := make(chan int)
	order := make([]int, len(p.Files))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p.Files[a].Size, p.Files[b].Size) })
	for range c.opt.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				f := &p.Files[i]
				if err := c.fetchFile(ctx, p, f, tr); err != nil {
					fail(err)
				}
			}
		}()
	}
feed:
	for _, i := range order {
		select {
		case queue <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	return nil
}

// Pull is Plan then Fetch.
func (c *Client) Pull(ctx context.Context, ref Ref, opt FetchOptions) (*Plan, error) {
	p, err := c.Plan(ctx, ref)
	if err != nil {
		return nil, err
	}
	return p, c.Fetch(ctx, p, opt)
}

// checkSpace refuses a fetch whose download (into the cache) and the
// conversion after it (into outDir) do not fit on disk.
func (c *Client) checkSpace(p *Plan, download int64, outDir string, outBytes int64) error {
	if download <= 0 && outBytes <= 0 {
		return nil
	}
	type need struct {
		what, dir string
		bytes     int64
	}
	var needs []need
	if download > 0 {
		needs = append(needs, need{"downloading " + p.Ref.Repo, c.cfg.CacheDir, download})
	}
	if outBytes > 0 && outDir != "" {
		needs = append(needs, need{"converting it", outDir, outBytes})
	}
	type disk struct {
		free  int64
		needs []need
	}
	disks := map[string]*disk{}
	var ids []string
	for _, n := range needs {
		dir, err := existingDir(n.dir)
		if err != nil {
			return fmt.Errorf("checking free space: %v", err)
		}
		free, id, err := c.opt.Space.Free(dir)
		if err != nil {
			return fmt.Errorf("checking free space: %v", err)
		}
		if free < 0 {
			continue
		}
		d := disks[id]
		if d == nil {
			d = &disk{free: free}
			disks[id] = d
			ids = append(ids, id)
		}
		d.needs = append(d.needs, n)
	}
	for _, id := range ids {
		d := disks[id]
		var total int64
		var parts []string
		for _, n := range d.needs {
			total += n.bytes
			parts = append(parts, fmt.Sprintf("%s needs %s in %s", n.what, plan.FormatBytes(n.bytes), n.dir))
		}
		if total > d.free {
			where := "there"
			if len(d.needs) > 1 {
				where = "on that disk"
			}
			return errorf(ErrNoSpace, "not enough disk space: %s, but only %s is free %s", strings.Join(parts, " and "), plan.FormatBytes(d.free), where)
		}
	}
	return nil
}

// contentHash computes a file's id as the listing gives it: the sha256 of
// an LFS file, the git blob id (sha1 of "blob <size>\x00" and the content)
// otherwise.
type contentHash struct {
	h      hash.Hash
	prefix []byte
	want   string
}

func newContentHash(f File) *contentHash {
	if f.LFS() {
		return &contentHash{h: sha256.New(), want: f.SHA256}
	}
	c := &contentHash{h: sha1.New(), prefix: []byte("blob " + strconv.FormatInt(f.Size, 10) + "\x00"), want: f.OID}
	c.Reset()
	return c
}

func (c *contentHash) Reset() {
	c.h.Reset()
	c.h.Write(c.prefix)
}

func (c *contentHash) Write(p []byte) (int, error) { return c.h.Write(p) }
func (c *contentHash) sum() string                 { return hex.EncodeToString(c.h.Sum(nil)) }
func (c *contentHash) kind() string {
	if c.prefix == nil {
		return "sha256"
	}
	return "git blob id"
}

// fetchFile brings one file into the cache (see Fetch).
func (c *Client) fetchFile(ctx context.Context, p *Plan, f *File, tr *tracker) error {
	name := p.Ref.Repo + ": " + f.Path
	if f.linked {
		return nil
	}
	if f.Cached {
		if err := c.link(p.RepoDir, p.Commit, *f, false); err != nil {
			return fmt.Errorf("%s: linking into the snapshot: %v", name, err)
		}
		f.linked = true
		return nil
	}
	unlock, err := c.lock(ctx, p.Ref.Repo, f.Blob(), name)
	if err != nil {
		return err
	}
	defer unlock()
	// Another process may have finished it while we waited for the lock.
	if inspect(p.RepoDir, p.Commit, f); f.Cached {
		if f.linked {
			tr.finish(*f)
			return nil
		}
		if err := c.link(p.RepoDir, p.Commit, *f, false); err != nil {
			return fmt.Errorf("%s: linking into the snapshot: %v", name, err)
		}
		f.linked = true
		tr.finish(*f)
		return nil
	}

	blob := blobPath(p.RepoDir, f.Blob())
	inc := blob + ".incomplete"
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return err
	}
	fh, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if fh != nil {
			fh.Close()
		}
	}()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	d := &download{c: c, url: c.resolveURL(p.Ref.Repo, p.Commit, f.Path), name: name, repo: p.Ref.Repo, f: *f,
		fh: fh, h: newContentHash(*f), tr: tr, n: st.Size()}
	if d.n > f.Size {
		if err := d.restart(); err != nil {
			return err
		}
	}
	if d.n > 0 {
		// The hash covers the whole file: read back what an earlier run
		// wrote.
		if d.n >= 256<<20 {
			c.logf("%s: resuming; checking the %s downloaded earlier", name, plan.FormatBytes(d.n))
		}
		if _, err := io.Copy(d.h, io.NewSectionReader(fh, 0, d.n)); err != nil {
			return fmt.Errorf("%s: reading %s: %v", name, inc, err)
		}
	}
	tr.start(*f, d.n)
	resumed := d.n > 0
	for {
		if d.n < f.Size {
			if err := c.retry(ctx, name, d.get(ctx)); err != nil {
				return err
			}
		}
		if got := d.h.sum(); got != d.h.want {
			if err := d.restart(); err != nil {
				return err
			}
			if resumed {
				// What an earlier run left may not be the start of this file.
				c.logf("%s: %s mismatch after resuming; downloading it again from the start", name, d.h.kind())
				resumed = false
				continue
			}
			fh.Close()
			fh = nil
			os.Remove(inc)
			return errorf(ErrChecksum, "%s: the downloaded data do not match the listed %s (want %s, got %s); the partial file was removed, run the pull again",
				name, d.h.kind(), d.h.want, got)
		}
		break
	}
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	fh = nil
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if err := c.link(p.RepoDir, p.Commit, *f, true); err != nil {
		return fmt.Errorf("%s: linking into the snapshot: %v", name, err)
	}
	f.Cached, f.Partial, f.linked = true, 0, true
	tr.finish(*f)
	return nil
}

// download is one file's transfer into its .incomplete file: n bytes are
// there and hashed.
type download struct {
	c               *Client
	url, name, repo string
	f               File
	fh              *os.File
	h               *contentHash
	tr              *tracker
	n               int64
}

// restart empties the partial file.
func (d *download) restart() error {
	if err := d.fh.Truncate(0); err != nil {
		return fmt.Errorf("%s: %v", d.name, err)
	}
	d.n = 0
	d.h.Reset()
	d.tr.set(d.f, 0, 0)
	return nil
}

// get returns one try of the transfer for retry: a GET of the rest of the
// file (Range from n), appended and hashed.
func (d *download) get(ctx context.Context) func() (bool, error) {
	return func() (bool, error) {
		hdr := http.Header{"Accept-Encoding": {"identity"}}
		if d.n > 0 {
			hdr.Set("Range", fmt.Sprintf("bytes=%d-", d.n))
		}
		resp, err := d.c.do(ctx, http.MethodGet, d.url, hdr, d.repo, d.name)
		var he *Error
		if errors.As(err, &he) && he.Status == http.StatusRequestedRangeNotSatisfiable {
			// The range is past the server's file: start over.
			d.c.logf("%s: the server refused to resume at %d bytes; downloading it again from the start", d.name, d.n)
			if err := d.restart(); err != nil {
				return false, err
			}
			return false, &retryable{err: he}
		}
		if err != nil {
			return false, err
		}
		defer resp.Close()

		var body io.Reader = resp.Body
		switch resp.StatusCode {
		case http.StatusPartialContent:
			start, total, ok := contentRange(resp.Header.Get("Content-Range"))
			if !ok || (total >= 0 && total != d.f.Size) {
				return false, errorf(ErrServer, "%s: the server sent a range of a %d-byte file, the listing says %d bytes", d.name, total, d.f.Size)
			}
			if start != d.n {
				d.c.logf("%s: the server answered from byte %d, not %d; downloading it again from the start", d.name, start, d.n)
				if err := d.restart(); err != nil {
					return false, err
				}
				return false, &retryable{err: errorf(ErrServer, "%s: wrong range", d.name)}
			}
		case http.StatusOK:
			if d.n > 0 {
				// The server ignored Range (huggingface_hub does the same).
				d.c.logf("%s: the server ignored the request to resume at %d bytes; downloading it again from the start", d.name, d.n)
				if err := d.restart(); err != nil {
					return false, err
				}
			}
		default:
			return false, errorf(ErrServer, "%s: unexpected HTTP %d", d.name, resp.StatusCode)
		}
		if enc := resp.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			if !strings.EqualFold(enc, "gzip") || resp.StatusCode != http.StatusOK {
				return false, errorf(ErrServer, "%s: unsupported content encoding %q", d.name, enc)
			}
			gz, err := gzip.NewReader(resp.Body)
			if err != nil {
				return false, &retryable{err: errorf(ErrNetwork, "%s: %v", d.name, err)}
			}
			body = gz
		}

		buf := make([]byte, 256<<10)
		var got int64
		for {
			m, rerr := body.Read(buf)
			if m > 0 {
				if int64(m) > d.f.Size-d.n {
					err := errorf(ErrServer, "%s: the server sent more than the listed %d bytes", d.name, d.f.Size)
					if rerr := d.restart(); rerr != nil {
						return false, rerr
					}
					return false, err
				}
				if _, err := d.fh.WriteAt(buf[:m], d.n); err != nil {
					return false, fmt.Errorf("%s: writing %s: %v", d.name, d.fh.Name(), err)
				}
				d.h.Write(buf[:m])
				d.n += int64(m)
				got += int64(m)
				d.tr.set(d.f, d.n, int64(m))
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				if ctx.Err() != nil {
					return got > 0, context.Cause(ctx)
				}
				why := netError(rerr)
				if resp.stalled() {
					why = fmt.Sprintf("no data for %s", d.c.cfg.Timeout)
				}
				return got > 0, &retryable{err: errorf(ErrNetwork, "%s: connection lost at %s of %s (%s)", d.name,
					plan.FormatBytes(d.n), plan.FormatBytes(d.f.Size), why)}
			}
		}
		if d.n < d.f.Size {
			return got > 0, &retryable{err: errorf(ErrNetwork, "%s: the server ended the transfer at %s of %s", d.name,
				plan.FormatBytes(d.n), plan.FormatBytes(d.f.Size))}
		}
		return true, nil
	}
}

// contentRange parses "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func contentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if t := strings.TrimSpace(tot); t != "*" {
		if total, err = strconv.ParseInt(t, 10, 64); err != nil || total < 0 {
			return 0, 0, false
		}
	}
	return start, total, true
}
