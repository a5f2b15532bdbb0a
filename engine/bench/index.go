package bench

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/retrieval"
)

// Stages of the index benchmark.
const (
	StageIndexImage = "index/image" // one image through an index update: decode, prepare, ViT, Q-Former, projection, commit
	StageQueryText  = "query/text"  // the query's text embedding
	StageQueryRank  = "query/rank"  // ranking the in-memory embeddings by the query
	StageQuery      = "query"       // both: what a search costs once the index is in memory
)

// IndexOptions configure Index.
type IndexOptions struct {
	Runs       int    // images timed (after one warm-up image), and query runs; <= 0 means 5
	Embeddings int    // images of synthetic embeddings the queries rank; <= 0 means 10,000
	Dir        string // a folder for the images and the index, removed by the caller
	Seed       uint64
}

// Index times what `blip2chat index` and `search` do with m: an index
// update over Runs+1 generated 640x480 JPEGs (each image's time is the
// time between two images committed to the pipeline, so decoding the next
// image overlaps the model), and queries over o.Embeddings images of
// random unit embeddings.
func Index(ctx context.Context, m *retrieval.Model, o IndexOptions) ([]*Stage, error) {
	runs, n := o.Runs, o.Embeddings
	if runs <= 0 {
		runs = 5
	}
	if n <= 0 {
		n = 10000
	}
	photos := filepath.Join(o.Dir, "photos")
	if err := os.MkdirAll(photos, 0o755); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 17))
	for i := 0; i <= runs; i++ {
		if err := writeJPEG(filepath.Join(photos, fmt.Sprintf("%03d.jpg", i)), r); err != nil {
			return nil, err
		}
	}
	ix, err := index.Create(filepath.Join(o.Dir, "data"), photos)
	if err != nil {
		return nil, err
	}
	defer ix.Close()
	enc := &timingEncoder{Encoder: m.Encoder()}
	st, err := ix.Update(ctx, enc, index.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	if st.Embedded != runs+1 || st.Interrupted {
		return nil, fmt.Errorf("index benchmark: %d of %d images embedded", st.Embedded, runs+1)
	}
	img := &Stage{Name: StageIndexImage, Times: enc.times[1:]}

	// Queries over n images of random unit vectors.
	info := m.Vision.Info()
	Q, E := info.NumQueryTokens, info.Retrieval.EmbedSize
	emb := &index.Embeddings{Folder: photos, Q: Q, E: E, Data: make([]float32, n*Q*E), Paths: make([]string, n)}
	for i := range emb.Paths {
		emb.Paths[i] = fmt.Sprintf("%05d.jpg", i)
	}
	for row := 0; row < n*Q; row++ {
		v := emb.Data[row*E : (row+1)*E]
		var s float64
		for j := range v {
			v[j] = float32(r.NormFloat64())
			s += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] /= float32(math.Sqrt(s))
		}
	}
	text := &Stage{Name: StageQueryText}
	rank := &Stage{Name: StageQueryRank}
	query := &Stage{Name: StageQuery}
	for run := -1; run < runs; run++ {
		start := time.Now()
		t, err := m.TextEmbedding(ctx, "a dog on a beach")
		if err != nil {
			return nil, err
		}
		mid := time.Now()
		hits := emb.Rank(t, 10, m.Scorer())
		end := time.Now()
		if len(hits) != 10 {
			return nil, fmt.Errorf("index benchmark: %d hits", len(hits))
		}
		if run >= 0 {
			text.Times = append(text.Times, mid.Sub(start))
			rank.Times = append(rank.Times, end.Sub(mid))
			query.Times = append(query.Times, end.Sub(start))
		}
	}
	return []*Stage{img, text, rank, query}, nil
}

// timingEncoder records the time between consecutive embeddings.
type timingEncoder struct {
	index.Encoder
	last  time.Time
	times []time.Duration
}

func (e *timingEncoder) Embed(ctx context.Context, img image.Image) ([]float32, error) {
	if e.last.IsZero() {
		e.last = time.Now()
	}
	v, err := e.Encoder.Embed(ctx, img)
	now := time.Now()
	e.times = append(e.times, now.Sub(e.last))
	e.last = now
	return v, err
}

// writeJPEG writes a 640x480 photo-sized JPEG of smooth noise.
func writeJPEG(path string, r *rand.Rand) error {
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	a, b, c := r.Float64()*0.05, r.Float64()*0.05, r.IntN(255)
	for y := 0; y < 480; y++ {
		for x := 0; x < 640; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(128 + 100*math.Sin(float64(x)*a)), uint8(128 + 100*math.Cos(float64(y)*b)), uint8(c + r.IntN(16)), 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 85}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
