package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RepoDir is the cache folder of a model repository:
// CACHE/models--ORG--NAME.
func RepoDir(cacheDir, repo string) string {
	return filepath.Join(cacheDir, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

func blobPath(repoDir, blob string) string { return filepath.Join(repoDir, "blobs", blob) }

func snapshotPath(repoDir, commit, path string) string {
	return filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(path))
}

// readRef returns the commit refs/<rev> names, "" if there is none.
func readRef(repoDir, rev string) (string, error) {
	b, err := os.ReadFile(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	sha := strings.TrimSpace(string(b))
	if !isCommit(sha) {
		return "", fmt.Errorf("%s: not a commit hash", filepath.Join(repoDir, "refs", rev))
	}
	return sha, nil
}

// writeRef records that rev points to commit (no newline, as
// huggingface_hub writes it), atomically, and only when it changed.
func writeRef(repoDir, rev, commit string) error {
	if rev == commit {
		return nil
	}
	if old, err := readRef(repoDir, rev); err == nil && old == commit {
		return nil
	}
	return writeAtomic(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)), []byte(commit))
}

// writeAtomic writes a small file through a temporary file and a rename.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// treeCache is huggingface_hub's trees/<commit>.json (format 1): a
// commit's full file list, so that offline runs know what a snapshot
// should hold.
type treeCache struct {
	FormatVersion int                   `json:"format_version"`
	Files         map[string]treeCached `json:"files"`
}

type treeCached struct {
	Size      int64  `json:"size"`
	BlobID    string `json:"blob_id"`
	LFSSHA256 string `json:"lfs_sha256,omitempty"`
	LFSSize   *int64 `json:"lfs_size,omitempty"`
}

func treesPath(repoDir, commit string) string {
	return filepath.Join(repoDir, "trees", commit+".json")
}

func writeTrees(repoDir, commit string, files []File) error {
	if _, err := os.Stat(treesPath(repoDir, commit)); err == nil {
		return nil // a commit's listing never changes
	}
	tc := treeCache{FormatVersion: 1, Files: map[string]treeCached{}}
	for _, f := range files {
		e := treeCached{Size: f.Size, BlobID: f.OID}
		if f.LFS() {
			size := f.Size
			e.LFSSHA256, e.LFSSize = f.SHA256, &size
		}
		tc.Files[f.Path] = e
	}
	b, err := json.MarshalIndent(tc, "", " ")
	if err != nil {
		return err
	}
	return writeAtomic(treesPath(repoDir, commit), b)
}

// readTrees reads trees/<commit>.json; ok is false when there is none or
// it cannot be used (unknown format, unsafe paths, malformed ids).
func readTrees(repoDir, commit string) (files []File, ok bool) {
	b, err := os.ReadFile(treesPath(repoDir, commit))
	if err != nil {
		return nil, false
	}
	var tc treeCache
	if json.Unmarshal(b, &tc) != nil || tc.FormatVersion != 1 {
		return nil, false
	}
	for p, e := range tc.Files {
		if checkPath(p) != nil {
			return nil, false
		}
		var lfs *lfsRef
		if e.LFSSHA256 != "" {
			lfs = &lfsRef{SHA256: e.LFSSHA256, Size: e.Size}
			if e.LFSSize != nil {
				lfs.Size = *e.LFSSize
			}
		}
		f, err := listedFile(p, e.Size, e.BlobID, lfs)
		if err != nil {
			return nil, false
		}
		files = append(files, f)
	}
	return files, true
}

// inspect fills in what the cache holds of f: the snapshot entry or the
// blob (Cached), or a partial download (Partial). A snapshot entry is
// trusted when its size is right: huggingface_hub and this package only
// link a blob in after its hash was checked (an entry of the wrong size is
// downloaded again).
func inspect(repoDir, commit string, f *File) {
	f.Cached, f.Partial, f.linked = false, 0, false
	if st, err := os.Stat(snapshotPath(repoDir, commit, f.Path)); err == nil && st.Mode().IsRegular() && st.Size() == f.Size {
		f.Cached, f.linked = true, true
		return
	}
	blob := blobPath(repoDir, f.Blob())
	if st, err := os.Stat(blob); err == nil && st.Mode().IsRegular() && st.Size() == f.Size {
		f.Cached = true
		return
	}
	if st, err := os.Stat(blob + ".incomplete"); err == nil && st.Mode().IsRegular() && st.Size() <= f.Size {
		f.Partial = st.Size()
	}
}

// link makes the snapshot entry of f point at its blob: a relative symlink
// (../../blobs/<hash>, one more ../ per folder level), or, where symlinks
// cannot be made, the blob itself moved there when it was just downloaded
// (newBlob) and a copy otherwise, as huggingface_hub does.
func (c *Client) link(repoDir, commit string, f File, newBlob bool) error {
	dst := snapshotPath(repoDir, commit, f.Path)
	blob := blobPath(repoDir, f.Blob())
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return err
	}
	if !c.opt.NoSymlinks {
		if target, err := os.Readlink(dst); err == nil && target == rel {
			return nil
		}
		// Made under a name of its own and renamed over dst: another pull
		// of the same repository may be linking the same file right now,
		// and remove-then-create would let one of them fail (and fall back
		// to a copy that replaces the other's link).
		tmp := dst + ".link-" + strconv.FormatUint(rand.Uint64(), 36)
		err := os.Symlink(rel, tmp)
		if err == nil {
			if err := os.Rename(tmp, dst); err != nil {
				os.Remove(tmp)
				return err
			}
			return nil
		}
		c.logf("cannot make symlinks in %s (%v); storing copies instead", filepath.Dir(dst), err)
	}
	if st, err := os.Lstat(dst); err == nil && st.Mode().IsRegular() && st.Size() == f.Size {
		return nil
	}
	os.Remove(dst)
	if newBlob {
		return os.Rename(blob, dst)
	}
	tmp := blob + ".copy"
	if err := copyFile(blob, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// lock takes the download lock of a blob, in the place huggingface_hub
// uses (CACHE/.locks/models--ORG--NAME/<hash>.lock), waiting while another
// process holds it. The returned function releases it.
func (c *Client) lock(ctx context.Context, repo, blob, name string) (func(), error) {
	path := filepath.Join(c.cfg.CacheDir, ".locks", filepath.Base(RepoDir("", repo)), blob+".lock")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %v", path, err)
		}
		if ok {
			return func() { f.Close() }, nil
		}
		if !waited {
			c.logf("%s: another process is downloading it; waiting", name)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
