package hub_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/weights/hub"
	"github.com/blip2chat/blip2chat/weights/hub/hubtest"
)

const (
	repoID = "Salesforce/blip2-opt-2.7b"
	token  = "hf_SeCrEtT0kEn1234567890"
)

// repoFiles mirrors a real repository's layout (blip2-opt-2.7b, new
// layout) with small contents: two shards and an index, configs,
// tokenizer files, plus what a pull must skip (pickles, README).
func repoFiles(shard1, shard2 int64) []hubtest.File {
	return []hubtest.File{
		{Path: ".gitattributes", Data: []byte("*.safetensors filter=lfs\n")},
		{Path: "README.md", Data: []byte("# BLIP-2\n")},
		{Path: "added_tokens.json", Data: []byte(`{"<image>": 50265}`)},
		{Path: "config.json", Data: []byte(`{"model_type": "blip-2", "image_token_index": 50265}`)},
		{Path: "generation_config.json", Data: []byte(`{"eos_token_id": 50118}`)},
		{Path: "merges.txt", Data: []byte("#version: 0.2\nĠ t\n")},
		{Path: "model-00001-of-00002.safetensors", Size: shard1, Seed: 1},
		{Path: "model-00002-of-00002.safetensors", Size: shard2, Seed: 2},
		{Path: "model.safetensors.index.json", Data: []byte(`{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}`)},
		{Path: "preprocessor_config.json", Data: []byte(`{"size": {"height": 224, "width": 224}}`)},
		{Path: "processor_config.json", Data: []byte(`{"num_query_tokens": 32}`)},
		{Path: "pytorch_model-00001-of-00002.bin", Size: 100_000, Seed: 9},
		{Path: "pytorch_model.bin.index.json", Data: []byte(`{}`)},
		{Path: "qformer_tokenizer/vocab.txt", Data: []byte("[PAD]\n[CLS]\n")},
		{Path: "special_tokens_map.json", Data: []byte(`{}`)},
		{Path: "tokenizer.json", Data: []byte(`{"model": {}}`)},
		{Path: "tokenizer_config.json", Data: []byte(`{"add_bos_token": true}`)},
		{Path: "vocab.json", Data: []byte(`{"</s>": 2}`)},
	}
}

// wantFiles are the files of repoFiles a pull fetches.
var wantFiles = []string{
	"added_tokens.json", "config.json", "generation_config.json", "merges.txt",
	"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
	"preprocessor_config.json", "processor_config.json", "qformer_tokenizer/vocab.txt",
	"special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
}

type env struct {
	t      *testing.T
	hub    *hubtest.Hub
	commit string
	cache  string
	logMu  sync.Mutex
	logs   []string
}

func newEnv(t *testing.T, shard1, shard2 int64) *env {
	t.Helper()
	e := &env{t: t, hub: hubtest.New(t), cache: filepath.Join(t.TempDir(), "hub")}
	e.commit = e.hub.Commit(repoID, repoFiles(shard1, shard2), "main")
	return e
}

// client makes a client of the fake Hub with fast retries; mod may
// change its settings.
func (e *env) client(mod func(*hub.Config, *hub.Options)) *hub.Client {
	e.t.Helper()
	cfg := hub.Config{Endpoint: e.hub.URL, CacheDir: e.cache, Timeout: 5 * time.Second}
	opt := hub.Options{RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond, Log: func(s string) {
		e.logMu.Lock()
		e.logs = append(e.logs, s)
		e.logMu.Unlock()
	}}
	if mod != nil {
		mod(&cfg, &opt)
	}
	c, err := hub.New(cfg, opt)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) log() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return strings.Join(e.logs, "\n")
}

func (e *env) pull(c *hub.Client, opt hub.FetchOptions) (*hub.Plan, error) {
	return c.Pull(context.Background(), hub.Ref{Repo: repoID}, opt)
}

func (e *env) repoDir() string { return hub.RepoDir(e.cache, repoID) }

// checkSnapshot checks that the cache holds every wanted file as
// huggingface-cli lays it out, with the right content.
func (e *env) checkSnapshot(copies bool) { e.checkSnapshotOf(copies, true) }

