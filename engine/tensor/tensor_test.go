package tensor

import "testing"

func TestMat(t *testing.T) {
	m := New(3, 2)
	for i := range m.Data {
		m.Data[i] = float32(i)
	}
	for _, c := range []struct {
		name string
		got  []float32
		want []float32
	}{
		{"Row(1)", m.Row(1), []float32{2, 3}},
		{"RowRange(1,3)", m.RowRange(1, 3), []float32{2, 3, 4, 5}},
		{"F32", m.F32(), []float32{0, 1, 2, 3, 4, 5}},
		{"Clone", m.Clone().Data, []float32{0, 1, 2, 3, 4, 5}},
	} {
		if len(c.got) != len(c.want) {
			t.Fatalf("%s = %v, want %v", c.name, c.got, c.want)
		}
		for i := range c.want {
			if c.got[i] != c.want[i] {
				t.Fatalf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
	}
	m.Row(2)[0] = 40 // rows alias the matrix
	if m.Data[4] != 40 {
		t.Error("Row does not alias")
	}
	if c := m.Clone(); &c.Data[0] == &m.Data[0] {
		t.Error("Clone aliases")
	}
	big := From(2, 2, make([]float32, 10))
	if big.Len() != 4 || len(big.F32()) != 4 || big.String() != "[2 x 2]" {
		t.Errorf("From: len %d, F32 %d, %s", big.Len(), len(big.F32()), big)
	}
	defer func() {
		if recover() == nil {
			t.Error("From with too little data did not panic")
		}
	}()
	From(3, 3, make([]float32, 8))
}
