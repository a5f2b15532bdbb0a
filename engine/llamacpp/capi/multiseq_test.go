package capi

import (
	"strings"
	"testing"
)

// TestMultiSeqBatch checks the batch forms beam search uses: one row for
// each of several sequences at the same position, and what the KV cache
// holds after seq_cp and seq_keep.
func TestMultiSeqBatch(t *testing.T) {
	_, tl, m := loadTiny(t)
	p := m.lib.DefaultContextParams()
	p.NCtx, p.NBatch, p.NUbatch, p.NSeqMax, p.KVUnified = 64, 8, 8, 3, true
	p.NThreads, p.NThreadsBatch = 1, 1
	p.FlashAttnType, p.TypeK, p.TypeV = 0, 0, 0
	c, err := m.NewContext(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.NSeqMax() != 3 {
		t.Fatalf("NSeqMax %d", c.NSeqMax())
	}
	hello := tl.id("▁hello")
	if err := c.Decode(TokenBatch([]int32{1, hello}, 0)); err != nil {
		t.Fatal(err)
	}
	single, _ := c.Logits(-1)
	single = append([]float32(nil), single...)
	if err := c.MemorySeqCp(0, 1, -1, -1); err != nil {
		t.Fatal(err)
	}
	if err := c.MemorySeqCp(0, 2, -1, -1); err != nil {
		t.Fatal(err)
	}
	for s := int32(0); s < 3; s++ {
		if got := c.MemorySeqPosMax(s); got != 1 {
			t.Errorf("sequence %d ends at %d after seq_cp, want 1", s, got)
		}
	}
	for _, tc := range []struct {
		name string
		b    Batch
		want string
	}{
		{"sets and rows", Batch{Tokens: []int32{1, 1}, RowSeqs: [][]int32{{0}}, RowPos: []int32{2, 2}}, "2 rows but 1 sequence sets"},
		{"no sequence", Batch{Tokens: []int32{1}, RowSeqs: [][]int32{{}}, RowPos: []int32{2}}, "belongs to no sequence"},
		{"bad sequence", Batch{Tokens: []int32{1}, RowSeqs: [][]int32{{3}}, RowPos: []int32{2}}, "sequence 3 is outside 0..2"},
		{"gap", Batch{Tokens: []int32{1, 1}, RowSeqs: [][]int32{{0}, {1}}, RowPos: []int32{2, 3}}, "sequence 1 is at position 3 but the sequence continues at 2"},
	} {
		if err := c.Decode(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode = %v, want %q", tc.name, err, tc.want)
		}
	}
	// The same token in three sequences gives the same logits three times.
	b := Batch{Tokens: []int32{hello, hello, hello}, RowSeqs: [][]int32{{0}, {1}, {2}}, RowPos: []int32{2, 2, 2},
		Logits: []bool{true, true, true}}
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	l0, _ := c.Logits(0)
	l0 = append([]float32(nil), l0...)
	for i := 1; i < 3; i++ {
		li, _ := c.Logits(i)
		if d := maxDiff(l0, li); d > 1e-5 {
			t.Errorf("row %d differs from row 0 by %g", i, d)
		}
	}
	if maxDiff(l0, single) == 0 {
		t.Error("the step's logits equal the prompt's: nothing was decoded")
	}
	if err := c.MemorySeqKeep(1); err != nil {
		t.Fatal(err)
	}
	if c.MemorySeqPosMax(0) != -1 || c.MemorySeqPosMax(2) != -1 || c.MemorySeqPosMax(1) != 2 {
		t.Errorf("after seq_keep(1): ends %d %d %d, want -1 2 -1", c.MemorySeqPosMax(0), c.MemorySeqPosMax(1), c.MemorySeqPosMax(2))
	}
	if err := c.MemorySeqCp(0, 5, -1, -1); err == nil {
		t.Error("seq_cp to sequence 5 of 3 succeeded")
	}
	if err := c.MemorySeqKeep(-1); err == nil {
		t.Error("seq_keep(-1) succeeded")
	}
}
