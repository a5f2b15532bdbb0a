package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/kernels"
)

// fakeEncoder embeds an image as Q unit vectors drawn from a hash of its
// pixels: no model, but a function of the image alone.
type fakeEncoder struct {
	digest string
	delay  time.Duration
	embeds atomic.Int32
}

const fq, fe = 3, 8

func (f *fakeEncoder) Model() Model {
	return Model{Dir: "/models/fake", Digest: f.digest, Arch: "Fake", WeightType: "f32", Queries: fq, EmbedSize: fe}
}

func (f *fakeEncoder) Decode(ctx context.Context, path string) (image.Image, error) {
	return imageprep.Load(ctx, path)
}

func (f *fakeEncoder) Embed(ctx context.Context, img image.Image) ([]float32, error) {
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.embeds.Add(1)
	h := fnv.New64a()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			fmt.Fprint(h, r, g, bl)
		}
	}
	return vectors(h.Sum64()), nil
}

// vectors are Q unit vectors from a seed.
func vectors(seed uint64) []float32 {
	v := make([]float32, fq*fe)
	for q := 0; q < fq; q++ {
		var n float64
		for i := 0; i < fe; i++ {
			seed = seed*6364136223846793005 + 1442695040888963407
			x := float64(int64(seed>>11))/float64(1<<52) - 1
			v[q*fe+i] = float32(x)
			n += x * x
		}
		for i := 0; i < fe; i++ {
			v[q*fe+i] /= float32(math.Sqrt(n))
		}
	}
	return v
}

func writePNG(t testing.TB, path string, seed int) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 6, 5))
	for y := 0; y < 5; y++ {
		for x := 0; x < 6; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(seed * 7), uint8(x * y), uint8(seed), 255})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// photoFolder makes n small PNGs (some in a subfolder), two broken
// files, a hidden folder and a text file.
func photoFolder(t testing.TB, n int) string {
	t.Helper()
	d := t.TempDir()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("img%03d.png", i)
		if i%4 == 0 {
			name = filepath.Join("sub", name)
		}
		writePNG(t, filepath.Join(d, name), i)
	}
	os.WriteFile(filepath.Join(d, "broken.jpg"), []byte("not a jpeg"), 0o644)
	os.WriteFile(filepath.Join(d, "sub", "empty.png"), nil, 0o644)
	os.WriteFile(filepath.Join(d, "notes.txt"), []byte("hello"), 0o644)
	writePNG(t, filepath.Join(d, ".thumbnails", "x.png"), 99)
	return d
}