// checkSnapshotOf is checkSnapshot; exact says the snapshot holds nothing
// else (a cache filled by another tool may).
func (e *env) checkSnapshotOf(copies, exact bool) {
	t := e.t
	t.Helper()
	snap := filepath.Join(e.repoDir(), "snapshots", e.commit)
	var got []string
	filepath.WalkDir(snap, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(snap, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return err
	})
	if exact && !slices.Equal(got, wantFiles) || !exact && !isSubset(wantFiles, got) {
		t.Errorf("snapshot holds %v\nwant %v", got, wantFiles)
	}
	for _, p := range wantFiles {
		sha, oid := e.hub.Hashes(repoID, e.commit, p)
		blob := oid
		if strings.HasSuffix(p, ".safetensors") {
			blob = sha
		}
		path := filepath.Join(snap, filepath.FromSlash(p))
		if !copies {
			target, err := os.Readlink(path)
			want := strings.Repeat("../", strings.Count(p, "/")+2) + "blobs/" + blob
			if err != nil || filepath.ToSlash(target) != want {
				t.Errorf("%s: link %q, %v; want %q", p, target, err, want)
			}
		} else if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: not a regular file: %v", p, err)
		}
		if got := fileSHA256(t, path); got != sha {
			t.Errorf("%s: sha256 %s, want %s", p, got, sha)
		}
	}
	ref, err := os.ReadFile(filepath.Join(e.repoDir(), "refs", "main"))
	if err != nil || string(ref) != e.commit {
		t.Errorf("refs/main = %q, %v; want %q without a newline", ref, err, e.commit)
	}
	left, _ := filepath.Glob(filepath.Join(e.repoDir(), "blobs", "*.incomplete"))
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func fileSHA256(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// neededBytes is the size of the files a pull fetches.
func (e *env) neededBytes() int64 {
	var n int64
	for _, p := range wantFiles {
		n += fileSize(e.hub.Content(repoID, e.commit, p))
	}
	return n
}

func fileSize(r io.Reader) int64 {
	n, _ := io.Copy(io.Discard, r)
	return n
}

// oneLine checks an error is of kind, on one line, and mentions want.
func oneLine(t *testing.T, err error, kind error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error on several lines: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestPullFresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3<<20+17, 1<<20+5)
	var mu sync.Mutex
	var reports []hub.Progress
	c := e.client(func(_ *hub.Config, o *hub.Options) { o.Parallel = 3 })
	p, err := e.pull(c, hub.FetchOptions{Progress: func(p hub.Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	e.checkSnapshot(false)
	if p.Commit != e.commit || p.Dir != filepath.Join(e.repoDir(), "snapshots", e.commit) || p.Missing() != 0 {
		t.Errorf("plan: commit %s dir %s missing %d", p.Commit, p.Dir, p.Missing())
	}
	if got, want := e.hub.FileBytes(), e.neededBytes(); got != want {
		t.Errorf("sent %d file bytes, want %d (the needed files once)", got, want)
	}
	for _, r := range e.hub.Requests() {
		if strings.Contains(r.Path, ".bin") || strings.Contains(r.Path, "README") || strings.Contains(r.Path, ".gitattributes") {
			t.Errorf("fetched %s", r.Path)
		}
	}
	if _, err := os.Stat(filepath.Join(e.repoDir(), "trees", e.commit+".json")); err != nil {
		t.Errorf("no trees/<commit>.json: %v", err)
	}
	// Progress: totals right, bytes never going back, the last report
	// complete.
	last := reports[len(reports)-1]
	if last.Bytes != p.Total() || last.Total != p.Total() || last.FilesDone != len(wantFiles) || last.Files != len(wantFiles) || last.Received != p.Total() {
		t.Errorf("last progress %+v, total %d", last, p.Total())
	}
	for i := 1; i < len(reports); i++ {
		if reports[i].Bytes < reports[i-1].Bytes || reports[i].Received < reports[i-1].Received {
			t.Fatalf("progress went back: %+v after %+v", reports[i], reports[i-1])
		}
	}

	// A second pull finds everything: no file byte sent.
	e.hub.ResetCounts()
	p, err = e.pull(e.client(nil), hub.FetchOptions{})
	if err != nil || e.hub.FileBytes() != 0 || p.Missing() != 0 {
		t.Errorf("second pull: %v, %d bytes sent", err, e.hub.FileBytes())
	}
}

func TestPullPaginatedListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000, 2000)
	e.hub.PageSize = 10 // 19 entries (18 files and a folder): 2 pages
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.checkSnapshot(false)
	pages := 0
	for _, r := range e.hub.Requests() {
		if strings.Contains(r.Path, "/tree/") {
			pages++
		}
	}
	if pages != 2 {
		t.Errorf("%d tree pages fetched, want 2", pages)
	}
}

// TestReuseHFCache: a cache as huggingface-cli writes it (symlinks, or
// copies as on Windows) is used as it is: no file byte is sent.
func TestReuseHFCache(t *testing.T) {
	t.Parallel()
	for _, copies := range []bool{false, true} {
		e := newEnv(t, 2<<20, 1<<20)
		if _, err := e.hub.PrefillCache(e.cache, repoID, "main", copies, nil); err != nil {
			t.Fatal(err)
		}
		p, err := e.pull(e.client(nil), hub.FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := e.hub.FileBytes(); n != 0 || p.Missing() != 0 {
			t.Errorf("copies=%v: %d file bytes sent over a full cache", copies, n)
		}
		e.checkSnapshotOf(copies, false)
	}

	// Part of it there: only the rest is sent.
	e := newEnv(t, 2<<20, 1<<20)
	if _, err := e.hub.PrefillCache(e.cache, repoID, "main", false, func(p string) bool {
		return p != "model-00002-of-00002.safetensors" && p != "config.json"
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	want := fileSize(e.hub.Content(repoID, e.commit, "model-00002-of-00002.safetensors")) + fileSize(e.hub.Content(repoID, e.commit, "config.json"))
	if n := e.hub.FileBytes(); n != want {
		t.Errorf("sent %d bytes, want %d (the two missing files)", n, want)
	}
	e.checkSnapshotOf(false, false)
}

// TestSharedBlobs: a new commit that keeps a shard (as blip2-opt-6.7b's
// update kept two of four) sends only what changed.
func TestSharedBlobs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2<<20, 1<<20)
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	files := repoFiles(2<<20, 1<<20)
	for i := range files {
		if files[i].Path == "model-00002-of-00002.safetensors" {
			files[i].Seed = 22 // rewritten; shard 1 unchanged
		}
		if files[i].Path == "config.json" {
			files[i].Data = []byte(`{"model_type": "blip-2", "image_token_index": 50265, "v": 2}`)
		}
	}
	e.commit = e.hub.Commit(repoID, files, "main")
	e.hub.ResetCounts()
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	want := int64(1<<20) + int64(len(`{"model_type": "blip-2", "image_token_index": 50265, "v": 2}`))
	if n := e.hub.FileBytes(); n != want {
		t.Errorf("sent %d bytes, want %d", n, want)
	}
	e.checkSnapshot(false)
}

// TestResumeAfterCut is the acceptance test: a 50 MB shard cut at 60 %,
// no retries in the first run; the rerun sends at most the rest + 1 MiB.
func TestResumeAfterCut(t *testing.T) {
	t.Parallel()
	const size = 50_000_000
	const cut = size * 6 / 10
	e := newEnv(t, size, 1000)
	const shard = "model-00001-of-00002.safetensors"
	e.hub.CutAt(shard, cut)
	_, err := e.pull(e.client(func(_ *hub.Config, o *hub.Options) { o.Retries = -1 }), hub.FetchOptions{})
	oneLine(t, err, hub.ErrNetwork, shard)

	sha, _ := e.hub.Hashes(repoID, e.commit, shard)
	inc := filepath.Join(e.repoDir(), "blobs", sha+".incomplete")
	st, err := os.Stat(inc)
	if err != nil {
		t.Fatalf("no partial file: %v", err)
	}
	t.Logf("first run: cut at %d, %d bytes kept in %s", cut, st.Size(), filepath.Base(inc))

	e.hub.ResetCounts()
	p, err := e.pull(e.client(nil), hub.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var shardBytes int64
	for _, r := range e.hub.Requests() {
		if r.File == shard {
			shardBytes += r.Bytes
			if r.Range != "" && r.Range != "bytes="+strconv.FormatInt(st.Size(), 10)+"-" {
				t.Errorf("rerun asked Range %q, want from %d", r.Range, st.Size())
			}
		}
	}
	rest := int64(size) - cut
	t.Logf("rerun: the server sent %d bytes of the shard (rest %d)", shardBytes, rest)
	if shardBytes > rest+1<<20 {
		t.Errorf("rerun sent %d bytes of the shard, want <= rest %d + 1 MiB", shardBytes, rest)
	}
	if shardBytes == 0 || p.Missing() != 0 {
		t.Errorf("rerun sent nothing or left %d bytes", p.Missing())
	}
	e.checkSnapshot(false)
}

// TestResumeWithinRun: with retries, a cut connection resumes in the same
// run.
func TestResumeWithinRun(t *testing.T) {
	t.Parallel()
	const size = 8 << 20
	e := newEnv(t, size, 1000)
	const shard = "model-00001-of-00002.safetensors"
	e.hub.CutAt(shard, size/3)
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	var n int64
	ranges := 0
	for _, r := range e.hub.Requests() {
		if r.File == shard {
			n += r.Bytes
			if r.Range != "" {
				ranges++
			}
		}
	}
	if n > size+1<<20 || ranges != 1 {
		t.Errorf("sent %d bytes for a %d-byte shard with %d range requests", n, size, ranges)
	}
	if !strings.Contains(e.log(), "retrying") {
		t.Errorf("no retry logged: %q", e.log())
	}
	e.checkSnapshot(false)
}

// TestIgnoredRange: a server that answers 200 to a Range request: the file
// starts over and is right.
func TestIgnoredRange(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	e := newEnv(t, size, 1000)
	const shard = "model-00001-of-00002.safetensors"
	e.hub.CutAt(shard, size/2)
	_, err := e.pull(e.client(func(_ *hub.Config, o *hub.Options) { o.Retries = -1 }), hub.FetchOptions{})
	oneLine(t, err, hub.ErrNetwork)
	e.hub.IgnoreRange = true
	e.hub.ResetCounts()
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.log(), "ignored the request to resume") {
		t.Errorf("log: %q", e.log())
	}
	e.checkSnapshot(false)
}

// TestChecksum: wrong bytes fail the file with one line, remove the partial
// file, and the rerun succeeds; a wrong partial file left by an earlier run
// is detected and the file downloaded again in the same run.
func TestChecksum(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 1000)
	const shard = "model-00001-of-00002.safetensors"
	e.hub.Corrupt(shard)
	_, err := e.pull(e.client(nil), hub.FetchOptions{})
	oneLine(t, err, hub.ErrChecksum, shard, "sha256")
	sha, _ := e.hub.Hashes(repoID, e.commit, shard)
	if _, err := os.Stat(filepath.Join(e.repoDir(), "blobs", sha+".incomplete")); err == nil {
		t.Errorf("the wrong partial file was kept")
	}
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.checkSnapshot(false)

	// Small files are checked against their git blob id.
	e = newEnv(t, 1000, 1000)
	e.hub.Corrupt("config.json")
	_, err = e.pull(e.client(nil), hub.FetchOptions{})
	oneLine(t, err, hub.ErrChecksum, "config.json", "git blob id")

	// A partial file that is not the start of the shard.
	e = newEnv(t, 1<<20, 1000)
	sha, _ = e.hub.Hashes(repoID, e.commit, shard)
	if err := os.MkdirAll(filepath.Join(e.repoDir(), "blobs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.repoDir(), "blobs", sha+".incomplete"), []byte("not the shard"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.log(), "mismatch after resuming") {
		t.Errorf("log: %q", e.log())
	}
	e.checkSnapshot(false)
}

// TestHTTPErrors: each of the Hub's refusals gives one clear line of its
// kind; once the cause is gone, the pull succeeds.
func TestHTTPErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(e *env) (ref hub.Ref, fix func(*hub.Config))
		kind  error
		want  []string
	}{
		{"gated, no token", func(e *env) (hub.Ref, func(*hub.Config)) {
			e.hub.SetGated(repoID, true)
			e.hub.Token = token
			return hub.Ref{Repo: repoID}, func(c *hub.Config) { c.Token = token }
		}, hub.ErrGated, []string{repoID, "gated", "HF_TOKEN"}},
		{"gated, token not granted", func(e *env) (hub.Ref, func(*hub.Config)) {
			e.hub.SetGated(repoID, true)
			e.hub.Token = token
			return hub.Ref{Repo: repoID}, func(c *hub.Config) { c.Token = token }
		}, hub.ErrGated, []string{"not been granted access"}},
		{"repository not found", func(e *env) (hub.Ref, func(*hub.Config)) {
			return hub.Ref{Repo: "Salesforce/blip3"}, nil
		}, hub.ErrRepoNotFound, []string{"Salesforce/blip3", "not found"}},
		{"revision not found", func(e *env) (hub.Ref, func(*hub.Config)) {
			return hub.Ref{Repo: repoID, Revision: "refs/pr/99"}, nil
		}, hub.ErrRevisionNotFound, []string{"refs/pr/99", "revision not found"}},
		{"file gone", func(e *env) (hub.Ref, func(*hub.Config)) {
			e.hub.FailNext("tokenizer.json", 1, 404, "EntryNotFound", "tokenizer.json does not exist", "")
			return hub.Ref{Repo: repoID}, nil
		}, hub.ErrEntryNotFound, []string{"tokenizer.json", "file not found"}},
		{"forbidden", func(e *env) (hub.Ref, func(*hub.Config)) {
			e.hub.FailNext("model-00002-of-00002.safetensors", 1, 403, "", "Forbidden", "")
			return hub.Ref{Repo: repoID}, nil
		}, hub.ErrForbidden, []string{"model-00002-of-00002.safetensors", "403"}},
		{"server down", func(e *env) (hub.Ref, func(*hub.Config)) {
			e.hub.FailNext("tree", 4, 503, "", "maintenance", "")
			return hub.Ref{Repo: repoID}, nil
		}, hub.ErrServer, []string{"503", "maintenance", "gave up after 4 tries"}},
		{"rate limited for too long", func(e *env) (hub.Ref, func(*hub.Config)) {
			e.hub.FailNext("revision", 1, 429, "", "slow down", "3600")
			return hub.Ref{Repo: repoID}, nil
		}, hub.ErrRateLimited, []string{"429", "wait 1h0m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 1000, 1000)
			ref, fix := tc.setup(e)
			cfgMod := func(c *hub.Config, o *hub.Options) {
				o.Retries = 3
				if tc.name == "gated, token not granted" {
					c.Token = "hf_wrong"
				}
			}
			_, err := e.client(cfgMod).Pull(context.Background(), ref, hub.FetchOptions{})
			oneLine(t, err, tc.kind, tc.want...)
			t.Logf("%s: %v", tc.name, err)
			if ref.Repo != repoID {
				return
			}
			ref.Revision = ""
			_, err = e.client(func(c *hub.Config, o *hub.Options) {
				if fix != nil {
					fix(c)
				}
			}).Pull(context.Background(), ref, hub.FetchOptions{})
			if err != nil {
				t.Fatalf("rerun: %v", err)
			}
			e.checkSnapshot(false)
		})
	}
}

