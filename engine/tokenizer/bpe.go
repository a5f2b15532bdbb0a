package tokenizer

import (
	"container/heap"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/weights/hftok"
)

// BPE is a byte-level byte-pair-encoding tokenizer as used by GPT-2 and OPT,
// matching Hugging Face tokenizers' ByteLevelBPETokenizer (GPT-2 split regex,
// no prefix space, no normalizer). It is safe for concurrent use.
type BPE struct {
	vocab  map[string]int // the model's vocabulary, used for encoding
	added  map[string]int // tokenizer.json added_tokens, looked up first by ID
	pieces []string       // id -> token; "" where an id is unused
	bytes  [][]byte       // id -> the bytes the token decodes to
	merges map[uint64]merge
	// mergeList keeps the merges in rank order for Merges.
	mergeList []string

	unk            int // -1: unknown symbols are dropped, as tokenizers does without unk_token
	fuseUnk        bool
	byteFallback   bool
	ignoreMerges   bool
	prefix, suffix string // continuing_subword_prefix, end_of_word_suffix
	addPrefixSpace bool
	useRegex       bool

	mu    sync.RWMutex
	cache map[string][]int
}

// merge is the rank and result of merging one pair of token ids.
type merge struct {
	rank  int
	newID int
}

// Cache limits, as in tokenizers: only words shorter than cacheMaxWord bytes
// are cached, and the cache stops growing at cacheCap entries.
const (
	cacheCap     = 10000
	cacheMaxWord = 256
)

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// NewBPE builds a byte-level BPE tokenizer from its tokens (tokens[i] has id
// i, as stored in a GGUF file) and its merges ("a b" strings in rank order),
// with GPT-2's settings.
func NewBPE(tokens []string, merges []string) (*BPE, error) {
	vocab := make(map[string]int, len(tokens))
	for i, t := range tokens {
		vocab[t] = i
	}
	pairs, err := hftok.ParseMergeLines(merges)
	if err != nil {
		return nil, err
	}
	return NewBPEFrom(&hftok.BPE{Vocab: vocab, Merges: pairs, UseRegex: true})
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// maxSparseIDs bounds how far ids may run past the number of tokens, so a
// corrupt file cannot make us allocate a huge id table.
const maxSparseIDs = 1 << 16

// NewBPEFrom builds the tokenizer a Hugging Face BPE tokenizer's files
// describe (read by weights/hftok), with all of their options.
func NewBPEFrom(f *hftok.BPE) (*BPE, error) {
	vocab, merges := f.Vocab, f.Merges
	maxID := -1
	for _, id := range vocab {
		maxID = max(maxID, id)
	}
	for _, a := range f.Added {
		if a.ID < 0 {
			return nil, fmt.Errorf("added token %q has a negative id", truncate(a.Content))
		}
		maxID = max(maxID, a.ID)
	}
	if n := len(vocab) + len(f.Added); maxID >= n+maxSparseIDs {
		return nil, fmt.Errorf("token id %d is far beyond the %d tokens of the vocabulary", maxID, n)
	}
	t := &BPE{
		vocab:          vocab,
		pieces:         make([]string, maxID+1),
		bytes:          make([][]byte, maxID+1),
		merges:         make(map[uint64]merge, len(merges)),
		mergeList:      make([]string, 0, len(merges)),
		unk:            -1,
		fuseUnk:        f.FuseUnk,
		byteFallback:   f.ByteFallback,
		ignoreMerges:   f.IgnoreMerges,
		prefix:         f.ContinuingSubwordPrefix,
		suffix:         f.EndOfWordSuffix,
		addPrefixSpace: f.AddPrefixSpace,
		useRegex:       f.UseRegex,
		cache:          map[string][]int{},
	}
	for tok, id := range vocab {
		// Two tokens sharing an id: keep the smaller string so the choice is
		// deterministic.
		if t.pieces[id] == "" || tok < t.pieces[id] {
			t.pieces[id] = tok
		}
	}
	if len(f.Added) > 0 {
		// Added tokens win over the model's entry for the same id, as in
		// tokenizers' id_to_token.
		t.added = make(map[string]int, len(f.Added))
		for _, a := range f.Added {
			t.pieces[a.ID] = a.Content
			t.added[a.Content] = a.ID
		}
	}
	for id, tok := range t.pieces {
		t.bytes[id] = byteLevelDecode(tok)
	}
	if id, ok := vocab[f.UnkToken]; ok && f.UnkToken != "" {
		// An unk_token missing from the vocabulary only matters for
		// characters without a token, which a byte-level vocabulary does not
		// have; tokenizers would fail on them, we drop them.
		t.unk = id
	}
	for rank, m := range merges {
		a, ok := vocab[m[0]]
		if !ok {
			return nil, fmt.Errorf("merge %d: token %q is not in the vocabulary", rank+1, truncate(m[0]))
		}
		b, ok := vocab[m[1]]
		if !ok {
			return nil, fmt.Errorf("merge %d: token %q is not in the vocabulary", rank+1, truncate(m[1]))
		}
		right := m[1]
		if p := f.ContinuingSubwordPrefix; p != "" {
			if !strings.HasPrefix(right, p) {
				return nil, fmt.Errorf("merge %d: token %q lacks the continuing-subword prefix %q", rank+1, truncate(right), p)
			}
			right = right[len(p):]
		}
		id, ok := vocab[m[0]+right]
		if !ok {
			return nil, fmt.Errorf("merge %d: result %q is not in the vocabulary", rank+1, truncate(m[0]+right))
		}
		// A repeated pair keeps its last rank, as tokenizers' map insert does.
		t.merges[pairKey(a, b)] = merge{rank: rank, newID: id}
		t.mergeList = append(t.mergeList, m[0]+" "+m[1])
	}
	return t, nil
}

// VocabSize is the number of token ids: the largest id plus one.
func (t *BPE) VocabSize() int { return len(t.pieces) }

// Piece returns the vocabulary string of a token (e.g. "Ġthe"), or "" for an
// id outside the vocabulary.
func (t *BPE) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// ID returns the id of a vocabulary string such as "</s>".
func (t *BPE) ID(piece string) (int, bool) {
	if id, ok := t.added[piece]; ok {
		return id, true
	}
	id, ok := t.vocab[piece]
	return id, ok
}

// TokenBytes returns the raw bytes a token stands for; a token may end in
// the middle of a UTF-8 character (see StreamDecoder). The slice is shared:
// do not modify it.
func (t *BPE) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.bytes) {
		return nil
	}
	return t.bytes[id]
}

