// Package index keeps a folder of images searchable by text: every image's
// contrastive embeddings (a retrieval model's ITC image embeddings, all
// query vectors, unit length) in a SQLite database in the user's data
// folder, one database per folder, keyed by the image's path (relative to
// the folder), size and modification time.
//
// Update brings an index up to date with its folder: new and changed
// images are embedded, deleted ones dropped, unchanged ones left alone (a
// second run over an unchanged folder reads no image). Each batch of
// images is one transaction, so that an interruption — Ctrl+C or a
// SIGKILL — keeps every finished batch and leaves a usable index. An index
// records the model that built it (its folder and its heads' digest) and
// refuses another: scores of two models do not mix.
//
// Search ranks the images by their ITC similarity with a text embedding
// (the largest cosine over an image's query vectors), from the embeddings
// Load reads into memory once.
package index

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/blip2chat/blip2chat/engine/kernels"
	"github.com/blip2chat/blip2chat/weights/dtype"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// schemaVersion is the layout of the database; an index of another
// version is rebuilt.
const schemaVersion = "1"

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL, embeds BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS unreadable (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL, error TEXT NOT NULL);
`

// Model identifies the model an index belongs to.
type Model struct {
	Dir        string // its model folder, as given when indexing (absolute)
	Digest     string // vision.Model.RetrievalDigest: the same for every conversion of one checkpoint
	Arch       string // e.g. "Blip2ForImageTextRetrieval"
	WeightType string // "f32", "f16", "q8_0"
	Queries    int    // Q: vectors per image
	EmbedSize  int    // E: width of a vector
}

// Meta describes an index.
type Meta struct {
	Folder  string // the indexed folder (absolute)
	Model   Model
	Updated time.Time // the end of the last update (zero if none finished)
}

// Index is an open index database.
type Index struct {
	Path string // the database file
	Meta Meta
	db   *sql.DB
}

// Dir is where the indexes live in the data folder dataDir.
func Dir(dataDir string) string { return filepath.Join(dataDir, "index") }

// PathFor is the database file of folder's index: its base name, made
// safe for a file name, and a hash of its absolute path.
func PathFor(dataDir, folder string) (string, error) {
	abs, err := filepath.Abs(folder)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	base := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, filepath.Base(abs))
	if len(base) > 40 {
		base = base[:40]
	}
	return filepath.Join(Dir(dataDir), base+"-"+hex.EncodeToString(sum[:6])+".db"), nil
}

// ErrNotIndexed is returned by OpenExisting for a folder without an index.
var ErrNotIndexed = errors.New("not indexed yet")

// Create opens the index of folder in dataDir, creating the database (and
// its folder) when there is none.
func Create(dataDir, folder string) (*Index, error) {
	abs, err := filepath.Abs(folder)
	if err != nil {
		return nil, err
	}
	p, err := PathFor(dataDir, abs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("index folder: %w", err)
	}
	ix, err := open(p, false)
	if err != nil {
		return nil, err
	}
	if ix.Meta.Folder == "" {
		ix.Meta.Folder = abs
	}
	return ix, nil
}

// OpenExisting opens the index of folder for searching; a folder never
// indexed gives an error wrapping ErrNotIndexed.
func OpenExisting(dataDir, folder string) (*Index, error) {
	p, err := PathFor(dataDir, folder)
	if err != nil {
		return nil, err
	}
	return OpenFile(p, folder)
}

// OpenFile opens the index database at path (List gives them), for
// searching; folder names it in errors.
func OpenFile(path, folder string) (*Index, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is %w: run 'blip2chat index %s' first", folder, ErrNotIndexed, folder)
	}
	ix, err := open(path, true)
	if err != nil {
		return nil, err
	}
	if ix.Meta.Model.Digest == "" {
		ix.Close()
		return nil, fmt.Errorf("%s is %w (its first indexing did not finish a batch): run 'blip2chat index %s'", folder, ErrNotIndexed, folder)
	}
	return ix, nil
}

// open opens (read-only: an existing) database and reads its meta.
func open(path string, readOnly bool) (*Index, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	// Reading the embeddings of a large index is mostly SQLite reading
	// pages: map the file instead (up to SQLite's 2 GB), and give a new
	// database pages that hold an image's row (32 x 256 floats: 32 KB).
	q.Add("_pragma", "mmap_size(2147418112)")
	if readOnly {
		q.Set("mode", "ro")
	} else {
		q.Add("_pragma", "page_size(65536)")
		// WAL: a reader (search) never waits for a writer (index), and a
		// killed writer leaves the last committed batch.
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
	}
	// A URI filename, "file:///C:/x.db" on Windows as "file:///home/x.db"
	// elsewhere, so that the query's settings apply.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	p := filepath.ToSlash(path)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	db, err := sql.Open("sqlite", "file://"+(&url.URL{Path: p}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	ix := &Index{Path: path, db: db}
	if !readOnly {
		if _, err := db.Exec(schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("index %s: %w", path, err)
		}
	}
	if err := ix.readMeta(); err != nil {
		db.Close()
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	return ix, nil
}

// Close closes the database.
func (ix *Index) Close() error { return ix.db.Close() }

func (ix *Index) readMeta() error {
	rows, err := ix.db.Query(`SELECT key, value FROM meta`)
	if err != nil {
		return err
	}
	defer rows.Close()
	kv := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		kv[k] = v
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(kv) == 0 {
		return nil
	}
	if kv["version"] != schemaVersion {
		return fmt.Errorf("index format %q, this blip2chat reads %q: delete the file or index the folder again with --rebuild", kv["version"], schemaVersion)
	}
	m := &ix.Meta
	m.Folder = kv["folder"]
	m.Model = Model{Dir: kv["model_dir"], Digest: kv["model_digest"], Arch: kv["model_arch"], WeightType: kv["weight_type"]}
	m.Model.Queries, _ = strconv.Atoi(kv["queries"])
	m.Model.EmbedSize, _ = strconv.Atoi(kv["embed_size"])
	if m.Model.Digest != "" && (m.Model.Queries <= 0 || m.Model.EmbedSize <= 0 || m.Model.Queries > 1<<12 || m.Model.EmbedSize > 1<<16) {
		return fmt.Errorf("damaged meta: %d queries of width %d", m.Model.Queries, m.Model.EmbedSize)
	}
	if u, err := strconv.ParseInt(kv["updated"], 10, 64); err == nil && u > 0 {
		m.Updated = time.Unix(0, u)
	}
	return nil
}

// writeMeta stores m in tx.
func writeMeta(tx *sql.Tx, m Meta) error {
	kv := map[string]string{
		"version": schemaVersion, "folder": m.Folder,
		"model_dir": m.Model.Dir, "model_digest": m.Model.Digest, "model_arch": m.Model.Arch,
		"weight_type": m.Model.WeightType, "queries": strconv.Itoa(m.Model.Queries),
		"embed_size": strconv.Itoa(m.Model.EmbedSize),
	}
	if !m.Updated.IsZero() {
		kv["updated"] = strconv.FormatInt(m.Updated.UnixNano(), 10)
	}
	for k, v := range kv {
		if _, err := tx.Exec(`INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, k, v); err != nil {
			return err
		}
	}
	return nil
}

