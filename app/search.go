package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/engine/index"
	"github.com/blip2chat/blip2chat/engine/retrieval"
	"github.com/blip2chat/blip2chat/engine/vision"
)

// searchHits is how many images /search lists.
const searchHits = 10

// searchState is /search's: the retrieval models it opened (an index's
// own, when the loaded model is not it), the indexes it loaded (kept until
// they change) and the last hits, which /image N opens.
type searchState struct {
	mu     sync.Mutex
	models map[string]*retrieval.Model // by model folder
	loaded map[string]loadedIndex      // by database file
	hits   []string
}

type loadedIndex struct {
	emb     *index.Embeddings
	updated time.Time
	size    int64
}

// close frees the models /search opened.
func (s *searchState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.models {
		m.Close()
	}
	s.models, s.loaded = nil, nil
}

// hitPath is the path of hit N of the last search when arg is N (and no
// file is called so).
func (a *App) hitPath(arg string) (string, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil {
		return "", false
	}
	if _, err := os.Stat(arg); err == nil {
		return "", false
	}
	a.search.mu.Lock()
	defer a.search.mu.Unlock()
	if n < 1 || n > len(a.search.hits) {
		return "", false
	}
	return a.search.hits[n-1], true
}

// searchImages is /search QUERY: the images of every indexed folder
// ranked by their similarity with the query, each index ranked by the
// model that built it.
func (a *App) searchImages(query string) {
	query = strings.TrimSpace(query)
	if query == "" {
		a.errorf("usage: /search QUERY (finds images in the folders indexed with 'blip2chat index DIR')")
		return
	}
	data, err := DataDir()
	if err != nil {
		a.errorf("%v", err)
		return
	}
	a.run(Working, "searching", func(ctx context.Context) {
		list, err := index.List(data)
		if err != nil {
			a.errorf("indexes: %v", err)
			return
		}
		if len(list) == 0 {
			a.errorf("no folder is searchable yet: run 'blip2chat index -m RETRIEVAL_MODEL DIR' in a shell first")
			return
		}
		var hits []index.Hit
		images, folders := 0, []string{}
		for _, l := range list {
			h, n, err := a.searchIndex(ctx, l, query)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				a.errorf("%s: %v", l.Meta.Folder, err)
				continue
			}
			hits = append(hits, h...)
			images += n
			folders = append(folders, l.Meta.Folder)
		}
		if len(folders) == 0 {
			return
		}
		// Cosines of one model compare across its indexes.
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].ITC > hits[j].ITC })
		hits = hits[:min(len(hits), searchHits)]
		paths := make([]string, len(hits))
		bars := make([]Bar, len(hits))
		top := float64(1)
		if len(hits) > 0 && hits[0].ITC > 0 {
			top = float64(hits[0].ITC)
		}
		for i, h := range hits {
			paths[i] = h.Path
			bars[i] = Bar{Label: fmt.Sprintf("%d. %s", i+1, h.Path), Fraction: max(0, float64(h.ITC)/top), Value: fmt.Sprintf("%.3f", h.ITC)}
		}
		a.search.mu.Lock()
		a.search.hits = paths
		a.search.mu.Unlock()
		text := fmt.Sprintf("Search %q: the %d best of %d images in %s (ITC similarity); /image N opens one:", query, len(hits), images, strings.Join(folders, ", "))
		if len(hits) == 0 {
			text = fmt.Sprintf("Search %q: the indexes hold no image yet.", query)
		}
		a.add(Entry{Kind: EntryNote, Text: text, Bars: bars})
	})
}

// searchIndex ranks one index's images: the k best, and how many it
// holds.
func (a *App) searchIndex(ctx context.Context, l index.Listed, query string) ([]index.Hit, int, error) {
	m, err := a.searchModel(l.Meta)
	if err != nil {
		return nil, 0, err
	}
	emb, err := a.loadIndex(ctx, l)
	if err != nil {
		return nil, 0, err
	}
	hits, err := m.Search(ctx, emb, query, searchHits)
	return hits, len(emb.Paths), err
}

// searchModel is the model that ranks an index: the loaded one when it
// built the index, else the index's own, opened once.
func (a *App) searchModel(meta index.Meta) (*retrieval.Model, error) {
	a.mu.Lock()
	eng := a.eng
	a.mu.Unlock()
	if r, ok := eng.(interface{ retrievalModel() *retrieval.Model }); ok {
		if m := r.retrievalModel(); m.Belongs(meta) == nil {
			return m, nil
		}
	}
	s := &a.search
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.models[meta.Model.Dir]; ok {
		return m, nil
	}
	m, err := retrieval.Open(meta.Model.Dir, vision.Options{})
	if err != nil {
		return nil, fmt.Errorf("the model that indexed it: %v", err)
	}
	if err := m.Belongs(meta); err != nil {
		m.Close()
		return nil, err
	}
	if s.models == nil {
		s.models = map[string]*retrieval.Model{}
	}
	s.models[meta.Model.Dir] = m
	return m, nil
}

// loadIndex reads an index's embeddings, or reuses them while the
// database has not changed.
func (a *App) loadIndex(ctx context.Context, l index.Listed) (*index.Embeddings, error) {
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(l.Path + suffix); err == nil {
			size += st.Size()
		}
	}
	s := &a.search
	s.mu.Lock()
	c, ok := s.loaded[l.Path]
	s.mu.Unlock()
	if ok && c.updated.Equal(l.Meta.Updated) && c.size == size && len(c.emb.Paths) == l.Images {
		return c.emb, nil
	}
	ix, err := index.OpenFile(l.Path, l.Meta.Folder)
	if err != nil {
		return nil, err
	}
	defer ix.Close()
	a.progress("loading the index of " + filepath.Base(l.Meta.Folder))
	emb, _, err := ix.Load(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.loaded == nil {
		s.loaded = map[string]loadedIndex{}
	}
	s.loaded[l.Path] = loadedIndex{emb: emb, updated: l.Meta.Updated, size: size}
	s.mu.Unlock()
	return emb, nil
}
