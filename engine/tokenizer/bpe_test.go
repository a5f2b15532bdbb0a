package tokenizer

import (
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSplitGPT2 checks the hand-written scanner on cases worked out from the
// regex 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (alternatives tried in order at each position, each greedy).
func TestSplitGPT2(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello my friend, how is your day going?", []string{"Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?"}},
		// A run of spaces before a word leaves its last space to the word.
		{"Hello there       dear", []string{"Hello", " there", "      ", " dear"}},
		{"  two", []string{" ", " two"}},
		{"Hello there\nHello there", []string{"Hello", " there", "\n", "Hello", " there"}},
		{"a  \n b", []string{"a", "  \n", " b"}},
		// At the end of the text the whole run stays together.
		{"trailing   ", []string{"trailing", "   "}},
		{" ", []string{" "}},
		// A single non-space whitespace rune before a word is its own piece.
		{"x\ty", []string{"x", "\t", "y"}},
		{"a\u00a0b", []string{"a", "\u00a0", "b"}},
		// Contractions are lowercase only.
		{"I'm we'll they'RE you've it's don't I'd", []string{"I", "'m", " we", "'ll", " they", "'", "RE", " you", "'ve", " it", "'s", " don", "'t", " I", "'d"}},
		{"''s", []string{"''", "s"}},
		{"'s'", []string{"'s", "'"}},
		// Numbers, letters and other characters split apart; a space joins
		// the following piece whatever its class.
		{"3.14159 and 2026-11-27", []string{"3", ".", "14159", " and", " 2026", "-", "11", "-", "27"}},
		{" 123abc", []string{" 123", "abc"}},
		{"emoji 🐶🐱!! ok", []string{"emoji", " 🐶🐱!!", " ok"}},
		{"你好 世界", []string{"你好", " 世界"}},
		{"naïve Ünïcödé", []string{"naïve", " Ünïcödé"}},
		{"Ⅻ½٣x", []string{"Ⅻ½٣", "x"}},
	}
	for _, tt := range tests {
		var got []string
		splitGPT2(tt.in, func(p string) { got = append(got, p) })
		if !slices.Equal(got, tt.want) {
			t.Errorf("splitGPT2(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestByteLevelAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteRune[b]
		if seen[r] {
			t.Fatalf("rune %U used twice", r)
		}
		seen[r] = true
		if runeByte[r] != byte(b) {
			t.Fatalf("runeByte[%U] = %d, want %d", r, runeByte[r], b)
		}
	}
	// The well-known GPT-2 mapping: space is Ġ, newline Ċ, tab ĉ, printable
	// ASCII maps to itself.
	for b, want := range map[byte]rune{' ': 'Ġ', '\n': 'Ċ', '\t': 'ĉ', 'A': 'A', 0: 'Ā', 0xAD: 'Ń', 0xFF: 'ÿ'} {
		if byteRune[b] != want {
			t.Errorf("byteRune[%#x] = %q, want %q", b, byteRune[b], want)
		}
	}
}

// toyBPE builds a tokenizer from tokens and merges on plain ASCII letters,
// which the byte-level alphabet maps to themselves.
func toyBPE(t *testing.T, tokens, merges []string) *BPE {
	t.Helper()
	tok, err := NewBPE(tokens, merges)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestBPEMergeOrder checks the merge loop on small vocabularies whose
// results follow from the rules: lowest rank first, leftmost on ties, no
// overlapping merges.
func TestBPEMergeOrder(t *testing.T) {
	tests := []struct {
		name           string
		tokens, merges []string
		in             string
		want           []string
	}{
		{"rank beats position", []string{"a", "b", "c", "ab", "bc", "abc"}, []string{"b c", "a b", "a bc"}, "abc", []string{"abc"}},
		{"lower rank first blocks other", []string{"a", "b", "c", "ab", "bc"}, []string{"a b", "b c"}, "abc", []string{"ab", "c"}},
		{"leftmost on ties", []string{"a", "aa"}, []string{"a a"}, "aaa", []string{"aa", "a"}},
		{"second level", []string{"a", "aa", "aaaa"}, []string{"a a", "aa aa"}, "aaaaa", []string{"aaaa", "a"}},
		{"no merge", []string{"a", "b"}, nil, "abba", []string{"a", "b", "b", "a"}},
		// Without unk_token a character with no token is dropped (as in
		// tokenizers); its neighbours become adjacent and can merge.
		{"unknown byte dropped", []string{"a", "b"}, nil, "aXb", []string{"a", "b"}},
		{"drop joins neighbours", []string{"a", "b", "ab"}, []string{"a b"}, "aXXb", []string{"ab"}},
	}
	for _, tt := range tests {
		tok := toyBPE(t, tt.tokens, tt.merges)
		var got []string
		for _, id := range tok.Encode(tt.in) {
			got = append(got, tok.Piece(id))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Encode(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func goldenGPT2(t testing.TB) *BPE {
	t.Helper()
	dir := filepath.Join(goldenDir, "tokenizers", "gpt2")
	tok, err := loadBPE(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestBPEExtraCases checks ids that follow from the golden vocabulary and
// the algorithm without a reference run: each pre-token's encoding does not
// depend on its neighbours, so a text is the concatenation of its pieces'
// encodings, and every id decodes back to the text.
func TestBPEExtraCases(t *testing.T) {
	tok := goldenGPT2(t)
	texts := []string{
		"I'm sure they'll say it's what we've done, isn't it? I'd",
		"multiple   spaces\n\n\nand newlines \n",
		"tabs\tand\r\nCRLF",
		"emoji 👩‍👩‍👧 🚀🚀 and flags 🇯🇵",
		"日本語のテキスト 한국어",
		"Åccénts: façade, naïve, Ünïcödé",
		"   trailing spaces   ",
		"tokens:<s></s><unk>[CLS]",
		"0123456789012345678901234567890123456789",
	}
	for _, s := range texts {
		ids := tok.Encode(s)
		var parts []int
		splitGPT2(s, func(p string) { parts = append(parts, tok.Encode(p)...) })
		if !slices.Equal(ids, parts) {
			t.Errorf("Encode(%q) = %v, but its pieces give %v", s, ids, parts)
		}
		if d := tok.Decode(ids); d != s {
			t.Errorf("Decode(Encode(%q)) = %q", s, d)
		}
		// Raw mode: "</s>" in the text is never the </s> token.
		if eos, _ := tok.ID("</s>"); slices.Contains(ids, eos) {
			t.Errorf("Encode(%q) produced the </s> token", s)
		}
	}
	// A space starts a word: " the" is one token if "Ġthe" is in the
	// vocabulary, and its id is that entry's.
	if id, ok := tok.ID("Ġthe"); ok {
		if got := tok.Encode(" the"); !slices.Equal(got, []int{id}) {
			t.Errorf("Encode(\" the\") = %v, want [%d]", got, id)
		}
	} else {
		t.Error("golden vocabulary lacks Ġthe")
	}
}

// randomText draws strings from a mix of scripts, whitespace, marks, emoji
// and punctuation, the inputs where byte-level BPE could lose bytes.
func randomText(rng *rand.Rand) string {
	ranges := [][2]rune{
		{0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x17F}, {0x300, 0x36F}, {0x400, 0x4FF}, {0x600, 0x6FF},
		{0x2000, 0x206F}, {0x3000, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1FAFF},
		{0x10000, 0x10FFFF}, {0xE000, 0xF8FF}, {0x0, 0x1F},
	}
	n := rng.Intn(40)
	var b strings.Builder
	for i := 0; i < n; i++ {
		r := ranges[rng.Intn(len(ranges))]
		c := r[0] + rune(rng.Intn(int(r[1]-r[0]+1)))
		if !utf8.ValidRune(c) {
			c = ' '
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestBPERoundTrip: Decode(Encode(s)) == s for any valid UTF-8, since every
// byte has a token in a byte-level vocabulary.
func TestBPERoundTrip(t *testing.T) {
	tok := goldenGPT2(t)
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 5000; i++ {
		s := randomText(rng)
		if d := tok.Decode(tok.Encode(s)); d != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, d)
		}
	}
}

func TestBPEPieceAndIDs(t *testing.T) {
	tok := goldenGPT2(t)
	if tok.VocabSize() != 1000 {
		t.Errorf("VocabSize = %d, want 1000 (the golden vocab.json)", tok.VocabSize())
	}
	for _, s := range []string{"<s>", "<pad>", "</s>", "<unk>"} {
		id, ok := tok.ID(s)
		if !ok || tok.Piece(id) != s {
			t.Errorf("ID(%q) = %d, %v; Piece = %q", s, id, ok, tok.Piece(id))
		}
	}
	if tok.Piece(-1) != "" || tok.Piece(1<<20) != "" || tok.TokenBytes(5000) != nil {
		t.Error("out-of-range ids must give empty results")
	}
	if got := tok.Decode([]int{-5, 99999}); got != "" {
		t.Errorf("Decode(out of range) = %q", got)
	}
	sp, _ := tok.ID("Ġ")
	if got := string(tok.TokenBytes(sp)); got != " " {
		t.Errorf("TokenBytes(Ġ) = %q", got)
	}
	// Merges round-trip through NewBPE, as a GGUF file stores them.
	tokens := make([]string, tok.VocabSize())
	for i := range tokens {
		tokens[i] = tok.Piece(i)
	}
	again, err := NewBPE(tokens, tok.Merges())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range loadGoldenCases(t, "gpt2_bytelevel_bpe_raw") {
		if a, b := tok.Encode(c.Text), again.Encode(c.Text); !slices.Equal(a, b) {
			t.Errorf("rebuilt tokenizer: %v != %v", b, a)
		}
	}
}

// TestBPEErrors: what vocab.json and merges.txt say must hold together;
// the file-level rules are weights/hftok's (tested there).
func TestBPEErrors(t *testing.T) {
	tests := []struct {
		name, vocab, merges, want string
	}{
		{"vocab not json", `{"a":0`, "", "not a JSON object"},
		{"vocab array", `[1,2]`, "", "not a JSON object"},
		{"vocab null", `null`, "", "not a JSON object"},
		{"negative id", `{"a":-1}`, "", "non-negative"},
		{"float id", `{"a":1.5}`, "", "non-negative"},
		{"sparse ids", `{"a":99999999}`, "", "far beyond"},
		{"three tokens", `{"a":0,"b":1,"ab":2}`, "#version: 0.2\na b c\n", "merge 1"},
		{"one token", `{"a":0,"b":1,"ab":2}`, "a b\nab\n", "merge 2"},
		{"empty line", `{"a":0,"b":1,"ab":2}`, "a b\n\n", "merge 2"},
		{"token missing", `{"a":0,"b":1,"ab":2}`, "a c\n", `"c" is not in the vocabulary`},
		{"result missing", `{"a":0,"b":1}`, "a b\n", `result "ab"`},
		{"bad utf8", `{"a":0}`, "a \xff\n", "UTF-8"},
	}
	for _, tt := range tests {
		_, err := parseBPE(tt.vocab, tt.merges)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q should be one line", tt.name, err)
		}
	}
	if _, err := loadBPE("/nonexistent/vocab.json", "/nonexistent/merges.txt"); err == nil {
		t.Error("missing files must fail")
	}
	// Valid: non-numeric values are skipped, "#version" is not a merge, CRLF
	// line endings are accepted, and a later duplicate merge takes its rank.
	tok, err := parseBPE(`{"a":0,"b":1,"ab":2,"note":"x"}`, "#version: 0.2\r\na b\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("abab"); !slices.Equal(got, []int{2, 2}) {
		t.Errorf("Encode(abab) = %v, want [2 2]", got)
	}
	if _, ok := tok.ID("note"); ok {
		t.Error("a non-numeric vocab entry must be skipped")
	}
}

// TestBPETokenizerJSON builds tokenizer.json files from the golden
// vocabulary and checks they encode like vocab.json + merges.txt. (Which
// tokenizer.json files are refused is weights/hftok's: TestTokenizerJSONBPE.)
func TestBPETokenizerJSON(t *testing.T) {
	ref := goldenGPT2(t)
	vocab, err := os.ReadFile(filepath.Join(goldenDir, "tokenizers", "gpt2", "vocab.json"))
	if err != nil {
		t.Fatal(err)
	}
	str := `[`
	pairs := `[`
	for i, m := range ref.Merges() {
		a, b, _ := strings.Cut(m, " ")
		if i > 0 {
			str += ","
			pairs += ","
		}
		str += jsonString(m)
		pairs += "[" + jsonString(a) + "," + jsonString(b) + "]"
	}
	str += "]"
	pairs += "]"
	byteLevel := `{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}`
	added := `[{"id":0,"content":"<s>","special":true},{"id":1000,"content":"<|extra|>","special":true}]`
	mkJSON := func(pre, merges string) string {
		return `{"version":"1.0","added_tokens":` + added + `,"normalizer":null,"pre_tokenizer":` + pre +
			`,"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,"vocab":` +
			string(vocab) + `,"merges":` + merges + `}}`
	}
	for name, body := range map[string]string{
		"strings":  mkJSON(byteLevel, str),
		"pairs":    mkJSON(byteLevel, pairs),
		"sequence": mkJSON(`{"type":"Sequence","pretokenizers":[`+byteLevel+`]}`, str),
	} {
		tok, err := parseBPETokenizerJSON([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range loadGoldenCases(t, "gpt2_bytelevel_bpe_raw") {
			if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) && len(got)+len(c.IDs) > 0 {
				t.Errorf("%s: Encode(%q) = %v, want %v", name, c.Text, got, c.IDs)
			}
		}
		if id, ok := tok.ID("<|extra|>"); !ok || id != 1000 || tok.VocabSize() != 1001 || tok.Piece(1000) != "<|extra|>" {
			t.Errorf("%s: added token: id %d %v, VocabSize %d", name, id, ok, tok.VocabSize())
		}
		// Raw mode: the added token's text is encoded as plain text.
		if got := tok.Encode("<|extra|>"); slices.Contains(got, 1000) {
			t.Errorf("%s: added token matched in raw text", name)
		}
		if got := tok.Decode([]int{1000}); got != "<|extra|>" {
			t.Errorf("%s: Decode(added) = %q", name, got)
		}
	}
	// add_prefix_space (tokenizers' default when the field is absent) puts a
	// space before text that does not start with one.
	tok, err := parseBPETokenizerJSON([]byte(mkJSON(`{"type":"ByteLevel"}`, str)))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := tok.Encode("what is"), ref.Encode(" what is"); !slices.Equal(a, b) {
		t.Errorf("add_prefix_space: %v, want %v", a, b)
	}
	if a, b := tok.Encode(" what"), ref.Encode(" what"); !slices.Equal(a, b) {
		t.Errorf("add_prefix_space with a leading space: %v, want %v", a, b)
	}
	if got := tok.Encode(""); len(got) != 0 {
		t.Errorf("add_prefix_space on empty text: %v", got)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestBPEOptions covers the tokenizers BPE options a tokenizer.json may set,
// on toy vocabularies where the result follows from the option's rule.
func TestBPEOptions(t *testing.T) {
	mk := func(model string) *BPE {
		t.Helper()
		tok, err := parseBPETokenizerJSON([]byte(`{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false},"model":` + model + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pieces := func(tok *BPE, s string) []string {
		var out []string
		for _, id := range tok.Encode(s) {
			out = append(out, tok.Piece(id))
		}
		return out
	}
	// unk_token: each unknown character becomes <unk>; fuse_unk joins runs.
	tok := mk(`{"type":"BPE","unk_token":"<unk>","vocab":{"<unk>":0,"a":1},"merges":[]}`)
	if got := pieces(tok, "aXYa"); !slices.Equal(got, []string{"a", "<unk>", "<unk>", "a"}) {
		t.Errorf("unk: %q", got)
	}
	tok = mk(`{"type":"BPE","unk_token":"<unk>","fuse_unk":true,"vocab":{"<unk>":0,"a":1},"merges":[]}`)
	if got := pieces(tok, "aXYa"); !slices.Equal(got, []string{"a", "<unk>", "a"}) {
		t.Errorf("fuse_unk: %q", got)
	}
	// byte_fallback: a character without a token becomes <0xXX> tokens of
	// its UTF-8 bytes (X is byte 0x58).
	tok = mk(`{"type":"BPE","byte_fallback":true,"vocab":{"a":0,"<0x58>":1},"merges":[]}`)
	if got := pieces(tok, "aX"); !slices.Equal(got, []string{"a", "<0x58>"}) {
		t.Errorf("byte_fallback: %q", got)
	}
	// ignore_merges: a word in the vocabulary is taken whole even when the
	// merges would split it differently.
	tok = mk(`{"type":"BPE","ignore_merges":true,"vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4},"merges":["a b"]}`)
	if got := pieces(tok, "abc"); !slices.Equal(got, []string{"abc"}) {
		t.Errorf("ignore_merges: %q", got)
	}
	if got := pieces(tok, "abab"); !slices.Equal(got, []string{"ab", "ab"}) {
		t.Errorf("ignore_merges, word not in vocab: %q", got)
	}
	// continuing_subword_prefix and end_of_word_suffix decorate the symbols.
	tok = mk(`{"type":"BPE","continuing_subword_prefix":"##","vocab":{"a":0,"##b":1,"##c":2,"ab":3,"abc":4},"merges":["a ##b","ab ##c"]}`)
	if got := pieces(tok, "abc"); !slices.Equal(got, []string{"abc"}) {
		t.Errorf("prefix: %q", got)
	}
	tok = mk(`{"type":"BPE","end_of_word_suffix":"</w>","vocab":{"a":0,"b</w>":1,"ab</w>":2},"merges":["a b</w>"]}`)
	if got := pieces(tok, "ab"); !slices.Equal(got, []string{"ab</w>"}) {
		t.Errorf("suffix: %q", got)
	}
	// use_regex false: the text is one word, so " a" is not split off.
	tok, err := parseBPETokenizerJSON([]byte(`{"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},"model":{"type":"BPE","vocab":{"a":0,"Ġ":1,"aĠ":2,"aĠa":3},"merges":["a Ġ","aĠ a"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := pieces(tok, "a a"); !slices.Equal(got, []string{"aĠa"}) {
		t.Errorf("use_regex false: %q", got)
	}
}