// TestRetryAfter: a 429 with Retry-After is waited out, 5xx retried.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000, 1000)
	e.hub.FailNext("revision", 1, 429, "", "slow down", "1")
	e.hub.FailNext("model-00001-of-00002.safetensors", 2, 502, "", "", "")
	start := time.Now()
	if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("Retry-After: 1 not honoured: pulled in %s", el)
	}
	if n := strings.Count(e.log(), "retrying"); n != 3 {
		t.Errorf("%d retries logged, want 3:\n%s", n, e.log())
	}
	e.checkSnapshot(false)
}

// TestTokenStaysHome: the token goes to the Hub's host only (not to the
// CDN the downloads redirect to), and never shows in errors or logs, even
// when a server echoes it back.
func TestTokenStaysHome(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2<<20, 1000)
	e.hub.Token = token
	e.hub.SetGated(repoID, true)
	e.hub.FailNext("tree", 1, 500, "", "internal error for {auth}", "")
	e.hub.CutAt("model-00001-of-00002.safetensors", 1<<20)
	withToken := func(c *hub.Config, o *hub.Options) { c.Token = token }
	if _, err := e.pull(e.client(withToken), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.checkSnapshot(false)
	cdn, home := 0, 0
	for _, r := range e.hub.Requests() {
		switch r.Host {
		case "cdn":
			cdn++
			if r.Auth != "" {
				t.Errorf("the CDN got Authorization %q for %s", r.Auth, r.Path)
			}
		case "hub":
			home++
			if r.Auth != "Bearer "+token {
				t.Errorf("the Hub got Authorization %q for %s", r.Auth, r.Path)
			}
		}
	}
	if cdn == 0 || home == 0 {
		t.Errorf("%d CDN and %d Hub requests", cdn, home)
	}
	if !strings.Contains(e.log(), "internal error for Bearer [token]") {
		t.Errorf("the echoed token is not shown redacted in the log:\n%s", e.log())
	}

	// An error carrying the echo.
	e.hub.FailNext("revision", 1, 403, "", "token "+token+" is not allowed", "")
	_, err := e.pull(e.client(withToken), hub.FetchOptions{})
	oneLine(t, err, hub.ErrForbidden)
	if strings.Contains(err.Error(), token) || strings.Contains(e.log(), token) {
		t.Errorf("the token leaked: %q\n%s", err, e.log())
	}
}

