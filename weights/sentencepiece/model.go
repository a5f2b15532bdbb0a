// Package sentencepiece reads SentencePiece model files (.model, the
// serialized sentencepiece.ModelProto used by LLaMA's tokenizer.model and
// T5's spiece.model) with a small protobuf wire decoder of its own.
//
// Only the fields that decide how text becomes ids are kept: the pieces,
// the algorithm, the special ids and the normalizer. Absent fields take the
// proto2 defaults of sentencepiece_model.proto.
package sentencepiece

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// Model types (TrainerSpec.ModelType).
const (
	ModelUnigram = 1
	ModelBPE     = 2
	ModelWord    = 3
	ModelChar    = 4
)

// Piece types (ModelProto.SentencePiece.Type).
const (
	TypeNormal      = 1
	TypeUnknown     = 2
	TypeControl     = 3 // <s>, </s>, <pad>: never produced from text
	TypeUserDefined = 4 // always matched as a whole
	TypeUnused      = 5
	TypeByte        = 6 // <0xXX>, used when ByteFallback is set
)

// Model is a parsed SentencePiece model.
type Model struct {
	Pieces    []Piece // id = index
	ModelType int     // ModelUnigram, ModelBPE, ModelWord or ModelChar
	// VocabSize is trainer_spec.vocab_size as trained; len(Pieces) is the
	// real vocabulary size.
	VocabSize                  int
	UnkID, BOSID, EOSID, PadID int // -1 when the model has no such token
	// Surface forms of the special pieces in the trainer spec.
	UnkPiece, BOSPiece, EOSPiece, PadPiece string
	UnkSurface                             string // text that decoding emits for <unk>, " \u2047 " by default
	ByteFallback                           bool   // unknown characters become <0xXX> byte pieces instead of <unk>
	TreatWhitespaceAsSuffix                bool   // "hello▁" rather than "▁hello"
	SplitDigits                            bool   // training option; recorded for completeness

	// Normalizer.
	NormalizerName         string // e.g. "nmt_nfkc", "identity"
	PrecompiledCharsmap    []byte // compiled normalization rules (empty for identity)
	AddDummyPrefix         bool   // prepend a space so the first word looks like the others
	RemoveExtraWhitespaces bool   // trim and collapse spaces
	EscapeWhitespaces      bool   // spaces become U+2581 "▁"
}

// Piece is one vocabulary entry.
type Piece struct {
	Text  string
	Score float32 // log probability (unigram) or merge priority (BPE)
	Type  int     // TypeNormal ... TypeByte
}

