package app

import (
	"context"
	"fmt"
	"strconv"
)

// HeatMap is a grid of values in [0, 1] (the largest is 1) laid over the
// image, row-major from the top left: where the model looked.
type HeatMap struct {
	Grid  int
	Cells []float64
	Label string // what it shows, e.g. "all 32 queries"
}

// attention toggles the overlay of the Q-Former's cross-attention: with
// no argument the average over every query (or, when one shows, none);
// with N, query N (from 1).
func (a *App) attention(arg string) {
	query := 0
	if arg != "" {
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			a.errorf("usage: /attention [N]: N is a query, from 1")
			return
		}
		query = n
	}
	a.mu.Lock()
	showing := a.st.Overlay != nil
	if arg == "" && showing {
		a.st.Overlay = nil
		a.mu.Unlock()
		a.notify()
		a.note("Attention overlay off.")
		return
	}
	eng, _ := a.eng.(AttentionEngine)
	a.mu.Unlock()
	if !a.ready(true) {
		return
	}
	if eng == nil {
		a.errorf("this model does not show its attention")
		return
	}
	a.run(Working, "reading the attention", func(ctx context.Context) {
		att, err := eng.Attention(ctx)
		if err != nil {
			a.errorf("attention: %v", err)
			return
		}
		hm, err := heatMap(att, query)
		if err != nil {
			a.errorf("%v", err)
			return
		}
		a.mu.Lock()
		a.st.Overlay = hm
		a.mu.Unlock()
		a.notify()
		a.note(fmt.Sprintf("Attention overlay: %s, averaged over heads and layers; brighter is where the queries looked (/attention again hides it).", hm.Label))
	})
}

// heatMap averages att over its queries (query 0) or takes query (from
// 1), scaled so that the largest cell is 1.
func heatMap(att Attention, query int) (*HeatMap, error) {
	nq := len(att.Queries)
	if nq == 0 || att.Grid <= 0 {
		return nil, fmt.Errorf("attention: no queries")
	}
	if query > nq {
		return nil, fmt.Errorf("attention: query %d of %d; the model has %d queries", query, nq, nq)
	}
	cells := make([]float64, att.Grid*att.Grid)
	label := fmt.Sprintf("all %d queries", nq)
	if query > 0 {
		copy(cells, att.Queries[query-1])
		label = fmt.Sprintf("query %d of %d", query, nq)
	} else {
		for _, q := range att.Queries {
			for i, v := range q {
				cells[i] += v / float64(nq)
			}
		}
	}
	peak := 0.0
	for _, v := range cells {
		peak = max(peak, v)
	}
	if peak > 0 {
		for i := range cells {
			cells[i] /= peak
		}
	}
	return &HeatMap{Grid: att.Grid, Cells: cells, Label: label}, nil
}