// TestOffline: HF_HUB_OFFLINE resolves from the cache only; a partial cache
// gives one line naming the missing file.
func TestOffline(t *testing.T) {
	t.Parallel()
	offline := func(c *hub.Config, _ *hub.Options) { c.Offline = true }
	const shard2 = "model-00002-of-00002.safetensors"

	// A cache left by an interrupted pull of ours (trees/<commit>.json).
	e := newEnv(t, 1<<20, 1<<20)
	e.hub.CutAt(shard2, 1000)
	_, err := e.pull(e.client(func(_ *hub.Config, o *hub.Options) { o.Retries = -1; o.Parallel = 1 }), hub.FetchOptions{})
	oneLine(t, err, hub.ErrNetwork)
	e.hub.ResetCounts()
	_, err = e.pull(e.client(offline), hub.FetchOptions{})
	oneLine(t, err, hub.ErrNotCached, "HF_HUB_OFFLINE", shard2+" is missing", e.commit[:7])

	// A huggingface-cli cache (no trees/) missing a shard the index names,
	// or config.json.
	for _, missing := range []string{shard2, "config.json"} {
		e := newEnv(t, 1<<20, 1<<20)
		if _, err := e.hub.PrefillCache(e.cache, repoID, "main", false, func(p string) bool { return p != missing }); err != nil {
			t.Fatal(err)
		}
		_, err := e.pull(e.client(offline), hub.FetchOptions{})
		oneLine(t, err, hub.ErrNotCached, missing+" is missing")
	}

	// Nothing cached.
	e = newEnv(t, 1000, 1000)
	_, err = e.pull(e.client(offline), hub.FetchOptions{})
	oneLine(t, err, hub.ErrNotCached, repoID, "not in the Hugging Face cache")

	// All there: no request at all.
	e = newEnv(t, 1000, 1000)
	if _, err := e.hub.PrefillCache(e.cache, repoID, "main", false, nil); err != nil {
		t.Fatal(err)
	}
	e.hub.ResetCounts()
	p, err := e.pull(e.client(offline), hub.FetchOptions{})
	if err != nil || !p.Offline || p.Commit != e.commit {
		t.Fatalf("offline over a full cache: %v", err)
	}
	if n := len(e.hub.Requests()); n != 0 {
		t.Errorf("%d requests offline", n)
	}
	// By commit too.
	if _, err := e.client(offline).Pull(context.Background(), hub.Ref{Repo: repoID, Revision: e.commit}, hub.FetchOptions{}); err != nil {
		t.Error(err)
	}
}