func update(t testing.TB, data, folder string, enc Encoder, o UpdateOptions) Stats {
	t.Helper()
	ix, err := Create(data, folder)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	st, err := ix.Update(context.Background(), enc, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestUpdate: the first update embeds every image and skips the broken
// files with a warning each; the second reads nothing; deleted, touched
// and added files are picked up; another model is refused, and takes
// over with Rebuild.
func TestUpdate(t *testing.T) {
	data, folder := t.TempDir(), photoFolder(t, 20)
	enc := &fakeEncoder{digest: "aaa"}
	var warn bytes.Buffer
	st := update(t, data, folder, enc, UpdateOptions{Warnings: &warn, BatchSize: 3})
	if st.Files != 22 || st.Embedded != 20 || st.Unreadable != 2 || st.Removed != 0 || st.Interrupted {
		t.Errorf("first: %+v", st)
	}
	if n := strings.Count(warn.String(), "warning: skipped "); n != 2 || !strings.Contains(warn.String(), "broken.jpg") {
		t.Errorf("warnings %q", warn.String())
	}

	warn.Reset()
	start := time.Now()
	st = update(t, data, folder, enc, UpdateOptions{Warnings: &warn})
	if st.Embedded != 0 || st.Unchanged != 20 || st.StillUnreadable != 2 || warn.Len() != 0 || enc.embeds.Load() != 20 {
		t.Errorf("second: %+v, warnings %q, %d embeds", st, warn.String(), enc.embeds.Load())
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("second update took %v", el)
	}

	os.Remove(filepath.Join(folder, "img001.png"))
	os.Remove(filepath.Join(folder, "broken.jpg"))
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(folder, "img002.png"), later, later)
	writePNG(t, filepath.Join(folder, "new.png"), 77)
	st = update(t, data, folder, enc, UpdateOptions{})
	if st.Removed != 1 || st.Embedded != 2 || st.Unchanged != 18 || st.StillUnreadable != 1 {
		t.Errorf("after changes: %+v", st)
	}
	ix, err := OpenExisting(data, folder)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := ix.Count(); n != 20 {
		t.Errorf("%d images indexed, want 20", n)
	}
	if ix.Meta.Model.Digest != "aaa" || ix.Meta.Updated.IsZero() || ix.Meta.Folder != folder {
		t.Errorf("meta %+v", ix.Meta)
	}
	ix.Close()

	other := &fakeEncoder{digest: "bbb"}
	ix, _ = Create(data, folder)
	_, err = ix.Update(context.Background(), other, UpdateOptions{})
	if err == nil || !strings.Contains(err.Error(), "indexed with another model (/models/fake, Fake)") {
		t.Errorf("other model: %v", err)
	}
	ix.Close()
	st = update(t, data, folder, other, UpdateOptions{Rebuild: true})
	if st.Embedded != 20 || st.Unreadable != 1 {
		t.Errorf("rebuild: %+v", st)
	}
}

// TestRank: the ranking is by the largest dot product over an image's
// vectors, as computed one by one; k cuts it.
func TestRank(t *testing.T) {
	data, folder := t.TempDir(), photoFolder(t, 30)
	enc := &fakeEncoder{digest: "aaa"}
	update(t, data, folder, enc, UpdateOptions{})
	ix, err := OpenExisting(data, folder)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	e, bad, err := ix.Load(context.Background())
	if err != nil || bad != 0 || len(e.Paths) != 30 {
		t.Fatalf("load: %d paths, %d bad, %v", len(e.Paths), bad, err)
	}
	query := vectors(12345)[:fe]
	hits := e.Rank(query, 0, nil)
	if len(hits) != 30 {
		t.Fatalf("%d hits", len(hits))
	}
	for i, h := range hits {
		img, err := imageprep.Load(context.Background(), h.Path)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := enc.Embed(context.Background(), img)
		best := float32(math.Inf(-1))
		for q := 0; q < fq; q++ {
			var d float32
			for j := 0; j < fe; j++ {
				d += v[q*fe+j] * query[j]
			}
			best = max(best, d)
		}
		if best != h.ITC {
			t.Errorf("%s: %g, recomputed %g", h.Path, h.ITC, best)
		}
		if i > 0 && hits[i-1].ITC < h.ITC {
			t.Errorf("not sorted at %d", i)
		}
	}
	if top := e.Rank(query, 5, nil); len(top) != 5 || top[0] != hits[0] {
		t.Errorf("k=5: %v", top)
	}
}

// TestNotIndexed: searching a folder never indexed says how to index it.
func TestNotIndexed(t *testing.T) {
	_, err := OpenExisting(t.TempDir(), "/photos/x")
	if !errors.Is(err, ErrNotIndexed) || !strings.Contains(err.Error(), "blip2chat index /photos/x") {
		t.Errorf("error %v", err)
	}
}

// TestInterrupt: a cancelled update keeps the batches done; the next one
// finishes the rest.
func TestInterrupt(t *testing.T) {
	data, folder := t.TempDir(), photoFolder(t, 12)
	enc := &fakeEncoder{digest: "aaa"}
	ctx, cancel := context.WithCancel(context.Background())
	ix, _ := Create(data, folder)
	n := 0
	var prog bytes.Buffer
	st, err := ix.Update(ctx, &cancelAfter{fakeEncoder: enc, n: &n, after: 5, cancel: cancel}, UpdateOptions{BatchSize: 2, Progress: &prog})
	ix.Close()
	if err != nil || !st.Interrupted || st.Embedded != 5 {
		t.Fatalf("interrupted: %+v %v", st, err)
	}
	st = update(t, data, folder, enc, UpdateOptions{})
	if st.Embedded != 7 || st.Unchanged != 5 {
		t.Errorf("rerun: %+v", st)
	}
}

type cancelAfter struct {
	*fakeEncoder
	n      *int
	after  int
	cancel func()
}

func (c *cancelAfter) Embed(ctx context.Context, img image.Image) ([]float32, error) {
	*c.n++
	if *c.n > c.after {
		c.cancel()
		return nil, ctx.Err()
	}
	return c.fakeEncoder.Embed(ctx, img)
}

// TestKill: an update killed with SIGKILL midway (the test binary run
// again as the indexing child) leaves an index that opens and searches,
// holding the committed batches; the next update finishes it.
func TestKill(t *testing.T) {
	if os.Getenv("INDEX_KILL_CHILD") != "" {
		enc := &fakeEncoder{digest: "aaa", delay: 40 * time.Millisecond}
		ix, err := Create(os.Getenv("INDEX_KILL_DATA"), os.Getenv("INDEX_KILL_FOLDER"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		ix.Update(context.Background(), enc, UpdateOptions{BatchSize: 2})
		os.Exit(0)
	}
	data, folder := t.TempDir(), photoFolder(t, 60)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill$")
	cmd.Env = append(os.Environ(), "INDEX_KILL_CHILD=1", "INDEX_KILL_DATA="+data, "INDEX_KILL_FOLDER="+folder)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a few batches are committed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n := countIndexed(data, folder); n >= 8 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child indexed nothing in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	n := countIndexed(data, folder)
	if n < 8 || n >= 60 {
		t.Fatalf("%d images indexed after the kill", n)
	}
	ix, err := OpenExisting(data, folder)
	if err != nil {
		t.Fatal(err)
	}
	e, bad, err := ix.Load(context.Background())
	ix.Close()
	if err != nil || bad != 0 || len(e.Paths) != n || len(e.Rank(vectors(1)[:fe], 3, nil)) != 3 {
		t.Fatalf("after the kill: %v, %d bad, %d paths", err, bad, len(e.Paths))
	}
	st := update(t, data, folder, &fakeEncoder{digest: "aaa"}, UpdateOptions{})
	if st.Embedded+st.Unreadable != 62-n-st.StillUnreadable || st.Unchanged != n {
		t.Errorf("rerun after %d: %+v", n, st)
	}
	t.Logf("killed after %d of 60 images; the rerun embedded %d", n, st.Embedded)
}

func countIndexed(data, folder string) int {
	p, _ := PathFor(data, folder)
	if _, err := os.Stat(p); err != nil {
		return 0
	}
	ix, err := open(p, true)
	if err != nil {
		return 0
	}
	defer ix.Close()
	n, _ := ix.Count()
	return n
}

// FuzzDecodeEmbeds: any blob is read or refused, never a panic; what is
// read encodes back to the blob.
func FuzzDecodeEmbeds(f *testing.F) {
	f.Add(encodeEmbeds([]float32{1, -0.5, 0, 3}), 4)
	f.Add([]byte{0, 0, 0x80, 0x7f}, 1)
	f.Add([]byte{1, 2, 3}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<12 {
			return
		}
		v := make([]float32, n)
		if decodeEmbeds(v, b) == nil && !bytes.Equal(encodeEmbeds(v), b) {
			t.Errorf("round trip of %x", b)
		}
	})
}

// TestPathFor: one database per folder, named after it.
func TestPathFor(t *testing.T) {
	a, _ := PathFor("/data", "/photos/2024 trip")
	b, _ := PathFor("/data", "/other/2024 trip")
	if a == b || !strings.HasPrefix(filepath.Base(a), "2024_trip-") || filepath.Dir(a) != "/data/index" {
		t.Errorf("%s %s", a, b)
	}
}

// TestRankLarge: an index large enough for the int8 first pass ranks its k
// best exactly as scoring every image in float32 does, with the kernels'
// scorer and the portable one.
func TestRankLarge(t *testing.T) {
	const n, q, e = 700, 32, 64 // 22,400 vectors
	emb := &Embeddings{Folder: "/p", Q: q, E: e, Data: make([]float32, n*q*e), Paths: make([]string, n)}
	seed := uint64(7)
	for i := range emb.Paths {
		emb.Paths[i] = fmt.Sprintf("%04d.jpg", i)
	}
	for r := 0; r < n*q; r++ {
		var s float64
		v := emb.Data[r*e : (r+1)*e]
		for j := range v {
			seed = seed*6364136223846793005 + 1442695040888963407
			v[j] = float32(int64(seed>>11))/float32(1<<52) - 1
			s += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(s))
		}
	}
	// Near-ties: image 5 is image 3 with one vector nudged.
	copy(emb.Data[5*q*e:6*q*e], emb.Data[3*q*e:4*q*e])
	emb.Data[5*q*e] += 1e-5
	text := append([]float32(nil), emb.Data[3*q*e+e:3*q*e+2*e]...)
	pool := kernels.NewPool(2)
	defer pool.Close()
	kern := func(scores, text []float32, w *kernels.Matrix) { pool.MatMulT(scores, text, 1, w, nil) }
	for _, score := range []Scorer{nil, kern} {
		all := emb.Rank(text, 0, score)
		for _, k := range []int{1, 3, 10, 50} {
			got := emb.Rank(text, k, score)
			if len(got) != k {
				t.Fatalf("k=%d: %d hits", k, len(got))
			}
			for i := range got {
				if got[i].Path != all[i].Path || math.Abs(float64(got[i].ITC-all[i].ITC)) > 1e-6 {
					t.Errorf("k=%d #%d: %v, ranking all gives %v", k, i, got[i], all[i])
				}
			}
		}
	}
}

// BenchmarkLoad10k: reading 10,000 images' embeddings (32 x 256, the
// real model's) from the database, what `search` does before ranking.
func BenchmarkLoad10k(b *testing.B) {
	const n, q, e = 10000, 32, 256
	data, folder := b.TempDir(), b.TempDir()
	ix, err := Create(data, folder)
	if err != nil {
		b.Fatal(err)
	}
	tx, _ := ix.db.Begin()
	m := Meta{Folder: folder, Model: Model{Dir: "/m", Digest: "d", Queries: q, EmbedSize: e}}
	writeMeta(tx, m)
	blob := encodeEmbeds(make([]float32, q*e))
	for i := 0; i < n; i++ {
		if _, err := tx.Exec(`INSERT INTO images(path, size, mtime, embeds) VALUES(?, 1, 1, ?)`, fmt.Sprintf("%05d.jpg", i), blob); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	ix.Close()
	for b.Loop() {
		ix, err := OpenExisting(data, folder)
		if err != nil {
			b.Fatal(err)
		}
		emb, _, err := ix.Load(context.Background())
		if err != nil || len(emb.Paths) != n {
			b.Fatal(len(emb.Paths), err)
		}
		ix.Close()
	}
}
