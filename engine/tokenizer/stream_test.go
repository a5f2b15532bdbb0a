package tokenizer

import (
	"math/rand"
	"testing"
	"unicode/utf8"
)

func TestStreamDecoder(t *testing.T) {
	dog := []byte("🐶") // F0 9F 90 B6
	tests := []struct {
		name   string
		pieces [][]byte
		want   []string // per Write
		flush  string
	}{
		{"ascii", [][]byte{[]byte("Hi"), []byte(" there")}, []string{"Hi", " there"}, ""},
		{"emoji over three pieces", [][]byte{dog[:2], dog[2:3], dog[3:]}, []string{"", "", "🐶"}, ""},
		{"complete char then partial", [][]byte{append([]byte("a"), dog[:1]...), dog[1:]}, []string{"a", "🐶"}, ""},
		{"empty piece", [][]byte{nil, []byte("x")}, []string{"", "x"}, ""},
		{"invalid byte at once", [][]byte{{0xFF, 'a'}}, []string{"\uFFFDa"}, ""},
		{"broken sequence", [][]byte{{0xE2, 0x82}, {'A'}}, []string{"", "\uFFFDA"}, ""},
		{"incomplete at end flushed", [][]byte{[]byte("ok"), {0xE2, 0x82}}, []string{"ok", ""}, "\uFFFD"},
		{"surrogate bytes", [][]byte{{0xED, 0xA0, 0x80}}, []string{"\uFFFD\uFFFD\uFFFD"}, ""},
		// The Unicode Standard's example of maximal subparts (section 3.9):
		// 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a,FFFD,FFFD,FFFD,b,FFFD,c,FFFD,FFFD,d.
		{"unicode example", [][]byte{{0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64}},
			[]string{"a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"}, ""},
	}
	for _, tt := range tests {
		var d StreamDecoder
		for i, p := range tt.pieces {
			if got := d.Write(p); got != tt.want[i] {
				t.Errorf("%s: Write %d = %q, want %q", tt.name, i, got, tt.want[i])
			}
		}
		if got := d.Flush(); got != tt.flush {
			t.Errorf("%s: Flush = %q, want %q", tt.name, got, tt.flush)
		}
		if got := d.Flush(); got != "" {
			t.Errorf("%s: second Flush = %q", tt.name, got)
		}
	}
}

// TestStreamMatchesWhole: however the bytes are cut, the stream yields the
// lossy decoding of all of them, in valid UTF-8 pieces, and for valid UTF-8
// input exactly the input.
func TestStreamMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 5000; i++ {
		var data []byte
		if i%2 == 0 {
			data = []byte(randomText(rng))
		} else {
			data = make([]byte, rng.Intn(24))
			for j := range data {
				data[j] = byte(rng.Intn(256))
			}
		}
		checkStream(t, data, rng)
	}
}

func checkStream(t *testing.T, data []byte, rng *rand.Rand) {
	t.Helper()
	var d StreamDecoder
	var got string
	for rest := data; len(rest) > 0; {
		n := 1 + rng.Intn(len(rest))
		s := d.Write(rest[:n])
		if !utf8.ValidString(s) {
			t.Fatalf("Write gave invalid UTF-8 %q", s)
		}
		got += s
		rest = rest[n:]
	}
	got += d.Flush()
	if want := lossyUTF8(data); got != want {
		t.Fatalf("stream of % x = %q, want %q", data, got, want)
	}
	if utf8.Valid(data) && got != string(data) {
		t.Fatalf("valid input % x changed to %q", data, got)
	}
	if !utf8.ValidString(got) {
		t.Fatalf("output %q is not valid UTF-8", got)
	}
}