type fakeSpace struct {
	free map[string]int64 // by folder prefix
}

func (f fakeSpace) Free(dir string) (int64, string, error) {
	for prefix, n := range f.free {
		if strings.HasPrefix(dir, prefix) {
			return n, prefix, nil
		}
	}
	return 1 << 50, "/", nil
}

// TestNoSpace: too little free space is refused before a byte is sent,
// with both sizes in the message.
func TestNoSpace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3<<20, 1<<20)
	out := filepath.Join(filepath.Dir(e.cache), "models", "blip2-opt-2.7b")
	root := filepath.Dir(e.cache)
	small := func(_ *hub.Config, o *hub.Options) { o.Space = fakeSpace{map[string]int64{root: 4 << 20}} }
	_, err := e.pull(e.client(small), hub.FetchOptions{OutputDir: out, OutputBytes: 2 << 20})
	oneLine(t, err, hub.ErrNoSpace, "4.0 MB", "2.0 MB", "only 4.0 MB is free", e.cache, out)
	t.Logf("%v", err)
	if n := e.hub.FileBytes(); n != 0 {
		t.Errorf("%d file bytes sent before refusing", n)
	}
	// Download and output on different disks: each is checked alone.
	models := filepath.Dir(out)
	if err := os.MkdirAll(models, 0o755); err != nil {
		t.Fatal(err)
	}
	split := func(_ *hub.Config, o *hub.Options) {
		o.Space = fakeSpace{map[string]int64{e.cache: 5 << 20, models: 1 << 20}}
	}
	_, err = e.pull(e.client(split), hub.FetchOptions{OutputDir: out, OutputBytes: 2 << 20})
	oneLine(t, err, hub.ErrNoSpace, "converting it needs 2.0 MB", "only 1.0 MB is free")
	if _, err := e.pull(e.client(split), hub.FetchOptions{OutputDir: out, OutputBytes: 1 << 19}); err != nil {
		t.Fatal(err)
	}
	e.checkSnapshot(false)
}