// Count is the number of images in the index.
func (ix *Index) Count() (int, error) {
	var n int
	err := ix.db.QueryRow(`SELECT COUNT(*) FROM images`).Scan(&n)
	return n, err
}

// encodeEmbeds is the blob of an image's embeddings: float32s, little
// endian.
func encodeEmbeds(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// decodeEmbeds reads a blob of n float32s into dst, refusing a blob of
// another size or with values that are not finite.
func decodeEmbeds(dst []float32, b []byte) error {
	if len(b) != 4*len(dst) {
		return fmt.Errorf("%d bytes of embeddings, want %d", len(b), 4*len(dst))
	}
	for i := range dst {
		x := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return errors.New("embeddings are not finite")
		}
		dst[i] = x
	}
	return nil
}

// Embeddings are an index's images and their vectors, in memory: image i
// has the Q rows Data[i*Q*E : (i+1)*Q*E].
type Embeddings struct {
	Folder string
	Paths  []string // relative to Folder, sorted
	Q, E   int
	Data   []float32

	scan *scanCopy // Data in int8, for the first pass of Rank; made once
}

// Load reads every image's embeddings. A damaged row is skipped and
// counted in bad.
func (ix *Index) Load(ctx context.Context) (e *Embeddings, bad int, err error) {
	m := ix.Meta.Model
	e = &Embeddings{Folder: ix.Meta.Folder, Q: m.Queries, E: m.EmbedSize}
	n, err := ix.Count()
	if err != nil {
		return nil, 0, err
	}
	e.Paths = make([]string, 0, n)
	e.Data = make([]float32, 0, n*m.Queries*m.EmbedSize)
	rows, err := ix.db.QueryContext(ctx, `SELECT path, embeds FROM images ORDER BY path`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	size := m.Queries * m.EmbedSize
	for rows.Next() {
		var p string
		var b []byte
		if err := rows.Scan(&p, &b); err != nil {
			return nil, 0, err
		}
		at := len(e.Data)
		e.Data = slices.Grow(e.Data, size)[:at+size]
		if decodeEmbeds(e.Data[at:], b) != nil {
			e.Data = e.Data[:at]
			bad++
			continue
		}
		e.Paths = append(e.Paths, p)
	}
	return e, bad, rows.Err()
}

// Hit is one image found by a search.
type Hit struct {
	Path string  // absolute
	ITC  float32 // its similarity with the query
}

// Scorer computes scores[i] = row i of w · text for every row of w (the
// kernels' matrix-vector product on a pool of threads).
type Scorer func(scores, text []float32, w *kernels.Matrix)

// scanRows is the size (rows of vectors) from which Rank scans an int8
// copy of the vectors first (ggml's q8_0: a quarter of the memory of
// float32, which is the one cost of ranking a large index), then scores
// exactly only the images that may be among the k best.
const scanRows = 1 << 14

// scanSlack covers the float32 rounding of the scan's and the exact
// scores' sums (each under 1e-5 for unit vectors of a few hundred
// dimensions).
const scanSlack = 1e-4

// scanCopy is the int8 copy of an index's vectors and what bounds the
// error of a score computed from it.
type scanCopy struct {
	m *kernels.Matrix // Q8_0
	// maxNorm is the largest |r| of a vector, maxErr the largest |r - r'|
	// between a vector and its int8 copy (as decoded: q times the f16
	// scale), both in float64.
	maxNorm, maxErr float64
}

// scanMatrix is Data quantized to q8_0, made on first use.
func (e *Embeddings) scanMatrix() *scanCopy {
	if e.scan != nil {
		return e.scan
	}
	rows := len(e.Data) / e.E
	bpr := e.E / dtype.Q8_0BlockSize * dtype.Q8_0BlockBytes
	c := &scanCopy{m: &kernels.Matrix{Type: kernels.Q8_0, Rows: rows, Cols: e.E, Raw: make([]byte, rows*bpr)}}
	dec := make([]float32, e.E)
	for i := 0; i < rows; i++ {
		r := e.Data[i*e.E : (i+1)*e.E]
		raw := c.m.Raw[i*bpr : (i+1)*bpr]
		dtype.QuantizeQ8_0(raw, r)
		dtype.DequantizeQ8_0(dec, raw)
		var norm, err float64
		for j, x := range r {
			norm += float64(x) * float64(x)
			d := float64(x) - float64(dec[j])
			err += d * d
		}
		c.maxNorm, c.maxErr = max(c.maxNorm, math.Sqrt(norm)), max(c.maxErr, math.Sqrt(err))
	}
	e.scan = c
	return c
}

// bound is how far a score from the int8 copy can be from the exact one
// for text t, by Cauchy-Schwarz: r.t - r'.t' = r.(t - t') + (r - r').t',
// where t' is t as the kernels quantize it for an int8 dot product (per
// block of 32, scale amax/127, so |t - t'| <= 0.57 scale per element,
// allowing for an f16 scale) and r' the vector's int8 copy.
func (c *scanCopy) bound(t []float32) float64 {
	var tErr2, tNorm2 float64
	for b := 0; b+dtype.Q8_0BlockSize <= len(t); b += dtype.Q8_0BlockSize {
		var amax float64
		for _, x := range t[b : b+dtype.Q8_0BlockSize] {
			amax = max(amax, math.Abs(float64(x)))
			tNorm2 += float64(x) * float64(x)
		}
		step := 0.57 * amax / 127
		tErr2 += dtype.Q8_0BlockSize * step * step
	}
	tErr := math.Sqrt(tErr2)
	return tErr*c.maxNorm + c.maxErr*(math.Sqrt(tNorm2)+tErr) + scanSlack
}

// Rank returns the k images most similar to text (a unit E-vector), best
// first, ties in path order; k <= 0 returns them all. An image's
// similarity is the largest of its Q vectors' dot products with text,
// computed in float32: the scores are those of ranking every image
// exactly. A large index is scanned in int8 first, then only the images
// that may be among the k best are scored exactly. score computes the
// dot products (nil: plain Go).
func (e *Embeddings) Rank(text []float32, k int, score Scorer) []Hit {
	n := len(e.Paths)
	if n == 0 || len(text) != e.E {
		return nil
	}
	if score == nil {
		score = dotRows
	}
	if k <= 0 || k >= n {
		k = n
	}
	exact := func(i int) float32 {
		best := float32(math.Inf(-1))
		for q := 0; q < e.Q; q++ {
			r := e.Data[(i*e.Q+q)*e.E:][:e.E]
			var d float32
			for j, t := range text {
				d += r[j] * t
			}
			best = max(best, d)
		}
		return best
	}
	dots := make([]float32, n*e.Q)
	best := make([]float32, n)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	byScore := func(s []float32) func(a, b int) int {
		return func(a, b int) int {
			switch {
			case s[a] > s[b]:
				return -1
			case s[a] < s[b]:
				return 1
			}
			return a - b // path order
		}
	}
	if k == n || n*e.Q < scanRows || e.E%dtype.Q8_0BlockSize != 0 {
		score(dots, text, &kernels.Matrix{Type: kernels.F32, Rows: n * e.Q, Cols: e.E, F32: e.Data})
		for i := range best {
			best[i] = slices.Max(dots[i*e.Q : (i+1)*e.Q])
		}
		slices.SortFunc(order, byScore(best))
		return e.hits(order[:k], best)
	}
	// The int8 pass; every image whose approximate score is within twice
	// the error bound of the k-th best approximate one, scored exactly.
	// (The k images with the best approximate scores score exactly at
	// least that k-th one less the bound, so an image further below
	// cannot reach the k best.)
	sc := e.scanMatrix()
	score(dots, text, sc.m)
	approx := make([]float32, n)
	for i := range approx {
		approx[i] = slices.Max(dots[i*e.Q : (i+1)*e.Q])
	}
	cut := float64(kthLargest(approx, k)) - 2*sc.bound(text)
	var cand []int
	for i, a := range approx {
		if float64(a) >= cut {
			best[i] = exact(i)
			cand = append(cand, i)
		}
	}
	slices.SortFunc(cand, byScore(best))
	return e.hits(cand[:k], best)
}

// kthLargest is the k-th largest of v (1 <= k <= len(v)).
func kthLargest(v []float32, k int) float32 {
	if k > 64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)-k]
	}
	top := make([]float32, 0, k) // the k largest so far, descending
	for _, x := range v {
		if len(top) == k && !(x > top[k-1]) {
			continue
		}
		i := len(top)
		if i == k {
			i--
		} else {
			top = append(top, 0)
		}
		for i > 0 && top[i-1] < x {
			top[i] = top[i-1]
			i--
		}
		top[i] = x
	}
	return top[k-1]
}

