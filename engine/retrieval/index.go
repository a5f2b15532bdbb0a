package retrieval

import (
	"context"
	"fmt"
	"image"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/imageprep"
	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/kernels"
)

// IndexModel identifies the model to an index (engine/index).
func (m *Model) IndexModel() index.Model {
	in := m.Vision.Info()
	dir := m.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return index.Model{Dir: dir, Digest: m.Vision.RetrievalDigest(), Arch: in.Architecture, WeightType: in.WeightType,
		Queries: in.NumQueryTokens, EmbedSize: in.Retrieval.EmbedSize}
}

// Encoder is the model as an index.Encoder: images decoded by
// engine/imageprep, embedded as Encode does.
func (m *Model) Encoder() index.Encoder { return encoder{m} }

type encoder struct{ m *Model }

func (e encoder) Model() index.Model { return e.m.IndexModel() }
func (e encoder) Decode(ctx context.Context, path string) (image.Image, error) {
	return imageprep.Load(ctx, path)
}
func (e encoder) Embed(ctx context.Context, img image.Image) ([]float32, error) {
	im, err := e.m.Encode(ctx, img)
	if err != nil {
		return nil, err
	}
	return im.Embeds, nil
}

// Belongs checks that the index was built by this model (the same
// checkpoint, whatever its weight type).
func (m *Model) Belongs(meta index.Meta) error {
	if meta.Model.Digest != m.Vision.RetrievalDigest() {
		return fmt.Errorf("%s was indexed with another model (%s, %s); search it with that model", meta.Folder, meta.Model.Dir, meta.Model.Arch)
	}
	return nil
}

// Search ranks the indexed images by their similarity with query, the k
// best (k <= 0: all), on the model's threads.
func (m *Model) Search(ctx context.Context, e *index.Embeddings, query string, k int) ([]index.Hit, error) {
	text, err := m.TextEmbedding(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(text) != e.E {
		return nil, fmt.Errorf("the index holds %d-wide embeddings, the model makes %d", e.E, len(text))
	}
	return e.Rank(text, k, m.score), nil
}

// Scorer is the index's dot products on the model's threads.
func (m *Model) Scorer() index.Scorer { return m.score }

// score is the index's dot products as one matrix-vector product.
func (m *Model) score(scores, text []float32, w *kernels.Matrix) {
	m.pool.MatMulT(scores, text, 1, w, nil)
}
