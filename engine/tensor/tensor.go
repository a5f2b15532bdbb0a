// Package tensor holds the vision side's activation buffers (engine/vision):
// row-major float32 matrices, a few per model, allocated once and reused
// for every layer and every input, whose Data go to the kernels
// (engine/kernels), which do all the arithmetic. The OPT engine keeps
// plain []float32 buffers instead; From, Clone, Len and String serve the
// tests.
//
// A sequence of token vectors is a Mat with one row per token.
package tensor

import "fmt"

// Mat is a row-major Rows x Cols matrix of float32. Data may be longer than
// Rows*Cols (a buffer sized for the largest input, of which a call uses
// the first rows); only the first Rows*Cols values are the matrix.
type Mat struct {
	Rows, Cols int
	Data       []float32
}

// New returns a zeroed rows x cols matrix.
func New(rows, cols int) *Mat {
	return &Mat{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// From wraps data (len rows*cols or more) without copying.
func From(rows, cols int, data []float32) *Mat {
	if rows < 0 || cols < 0 || len(data) < rows*cols {
		panic(fmt.Sprintf("tensor: %d values cannot hold %dx%d", len(data), rows, cols))
	}
	return &Mat{Rows: rows, Cols: cols, Data: data}
}

// Len is the number of values of the matrix, Rows*Cols.
func (m *Mat) Len() int { return m.Rows * m.Cols }

// F32 returns the matrix's values, exactly Rows*Cols long.
func (m *Mat) F32() []float32 { return m.Data[:m.Rows*m.Cols] }

// Row returns row i, aliasing the matrix.
func (m *Mat) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// RowRange returns the values of rows [from, to), aliasing the matrix.
func (m *Mat) RowRange(from, to int) []float32 { return m.Data[from*m.Cols : to*m.Cols] }

// Clone returns a copy of the matrix that owns exactly Rows*Cols values.
func (m *Mat) Clone() *Mat {
	c := New(m.Rows, m.Cols)
	copy(c.Data, m.F32())
	return c
}

// String describes the shape, for errors and logs.
func (m *Mat) String() string { return fmt.Sprintf("[%d x %d]", m.Rows, m.Cols) }
