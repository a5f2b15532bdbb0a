package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// File is one file of a repository at a commit, as the tree API lists it,
// and what the cache holds of it.
type File struct {
	Path string // slash-separated, relative to the repository
	Size int64
	// SHA256 is the content's sha256 for files stored in Git LFS (every
	// weight file); "" for files stored in git.
	SHA256 string
	// OID is the git blob id (sha1 of "blob <size>\x00" + content) for
	// files stored in git; for LFS files the id of the pointer file.
	OID string

	// Cached says the cache holds the file already (in the snapshot, or its
	// blob, which is then only linked). Partial is the length of an
	// unfinished download to resume (blobs/<hash>.incomplete).
	Cached  bool
	Partial int64
	// linked says the snapshot entry is there (Cached may also mean the
	// blob only).
	linked bool
}

// LFS reports a file stored in Git LFS.
func (f File) LFS() bool { return f.SHA256 != "" }

// Blob is the file's name under blobs/: the sha256 for LFS files, the git
// blob id otherwise (the ETag the Hub sends for each).
func (f File) Blob() string {
	if f.LFS() {
		return f.SHA256
	}
	return f.OID
}

// treeEntry is an element of the tree API's answer
// (GET /api/models/{repo}/tree/{rev}): type "file" or "directory".
type treeEntry struct {
	Type string  `json:"type"`
	Path string  `json:"path"`
	Size int64   `json:"size"`
	OID  string  `json:"oid"`
	LFS  *lfsRef `json:"lfs"`
}

type lfsRef struct {
	OID    string `json:"oid"`    // tree API: the sha256
	SHA256 string `json:"sha256"` // model info siblings: the sha256
	Size   int64  `json:"size"`
}

// parseTree parses one page of a tree listing, refusing unsafe paths and
// malformed ids (a blob name must be a hash: it becomes a file name).
func parseTree(body []byte) ([]File, error) {
	var entries []treeEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, fmt.Errorf("malformed file listing: %v", err)
	}
	var out []File
	for _, e := range entries {
		if err := checkPath(e.Path); err != nil {
			return nil, &Error{Kind: ErrUnsafeListing, Msg: err.Error()}
		}
		if e.Type != "file" {
			continue
		}
		f, err := listedFile(e.Path, e.Size, e.OID, e.LFS)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func listedFile(path string, size int64, oid string, lfs *lfsRef) (File, error) {
	f := File{Path: path, Size: size, OID: strings.ToLower(oid)}
	if lfs != nil {
		f.SHA256 = strings.ToLower(firstNonEmpty(lfs.SHA256, lfs.OID))
		f.Size = lfs.Size
		if !isHex(f.SHA256, 64) {
			return File{}, fmt.Errorf("malformed file listing: %s: sha256 %q", path, f.SHA256)
		}
	} else if !isHex(f.OID, 40) {
		return File{}, fmt.Errorf("malformed file listing: %s: git id %q", path, f.OID)
	}
	if f.Size < 0 {
		return File{}, fmt.Errorf("malformed file listing: %s: size %d", path, f.Size)
	}
	return f, nil
}

// nextLink returns the rel="next" target of Link headers, "" if none.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(part, ";")
			target = strings.TrimSpace(target)
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "rel") && strings.Trim(strings.TrimSpace(val), `"`) == "next" {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}

// getJSON fetches an API URL (retrying) and returns the body and headers.
func (c *Client) getJSON(ctx context.Context, rawURL, repo, what string) ([]byte, http.Header, error) {
	var body []byte
	var hdr http.Header
	err := c.retry(ctx, what, func() (bool, error) {
		resp, err := c.do(ctx, http.MethodGet, rawURL, http.Header{"Accept": {"application/json"}}, repo, what)
		if err != nil {
			return false, err
		}
		defer resp.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			if ctx.Err() != nil {
				return false, context.Cause(ctx)
			}
			return false, &retryable{err: errorf(ErrNetwork, "%s: %v", what, netError(err))}
		}
		hdr = resp.Header
		return false, nil
	})
	return body, hdr, err
}

func (c *Client) apiURL(repo string, parts ...string) string {
	return c.cfg.Endpoint + "/api/models/" + repo + "/" + strings.Join(parts, "/")
}

// resolveURL is the download URL of a file at a commit.
func (c *Client) resolveURL(repo, rev, path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.cfg.Endpoint + "/" + repo + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(segs, "/")
}