// Merges returns the merge rules in rank order, as "a b" strings.
func (t *BPE) Merges() []string { return append([]string(nil), t.mergeList...) }

// Decode joins the tokens' bytes and returns them as text; byte sequences
// that are not valid UTF-8 become U+FFFD, as tokenizers' decoder does.
// Special tokens decode to their text ("</s>"); callers that do not want
// them leave them out. Ids outside the vocabulary are skipped.
func (t *BPE) Decode(ids []int) string {
	var buf []byte
	for _, id := range ids {
		buf = append(buf, t.TokenBytes(id)...)
	}
	return lossyUTF8(buf)
}

// Encode returns the token ids of text. It is raw encoding: no BOS is added
// and special-token strings such as "</s>" in the text are encoded as plain
// text (OPT's BOS is added by the caller).
func (t *BPE) Encode(text string) []int {
	if t.addPrefixSpace && text != "" && text[0] != ' ' {
		text = " " + text
	}
	var ids []int
	if !t.useRegex {
		return t.encodeWord(text, ids)
	}
	splitGPT2(text, func(piece string) {
		ids = t.encodeWord(piece, ids)
	})
	return ids
}

// encodeWord appends the ids of one pre-tokenized piece.
func (t *BPE) encodeWord(piece string, ids []int) []int {
	if piece == "" {
		return ids
	}
	// Map the bytes to the GPT-2 alphabet in a stack buffer; map lookups
	// with string(buf) do not allocate, so a cache hit costs no garbage.
	var arr [128]byte
	buf := arr[:0]
	for i := 0; i < len(piece); i++ {
		buf = append(buf, byteStr[piece[i]]...)
	}
	if t.ignoreMerges {
		if id, ok := t.vocab[string(buf)]; ok {
			return append(ids, id)
		}
	}
	cacheable := len(buf) < cacheMaxWord
	if cacheable {
		t.mu.RLock()
		hit, ok := t.cache[string(buf)]
		t.mu.RUnlock()
		if ok {
			return append(ids, hit...)
		}
	}
	word := string(buf)
	out := t.mergeWord(word)
	if cacheable {
		t.mu.Lock()
		if len(t.cache) < cacheCap {
			t.cache[word] = out
		}
		t.mu.Unlock()
	}
	return append(ids, out...)
}