func (e *Embeddings) hits(order []int, best []float32) []Hit {
	hits := make([]Hit, len(order))
	for i, j := range order {
		hits[i] = Hit{Path: filepath.Join(e.Folder, filepath.FromSlash(e.Paths[j])), ITC: best[j]}
	}
	return hits
}

// dotRows is the portable Scorer, of F32, F16 or Q8_0 rows.
func dotRows(scores, text []float32, w *kernels.Matrix) {
	E := len(text)
	var dec []float32
	for i := 0; i < w.Rows; i++ {
		var d float32
		if w.Type == kernels.Q8_0 {
			bpr := E / dtype.Q8_0BlockSize * dtype.Q8_0BlockBytes
			dec = slices.Grow(dec[:0], E)[:E]
			dtype.DequantizeQ8_0(dec, w.Raw[i*bpr:(i+1)*bpr])
			for j, t := range text {
				d += dec[j] * t
			}
		} else if w.Type == kernels.F16 {
			r := w.Raw[2*i*E : 2*(i+1)*E]
			for j, t := range text {
				d += dtype.F16ToF32(binary.LittleEndian.Uint16(r[2*j:])) * t
			}
		} else {
			r := w.F32[i*E : (i+1)*E]
			for j, t := range text {
				d += r[j] * t
			}
		}
		scores[i] = d
	}
}

// List describes the indexes in dataDir, skipping files that are not
// finished indexes.
func List(dataDir string) ([]Listed, error) {
	es, err := os.ReadDir(Dir(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Listed
	for _, d := range es {
		if d.IsDir() || filepath.Ext(d.Name()) != ".db" {
			continue
		}
		p := filepath.Join(Dir(dataDir), d.Name())
		ix, err := open(p, true)
		if err != nil {
			continue
		}
		n, _ := ix.Count()
		if ix.Meta.Model.Digest != "" {
			out = append(out, Listed{Path: p, Meta: ix.Meta, Images: n})
		}
		ix.Close()
	}
	return out, nil
}

// Listed is an index found by List.
type Listed struct {
	Path   string
	Meta   Meta
	Images int
}