// TestUnsafeListing: a listing with paths leaving the snapshot is refused
// whole, and nothing is written outside the cache.
func TestUnsafeListing(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"../evil.json", "/etc/passwd", "qformer_tokenizer/../../../evil.json", `..\evil.json`} {
		e := newEnv(t, 1000, 1000)
		e.hub.ExtraEntries = []map[string]any{{"type": "file", "path": bad, "size": 3, "oid": strings.Repeat("a", 40)}}
		_, err := e.pull(e.client(nil), hub.FetchOptions{})
		oneLine(t, err, hub.ErrUnsafeListing, "unsafe file path")
		if n := e.hub.FileBytes(); n != 0 {
			t.Errorf("%q: %d bytes fetched", bad, n)
		}
		entries, _ := os.ReadDir(filepath.Dir(e.cache))
		if len(entries) > 1 {
			t.Errorf("%q: written beside the cache: %v", bad, entries)
		}
		e.hub.ExtraEntries = nil
		if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
			t.Fatal(err)
		}
		e.checkSnapshot(false)
	}
}

// TestHubVariants: a Hub that leaves the commit out of the model info, one
// without the tree API, one that gzips text files.
func TestHubVariants(t *testing.T) {
	t.Parallel()
	for name, set := range map[string]func(h *hubtest.Hub){
		"no sha":      func(h *hubtest.Hub) { h.NoRevisionSHA = true },
		"no tree API": func(h *hubtest.Hub) { h.NoTreeAPI = true },
		"gzip":        func(h *hubtest.Hub) { h.GzipGitFiles = true },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 1<<20, 1000)
			set(e.hub)
			if _, err := e.pull(e.client(nil), hub.FetchOptions{}); err != nil {
				t.Fatal(err)
			}
			e.checkSnapshot(false)
		})
	}
}