// symbol is one node of the doubly linked list of a word being merged.
type symbol struct {
	id         int
	prev, next int // indices into the symbol slice, -1 at the ends
	gone       bool
}

// mergeWord is tokenizers' Word::merge_all: build one symbol per character,
// then repeatedly apply the lowest-ranked merge (leftmost first on ties),
// with a priority queue and stale-entry checks.
func (t *BPE) mergeWord(w string) []int {
	syms := make([]symbol, 0, len(w))
	add := func(id int) {
		n := len(syms)
		if n > 0 {
			syms[n-1].next = n
		}
		syms = append(syms, symbol{id: id, prev: n - 1, next: -1})
	}
	pendingUnk := false
	flushUnk := func() {
		if pendingUnk {
			add(t.unk)
			pendingUnk = false
		}
	}
	for i := 0; i < len(w); {
		_, size := utf8.DecodeRuneInString(w[i:])
		s := w[i : i+size]
		i0 := i
		i += size
		if i0 > 0 && t.prefix != "" {
			s = t.prefix + s
		}
		if i == len(w) && t.suffix != "" {
			s += t.suffix
		}
		if id, ok := t.vocab[s]; ok {
			flushUnk()
			add(id)
			continue
		}
		if t.byteFallback {
			fb := make([]int, 0, len(s))
			for j := 0; j < len(s); j++ {
				id, ok := t.vocab[fmt.Sprintf("<0x%02X>", s[j])]
				if !ok {
					fb = nil
					break
				}
				fb = append(fb, id)
			}
			if fb != nil {
				for _, id := range fb {
					add(id)
				}
				continue
			}
		}
		if t.unk >= 0 {
			if pendingUnk && !t.fuseUnk {
				add(t.unk)
			}
			pendingUnk = true
		}
	}
	flushUnk()

	q := mergeQueue{}
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := t.merges[pairKey(syms[i].id, syms[i+1].id)]; ok {
			q = append(q, queued{pos: i, rank: m.rank, newID: m.newID})
		}
	}
	heap.Init(&q)
	for q.Len() > 0 {
		top := heap.Pop(&q).(queued)
		cur := &syms[top.pos]
		if cur.gone || cur.next < 0 {
			continue
		}
		right := syms[cur.next]
		if m, ok := t.merges[pairKey(cur.id, right.id)]; !ok || m.newID != top.newID {
			continue // stale entry
		}
		cur.id = top.newID
		syms[cur.next].gone = true
		cur.next = right.next
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if m, ok := t.merges[pairKey(syms[cur.prev].id, cur.id)]; ok {
				heap.Push(&q, queued{pos: cur.prev, rank: m.rank, newID: m.newID})
			}
		}
		if cur.next >= 0 {
			if m, ok := t.merges[pairKey(cur.id, syms[cur.next].id)]; ok {
				heap.Push(&q, queued{pos: top.pos, rank: m.rank, newID: m.newID})
			}
		}
	}
	out := make([]int, 0, len(syms))
	for _, s := range syms {
		if !s.gone {
			out = append(out, s.id)
		}
	}
	return out
}

type queued struct{ pos, rank, newID int }

// mergeQueue is a min-heap on (rank, pos).
type mergeQueue []queued

func (q mergeQueue) Len() int { return len(q) }
func (q mergeQueue) Less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}
func (q mergeQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *mergeQueue) Push(x any)   { *q = append(*q, x.(queued)) }
func (q *mergeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