// Byte returns the byte a TypeByte piece "<0xXX>" stands for.
func (p Piece) Byte() (byte, bool) {
	s := p.Text
	if p.Type != TypeByte || len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(s[3])
	lo, ok2 := hexDigit(s[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ModelTypeName is "unigram", "bpe", "word" or "char".
func (m *Model) ModelTypeName() string {
	switch m.ModelType {
	case ModelUnigram:
		return "unigram"
	case ModelBPE:
		return "bpe"
	case ModelWord:
		return "word"
	case ModelChar:
		return "char"
	}
	return fmt.Sprintf("model type %d", m.ModelType)
}

// maxFileSize bounds what Load reads into memory; real models are < 50 MB.
const maxFileSize = 1 << 30

// Load reads and parses a .model file.
func Load(path string) (*Model, error) {
	data, err := safefile.ReadFile(path, maxFileSize) // a FIFO is refused, never waited on
	var tl *safefile.TooLargeError
	if errors.As(err, &tl) {
		return nil, fmt.Errorf("%s: %d bytes is too large for a SentencePiece model", path, tl.Size)
	}
	if err != nil {
		return nil, err
	}
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a valid SentencePiece model: %w", path, err)
	}
	return m, nil
}

// Parse parses a serialized ModelProto. The result does not alias data.
func Parse(data []byte) (*Model, error) {
	m, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("sentencepiece: %w", err)
	}
	return m, nil
}

func parse(data []byte) (*Model, error) {
	// proto2 defaults from sentencepiece_model.proto.
	m := &Model{
		ModelType: ModelUnigram, VocabSize: 8000,
		UnkID: 0, BOSID: 1, EOSID: 2, PadID: -1,
		UnkPiece: "<unk>", BOSPiece: "<s>", EOSPiece: "</s>", PadPiece: "<pad>",
		UnkSurface:     " \u2047 ",
		AddDummyPrefix: true, RemoveExtraWhitespaces: true, EscapeWhitespaces: true,
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("empty file")
	}
	d := &decoder{b: data}
	for !d.done() {
		field, wire, err := d.key()
		if err != nil {
			return nil, err
		}
		switch field {
		case 1:
			sub, err := d.message("piece", wire)
			if err != nil {
				return nil, fmt.Errorf("piece %d: %w", len(m.Pieces), err)
			}
			p, err := parsePiece(&sub)
			if err != nil {
				return nil, fmt.Errorf("piece %d: %w", len(m.Pieces), err)
			}
			m.Pieces = append(m.Pieces, p)
		case 2:
			// A repeated embedded message merges into the earlier one, as
			// in protobuf, so parse onto m.
			sub, err := d.message("trainer_spec", wire)
			if err == nil {
				err = parseTrainer(&sub, m)
			}
			if err != nil {
				return nil, fmt.Errorf("trainer_spec: %w", err)
			}
		case 3:
			sub, err := d.message("normalizer_spec", wire)
			if err == nil {
				err = parseNormalizer(&sub, m)
			}
			if err != nil {
				return nil, fmt.Errorf("normalizer_spec: %w", err)
			}
		default: // self_test_data, denormalizer_spec, extensions
			if err := d.skip(wire); err != nil {
				return nil, err
			}
		}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func parsePiece(d *decoder) (Piece, error) {
	p := Piece{Type: TypeNormal}
	for !d.done() {
		field, wire, err := d.key()
		if err != nil {
			return p, err
		}
		switch field {
		case 1:
			p.Text, err = d.string("piece", wire)
		case 2:
			if err = d.expect("score", wire, wireI32); err == nil {
				var bits uint32
				bits, err = d.fixed32()
				p.Score = math.Float32frombits(bits)
			}
		case 3:
			p.Type, err = d.int32("type", wire)
		default:
			err = d.skip(wire)
		}
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

func parseTrainer(d *decoder, m *Model) error {
	for !d.done() {
		field, wire, err := d.key()
		if err != nil {
			return err
		}
		switch field {
		case 3:
			m.ModelType, err = d.int32("model_type", wire)
		case 4:
			m.VocabSize, err = d.int32("vocab_size", wire)
		case 24:
			m.TreatWhitespaceAsSuffix, err = d.bool("treat_whitespace_as_suffix", wire)
		case 25:
			m.SplitDigits, err = d.bool("split_digits", wire)
		case 35:
			m.ByteFallback, err = d.bool("byte_fallback", wire)
		case 40:
			m.UnkID, err = d.int32("unk_id", wire)
		case 41:
			m.BOSID, err = d.int32("bos_id", wire)
		case 42:
			m.EOSID, err = d.int32("eos_id", wire)
		case 43:
			m.PadID, err = d.int32("pad_id", wire)
		case 44:
			m.UnkSurface, err = d.string("unk_surface", wire)
		case 45:
			m.UnkPiece, err = d.string("unk_piece", wire)
		case 46:
			m.BOSPiece, err = d.string("bos_piece", wire)
		case 47:
			m.EOSPiece, err = d.string("eos_piece", wire)
		case 48:
			m.PadPiece, err = d.string("pad_piece", wire)
		default:
			err = d.skip(wire)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseNormalizer(d *decoder, m *Model) error {
	for !d.done() {
		field, wire, err := d.key()
		if err != nil {
			return err
		}
		switch field {
		case 1:
			m.NormalizerName, err = d.string("name", wire)
		case 2:
			if err = d.expect("precompiled_charsmap", wire, wireLen); err == nil {
				var b []byte
				b, _, err = d.bytes()
				m.PrecompiledCharsmap = append([]byte(nil), b...)
			}
		case 3:
			m.AddDummyPrefix, err = d.bool("add_dummy_prefix", wire)
		case 4:
			m.RemoveExtraWhitespaces, err = d.bool("remove_extra_whitespaces", wire)
		case 5:
			m.EscapeWhitespaces, err = d.bool("escape_whitespaces", wire)
		default:
			err = d.skip(wire)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// validate applies the checks SentencePieceProcessor makes when it loads a
// model, plus a few that catch corruption early.
func (m *Model) validate() error {
	n := len(m.Pieces)
	if n == 0 {
		return fmt.Errorf("no pieces")
	}
	if m.ModelType < ModelUnigram || m.ModelType > ModelChar {
		return fmt.Errorf("trainer_spec: unknown model_type %d", m.ModelType)
	}
	seen := make(map[string]int, n)
	unk := -1
	for i, p := range m.Pieces {
		switch {
		case p.Text == "":
			return fmt.Errorf("piece %d is empty", i)
		case !utf8.ValidString(p.Text):
			return fmt.Errorf("piece %d %q is not valid UTF-8", i, p.Text)
		case p.Type < TypeNormal || p.Type > TypeByte:
			return fmt.Errorf("piece %d %q has unknown type %d", i, p.Text, p.Type)
		case math.IsNaN(float64(p.Score)) || math.IsInf(float64(p.Score), 0):
			return fmt.Errorf("piece %d %q has score %v", i, p.Text, p.Score)
		}
		if j, dup := seen[p.Text]; dup {
			return fmt.Errorf("piece %d %q duplicates piece %d", i, p.Text, j)
		}
		seen[p.Text] = i
		switch p.Type {
		case TypeUnknown:
			if unk >= 0 {
				return fmt.Errorf("pieces %d and %d are both <unk>", unk, i)
			}
			unk = i
		case TypeByte:
			if !m.ByteFallback {
				return fmt.Errorf("piece %d %q is a byte piece but byte_fallback is off", i, p.Text)
			}
			if _, ok := p.Byte(); !ok {
				return fmt.Errorf("byte piece %d %q is not <0xXX>", i, p.Text)
			}
		}
	}
	if unk < 0 {
		return fmt.Errorf("no piece of type UNKNOWN")
	}
	if m.UnkID != unk {
		return fmt.Errorf("trainer_spec unk_id %d, but the UNKNOWN piece is %d", m.UnkID, unk)
	}
	for _, s := range []struct {
		name string
		id   int
	}{{"bos_id", m.BOSID}, {"eos_id", m.EOSID}, {"pad_id", m.PadID}} {
		if s.id < -1 || s.id >= n {
			return fmt.Errorf("trainer_spec %s %d out of range for %d pieces", s.name, s.id, n)
		}
	}
	return nil
}