// commit resolves a revision to its commit with the model info endpoint
// (GET /api/models/{repo}/revision/{rev}, field "sha"). When the answer
// has no usable sha (a mirror that leaves it out), the X-Repo-Commit
// header of config.json's download answers instead.
func (c *Client) commit(ctx context.Context, ref Ref) (string, error) {
	body, _, err := c.getJSON(ctx, c.apiURL(ref.Repo, "revision", url.PathEscape(ref.Rev())), ref.Repo, ref.Repo+"@"+ref.Rev())
	if err != nil {
		return "", err
	}
	var info struct {
		SHA string `json:"sha"`
	}
	if json.Unmarshal(body, &info) == nil && isCommit(info.SHA) {
		return info.SHA, nil
	}
	what := ref.Repo + "@" + ref.Rev() + ": config.json"
	var sha string
	err = c.retry(ctx, what, func() (bool, error) {
		resp, err := c.do(ctx, http.MethodHead, c.resolveURL(ref.Repo, ref.Rev(), "config.json"), http.Header{"Accept-Encoding": {"identity"}}, ref.Repo, what)
		if err != nil {
			return false, err
		}
		resp.Close()
		// The Hub's own answer carries it; a CDN it redirects to may not.
		sha = strings.ToLower(firstNonEmpty(resp.first.Get("X-Repo-Commit"), resp.Header.Get("X-Repo-Commit")))
		return false, nil
	})
	if err != nil {
		return "", err
	}
	if !isCommit(sha) {
		return "", errorf(ErrServer, "%s@%s: the Hub did not say which commit this is", ref.Repo, ref.Rev())
	}
	return sha, nil
}

// maxPages bounds a listing: 1000 entries a page.
const maxPages = 10000

// listTree lists every file of the repository at commit with the tree API
// (recursive, following Link rel="next" pages on the Hub's own origin).
// A Hub without the tree API (404 without an X-Error-Code) is asked for
// the model info's siblings instead.
func (c *Client) listTree(ctx context.Context, repo, commit string) ([]File, error) {
	what := repo + "@" + commit[:7] + ": file list"
	next := c.apiURL(repo, "tree", commit) + "?recursive=true&expand=false"
	var files []File
	for page := 0; next != ""; page++ {
		if page >= maxPages {
			return nil, errorf(ErrServer, "%s: more than %d pages", what, maxPages)
		}
		body, hdr, err := c.getJSON(ctx, next, repo, what)
		var he *Error
		if page == 0 && errors.As(err, &he) && he.Status == http.StatusNotFound && he.Code == "" {
			return c.listSiblings(ctx, repo, commit)
		}
		if err != nil {
			return nil, err
		}
		fs, err := parseTree(body)
		if err != nil {
			return nil, c.listingError(what, err)
		}
		files = append(files, fs...)
		next = ""
		if link := nextLink(hdr); link != "" {
			cur, _ := url.Parse(c.cfg.Endpoint)
			u, err := cur.Parse(link)
			if err != nil || origin(u) != c.origin {
				return nil, errorf(ErrServer, "%s: the next page is not on %s", what, c.cfg.Endpoint)
			}
			next = u.String()
		}
	}
	return files, nil
}

func (c *Client) listingError(what string, err error) error {
	var he *Error
	if errors.As(err, &he) {
		return errorf(he.Kind, "%s: %s", what, he.Msg)
	}
	return errorf(ErrServer, "%s: %v", what, err)
}

// listSiblings lists a commit's files from the model info with blobs
// (what huggingface_hub's snapshot_download used before the tree API).
func (c *Client) listSiblings(ctx context.Context, repo, commit string) ([]File, error) {
	what := repo + "@" + commit[:7] + ": file list"
	body, _, err := c.getJSON(ctx, c.apiURL(repo, "revision", commit)+"?blobs=true", repo, what)
	if err != nil {
		return nil, err
	}
	var info struct {
		Siblings []struct {
			Name   string  `json:"rfilename"`
			Size   int64   `json:"size"`
			BlobID string  `json:"blobId"`
			LFS    *lfsRef `json:"lfs"`
		} `json:"siblings"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, errorf(ErrServer, "%s: malformed model info: %v", what, err)
	}
	var files []File
	for _, s := range info.Siblings {
		if err := checkPath(s.Name); err != nil {
			return nil, errorf(ErrUnsafeListing, "%s: %v", what, err)
		}
		f, err := listedFile(s.Name, s.Size, s.BlobID, s.LFS)
		if err != nil {
			return nil, errorf(ErrServer, "%s: %v", what, err)
		}
		files = append(files, f)
	}
	return files, nil
}