// TestNoSymlinks: where symlinks cannot be made, the snapshot holds the
// files themselves.
func TestNoSymlinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1<<20, 1000)
	if _, err := e.pull(e.client(func(_ *hub.Config, o *hub.Options) { o.NoSymlinks = true }), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.checkSnapshot(true)
	e.hub.ResetCounts()
	if _, err := e.pull(e.client(func(_ *hub.Config, o *hub.Options) { o.NoSymlinks = true }), hub.FetchOptions{}); err != nil || e.hub.FileBytes() != 0 {
		t.Errorf("rerun: %v, %d bytes", err, e.hub.FileBytes())
	}
}

func TestNotACheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1000, 1000)
	e.hub.Commit("old/pickles", []hubtest.File{
		{Path: "config.json", Data: []byte(`{}`)},
		{Path: "pytorch_model.bin", Size: 1000, Seed: 3},
	}, "main")
	_, err := e.client(nil).Pull(context.Background(), hub.Ref{Repo: "old/pickles"}, hub.FetchOptions{})
	oneLine(t, err, hub.ErrNotCheckpoint, "pytorch_model.bin", "no .safetensors")
}

// TestCancelAndStall: cancelling stops at once and keeps the partial file
// for the next run; a stalled connection is abandoned after the timeout and
// resumed.
func TestCancelAndStall(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	const shard = "model-00001-of-00002.safetensors"
	e := newEnv(t, size, 1000)
	release := e.hub.StallAt(shard, size/2)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.client(nil).Pull(ctx, hub.Ref{Repo: repoID}, hub.FetchOptions{})
		done <- err
	}()
	sha, _ := e.hub.Hashes(repoID, e.commit, shard)
	inc := filepath.Join(e.repoDir(), "blobs", sha+".incomplete")
	waitSize(t, inc, size/2)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled pull: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not stop the pull")
	}
	if st, err := os.Stat(inc); err != nil || st.Size() != size/2 {
		t.Fatalf("partial file after cancel: %v", err)
	}

	e.hub.ResetCounts()
	e.hub.StallAt(shard, size*3/4)
	stall := func(c *hub.Config, _ *hub.Options) { c.Timeout = 300 * time.Millisecond }
	if _, err := e.pull(e.client(stall), hub.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.log(), "no data for 300ms") {
		t.Errorf("no stall logged:\n%s", e.log())
	}
	var n int64
	for _, r := range e.hub.Requests() {
		// (The cancelled run's request may end after ResetCounts.)
		if r.File == shard && r.Range != "" {
			n += r.Bytes
		}
	}
	if n != size/2 {
		t.Errorf("sent %d bytes of the shard after the cancel, want the other half %d", n, size/2)
	}
	e.checkSnapshot(false)
}

