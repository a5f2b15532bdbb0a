package tokenizer

import "unicode/utf8"

// StreamDecoder turns the byte pieces of generated tokens into text as they
// arrive. A byte-level token can end in the middle of a UTF-8 character (an
// emoji is often split over two or three tokens), so Write emits only whole
// characters and holds back an incomplete tail until the next piece completes
// it. Bytes that can never form a valid character become U+FFFD, one per
// maximal invalid subpart, as Python's and Rust's lossy decoders do; the
// concatenation of all Write results and Flush therefore equals the lossy
// decoding of all the bytes at once. The zero value is ready to use.
type StreamDecoder struct {
	pending []byte
}

// Write adds one token's bytes and returns the text that is now complete.
func (d *StreamDecoder) Write(piece []byte) string {
	d.pending = append(d.pending, piece...)
	var out []byte
	i := 0
	for i < len(d.pending) {
		n, st := utf8Step(d.pending[i:])
		if st == stepIncomplete {
			break
		}
		if st == stepValid {
			out = append(out, d.pending[i:i+n]...)
		} else {
			out = append(out, "\uFFFD"...)
		}
		i += n
	}
	d.pending = d.pending[:copy(d.pending, d.pending[i:])]
	return string(out)
}

// Flush returns whatever is held back (an incomplete character becomes
// U+FFFD) and resets the decoder for the next stream.
func (d *StreamDecoder) Flush() string {
	s := lossyUTF8(d.pending)
	d.pending = d.pending[:0]
	return s
}

type stepState uint8

const (
	stepValid      stepState = iota
	stepInvalid              // b[:n] is a maximal invalid subpart
	stepIncomplete           // b is a valid but unfinished prefix of a character
)

// utf8Step classifies the character that starts b (len(b) > 0) following the
// Unicode "maximal subpart" practice (Unicode Standard, section 3.9, table
// 3-7 of well-formed byte sequences).
func utf8Step(b []byte) (int, stepState) {
	c := b[0]
	if c < utf8.RuneSelf {
		return 1, stepValid
	}
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 2
	case c == 0xE0:
		need, lo = 3, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 3
	case c == 0xED:
		need, hi = 3, 0x9F
	case c == 0xF0:
		need, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 4
	case c == 0xF4:
		need, hi = 4, 0x8F
	default:
		return 1, stepInvalid
	}
	for k := 1; k < need; k++ {
		if k >= len(b) {
			return k, stepIncomplete
		}
		if b[k] < lo || b[k] > hi {
			return k, stepInvalid
		}
		lo, hi = 0x80, 0xBF
	}
	return need, stepValid
}

// lossyUTF8 converts bytes to a string, replacing each maximal invalid
// subpart (including an unfinished character at the end) with U+FFFD, like
// Rust's String::from_utf8_lossy that tokenizers' decoders use.
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		n, st := utf8Step(b[i:])
		if st == stepValid {
			out = append(out, b[i:i+n]...)
		} else {
			out = append(out, "\uFFFD"...)
		}
		i += n
	}
	return string(out)
}
