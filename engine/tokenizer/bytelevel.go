package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/weights/hftok"
)

// byteRune maps each byte to the printable rune GPT-2 uses for it in
// vocab.json (hftok.ByteLevelRune), and runeByte is its inverse.
var (
	byteRune [256]rune
	runeByte = map[rune]byte{}
	// byteStr[b] is string(byteRune[b]), precomputed for the BPE symbols.
	byteStr [256]string
)

func init() {
	for b := 0; b < 256; b++ {
		byteRune[b] = hftok.ByteLevelRune(byte(b))
		runeByte[byteRune[b]] = byte(b)
		byteStr[b] = string(byteRune[b])
	}
}

// byteLevelDecode turns a vocabulary token back into the bytes it stands for.
// Like the tokenizers ByteLevel decoder, a token holding any rune outside the
// byte alphabet (an added token such as a custom special token) is taken
// verbatim as UTF-8.
func byteLevelDecode(tok string) []byte {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeByte[r]
		if !ok {
			return []byte(tok)
		}
		out = append(out, b)
	}
	return out
}

// splitGPT2 cuts text the way GPT-2's pre-tokenization regex does:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Go's regexp has no look-ahead, so this is a hand-written scanner that tries
// the alternatives in order at each position, as the regex engine does. The
// `\s+(?!\S)` branch leaves the last whitespace character of a run that is
// followed by a non-space for the next piece, which is how " word" keeps its
// space. \s is Unicode White_Space (unicode.IsSpace), as in Oniguruma and
// Python's regex module. Bytes that are not valid UTF-8 count as one
// "other" character each.
func splitGPT2(text string, emit func(piece string)) {
	for i := 0; i < len(text); {
		j := gpt2Match(text, i)
		emit(text[i:j])
		i = j
	}
}

// gpt2Match returns the end of the regex match that starts at i (always > i).
func gpt2Match(s string, i int) int {
	if s[i] == '\'' {
		rest := s[i+1:]
		for _, c := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if strings.HasPrefix(rest, c) {
				return i + 1 + len(c)
			}
		}
	}
	// ` ?X+` for the three classes: the optional space is a literal U+0020,
	// and a space itself is in none of the classes, so only the with-space
	// variant can match when s[i] is a space.
	j := i
	if s[i] == ' ' {
		j = i + 1
	}
	if j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if c := classOf(r); c != classSpace {
			k := j + n
			for k < len(s) {
				r, n = utf8.DecodeRuneInString(s[k:])
				if classOf(r) != c {
					break
				}
				k += n
			}
			return k
		}
	}
	// Whitespace run starting at i.
	k := i
	last := i
	for k < len(s) {
		r, n := utf8.DecodeRuneInString(s[k:])
		if !unicode.IsSpace(r) {
			break
		}
		last = k
		k += n
	}
	if k == i {
		// Unreachable: a non-space rune matched one of the classes above.
		_, n := utf8.DecodeRuneInString(s[i:])
		return i + n
	}
	if k == len(s) || last == i {
		// `\s+(?!\S)` takes the whole run at the end of the text; a single
		// whitespace rune before a non-space falls through to `\s+`.
		return k
	}
	return last
}

type runeClass uint8

const (
	classSpace runeClass = iota
	classLetter
	classNumber
	classOther
)

func classOf(r rune) runeClass {
	switch {
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	default:
		return classOther
	}
}