// waitSize waits until the file at path holds n bytes.
func waitSize(t *testing.T, path string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %d bytes", path, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrentPulls: two pulls of the same repository into one cache at
// once (two processes in real life) fetch each file once: the per-blob
// lock makes the second wait and then find the blob.
func TestConcurrentPulls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4<<20, 3<<20)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.pull(e.client(nil), hub.FetchOptions{})
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if got, want := e.hub.FileBytes(), e.neededBytes(); got != want {
		t.Errorf("sent %d file bytes for two concurrent pulls, want %d (each file once)", got, want)
	}
	e.checkSnapshot(false)
}

// TestUnknownHost: a host the resolver says does not exist (offline, a
// mistyped HF_ENDPOINT) fails at once with one line, without minutes of
// retries.
func TestUnknownHost(t *testing.T) {
	t.Parallel()
	const host = "no-such-host.invalid" // RFC 2606: never resolves
	var dns *net.DNSError
	if _, err := net.LookupHost(host); !errors.As(err, &dns) || !dns.IsNotFound {
		t.Skipf("this resolver does not answer 'not found' for %s: %v", host, err)
	}
	e := newEnv(t, 1000, 1000)
	c := e.client(func(c *hub.Config, o *hub.Options) {
		c.Endpoint = "http://" + host
		o.RetryBase, o.RetryMax = time.Second, 30*time.Second
	})
	start := time.Now()
	_, err := e.pull(c, hub.FetchOptions{})
	oneLine(t, err, hub.ErrNetwork, "cannot resolve "+host, "HF_HUB_OFFLINE")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v: retried a name that does not exist", d)
	}
	if l := e.log(); l != "" {
		t.Errorf("retried: %s", l)
	}
}
