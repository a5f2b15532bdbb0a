package sentencepiece

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tokDir = "../../testdata/golden/tokenizers"

// The two golden models, trained by gen.py with
//
//	llama_spm: vocab 2000, bpe, byte_fallback, unk 0 bos 1 eos 2 pad -1,
//	           split_digits, remove_extra_whitespaces False, identity normalization
//	t5_spm:    vocab 1000, unigram, pad 0 eos 1 unk 2 bos -1, default (nmt_nfkc) normalization
func TestGoldenModels(t *testing.T) {
	tests := []struct {
		name                      string
		pieces, vocabSize         int
		modelType                 int
		typeName                  string
		unk, bos, eos, pad        int
		byteFallback, splitDigits bool
		normalizer                string
		charsmap                  bool
		removeExtraWhitespaces    bool
		byteCount, controlCount   int
	}{
		{"llama_spm", 2000, 2000, ModelBPE, "bpe", 0, 1, 2, -1, true, true, "identity", false, false, 256, 2},
		{"t5_spm", 1000, 1000, ModelUnigram, "unigram", 2, -1, 1, 0, false, false, "nmt_nfkc", true, true, 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(filepath.Join(tokDir, tc.name+".model"))
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Pieces) != tc.pieces || m.VocabSize != tc.vocabSize {
				t.Errorf("%d pieces, vocab_size %d; want %d, %d", len(m.Pieces), m.VocabSize, tc.pieces, tc.vocabSize)
			}
			if m.ModelType != tc.modelType || m.ModelTypeName() != tc.typeName {
				t.Errorf("model type %d %q, want %d %q", m.ModelType, m.ModelTypeName(), tc.modelType, tc.typeName)
			}
			if m.UnkID != tc.unk || m.BOSID != tc.bos || m.EOSID != tc.eos || m.PadID != tc.pad {
				t.Errorf("unk/bos/eos/pad = %d %d %d %d, want %d %d %d %d", m.UnkID, m.BOSID, m.EOSID, m.PadID, tc.unk, tc.bos, tc.eos, tc.pad)
			}
			if m.ByteFallback != tc.byteFallback || m.SplitDigits != tc.splitDigits {
				t.Errorf("byte_fallback %v split_digits %v", m.ByteFallback, m.SplitDigits)
			}
			if m.NormalizerName != tc.normalizer || (len(m.PrecompiledCharsmap) > 0) != tc.charsmap {
				t.Errorf("normalizer %q with %d-byte charsmap", m.NormalizerName, len(m.PrecompiledCharsmap))
			}
			if !m.AddDummyPrefix || !m.EscapeWhitespaces || m.RemoveExtraWhitespaces != tc.removeExtraWhitespaces || m.TreatWhitespaceAsSuffix {
				t.Errorf("add_dummy_prefix %v escape %v remove_extra %v suffix %v", m.AddDummyPrefix, m.EscapeWhitespaces, m.RemoveExtraWhitespaces, m.TreatWhitespaceAsSuffix)
			}
			if m.UnkPiece != "<unk>" || m.BOSPiece != "<s>" || m.EOSPiece != "</s>" || m.PadPiece != "<pad>" || m.UnkSurface != " \u2047 " {
				t.Errorf("special pieces %q %q %q %q surface %q", m.UnkPiece, m.BOSPiece, m.EOSPiece, m.PadPiece, m.UnkSurface)
			}
			// The special ids name the pieces the trainer spec says.
			for _, s := range []struct {
				id   int
				text string
				typ  int
			}{{m.UnkID, "<unk>", TypeUnknown}, {m.BOSID, "<s>", TypeControl}, {m.EOSID, "</s>", TypeControl}, {m.PadID, "<pad>", TypeControl}} {
				if s.id >= 0 && (m.Pieces[s.id].Text != s.text || m.Pieces[s.id].Type != s.typ) {
					t.Errorf("piece %d = %+v, want %q type %d", s.id, m.Pieces[s.id], s.text, s.typ)
				}
			}
			counts := map[int]int{}
			for i, p := range m.Pieces {
				counts[p.Type]++
				if b, ok := p.Byte(); ok && p.Text != fmt.Sprintf("<0x%02X>", b) {
					t.Errorf("piece %d %q decodes to byte %#x", i, p.Text, b)
				}
			}
			if counts[TypeByte] != tc.byteCount || counts[TypeControl] != tc.controlCount || counts[TypeUnknown] != 1 {
				t.Errorf("type counts %v", counts)
			}
			if tc.byteFallback {
				// Byte pieces follow the specials in byte order.
				for b := 0; b < 256; b++ {
					if got, ok := m.Pieces[3+b].Byte(); !ok || int(got) != b {
						t.Fatalf("piece %d = %+v, want byte %#x", 3+b, m.Pieces[3+b], b)
					}
				}
			}
			comparePieces(t, m, filepath.Join(tokDir, tc.name+".vocab"))
		})
	}
}

// comparePieces checks every piece and score against the .vocab file that
// spm_train wrote beside the model: "piece\tscore" per line, the score
// printed by C++ iostream (%g, 6 significant digits).
func comparePieces(t *testing.T, m *Model, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		text, score, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			t.Fatalf("%s:%d: no tab", path, i+1)
		}
		if i >= len(m.Pieces) {
			t.Fatalf("%s has more than %d lines", path, len(m.Pieces))
		}
		p := m.Pieces[i]
		if p.Text != text {
			t.Errorf("piece %d = %q, vocab file says %q", i, p.Text, text)
		}
		if got := fmt.Sprintf("%.6g", p.Score); got != score {
			t.Errorf("piece %d %q score %v prints %s, vocab file says %s", i, text, p.Score, got, score)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(m.Pieces) {
		t.Errorf("%s has %d lines for %d pieces", path, i, len(m.Pieces))
	}
}

// A minimal protobuf encoder for building test models.
type enc []byte

func (e enc) varint(v uint64) enc          { return binary.AppendUvarint(e, v) }
func (e enc) tag(field, wire int) enc      { return e.varint(uint64(field)<<3 | uint64(wire)) }
func (e enc) uint(field int, v uint64) enc { return e.tag(field, wireVarint).varint(v) }
func (e enc) int(field int, v int) enc     { return e.uint(field, uint64(int64(v))) }
func (e enc) bytes(field int, b []byte) enc {
	return e.tag(field, wireLen).varint(uint64(len(b))).raw(b)
}
func (e enc) str(field int, s string) enc { return e.bytes(field, []byte(s)) }
func (e enc) raw(b []byte) enc            { return append(e, b...) }
func (e enc) fixed32(field int, v uint32) enc {
	return binary.LittleEndian.AppendUint32(e.tag(field, wireI32), v)
}
func (e enc) fixed64(field int, v uint64) enc {
	return binary.LittleEndian.AppendUint64(e.tag(field, wireI64), v)
}
func (e enc) float(field int, f float32) enc { return e.fixed32(field, math.Float32bits(f)) }
func piece(text string, score float32, typ int) []byte {
	e := enc(nil).str(1, text).float(2, score)
	if typ != 0 {
		e = e.int(3, typ)
	}
	return e
}

// specials is <unk>, <s>, </s>: the minimum that fits the default ids.
func specials() enc {
	return enc(nil).bytes(1, piece("<unk>", 0, TypeUnknown)).bytes(1, piece("<s>", 0, TypeControl)).bytes(1, piece("</s>", 0, TypeControl))
}

func TestDefaults(t *testing.T) {
	// No trainer or normalizer spec, a piece without type: proto2 defaults.
	data := specials().bytes(1, enc(nil).str(1, "▁a").float(2, -1.5))
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.ModelType != ModelUnigram || m.VocabSize != 8000 || m.UnkID != 0 || m.BOSID != 1 || m.EOSID != 2 || m.PadID != -1 {
		t.Errorf("trainer defaults: %+v", m)
	}
	if !m.AddDummyPrefix || !m.RemoveExtraWhitespaces || !m.EscapeWhitespaces || m.NormalizerName != "" || m.PrecompiledCharsmap != nil || m.ByteFallback {
		t.Errorf("normalizer defaults: %+v", m)
	}
	if p := m.Pieces[3]; p.Text != "▁a" || p.Score != -1.5 || p.Type != TypeNormal {
		t.Errorf("piece 3 = %+v", p)
	}
}

func TestWireDetails(t *testing.T) {
	unknown := func(e enc) enc { // one field of each skippable wire type
		return e.uint(1000, 7).fixed64(1001, 1).str(1002, "x").fixed32(1003, 2)
	}
	trainer1 := unknown(enc(nil).int(3, ModelBPE).int(43, -1).int(40, 0))
	trainer2 := enc(nil).int(4, 5).int(35, 1).int(42, 4).int(41, -1) // merges into trainer1
	norm := unknown(enc(nil).str(1, "identity").bytes(2, []byte{1, 2, 3}).int(3, 0).int(4, 0).int(5, 0))
	data := unknown(specials()).
		bytes(1, unknown(enc(nil).str(1, "<0x41>").float(2, 0).int(3, TypeByte))).
		bytes(1, enc(nil).str(1, "pad").int(3, TypeControl)).
		bytes(2, trainer1).bytes(3, norm).bytes(2, trainer2).
		str(5, "denormalizer ignored")
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if m.ModelType != ModelBPE || m.VocabSize != 5 || !m.ByteFallback || m.UnkID != 0 || m.BOSID != -1 || m.EOSID != 4 || m.PadID != -1 {
		t.Errorf("trainer: %+v", m)
	}
	if m.NormalizerName != "identity" || string(m.PrecompiledCharsmap) != "\x01\x02\x03" || m.AddDummyPrefix || m.RemoveExtraWhitespaces || m.EscapeWhitespaces {
		t.Errorf("normalizer: %+v", m)
	}
	if b, ok := m.Pieces[3].Byte(); !ok || b != 'A' {
		t.Errorf("byte piece %+v -> %v %v", m.Pieces[3], b, ok)
	}
	// The charsmap must not alias the input.
	data[len(data)-1] ^= 0xff
	for i := range data {
		data[i] = 0
	}
	if string(m.PrecompiledCharsmap) != "\x01\x02\x03" || m.Pieces[4].Text != "pad" {
		t.Error("model aliases its input")
	}
	// pad_id -1 written as a 5-byte varint (low 32 bits) reads the same.
	m, err = Parse(specials().bytes(2, enc(nil).tag(43, wireVarint).raw([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})))
	if err != nil || m.PadID != -1 {
		t.Errorf("5-byte -1: %v %v", m, err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"text file", []byte("<unk>\t0\n<s>\t0\n"), ""},
		{"no pieces", enc(nil).bytes(2, enc(nil).int(3, 1)), "no pieces"},
		{"truncated varint", specials().raw([]byte{0x28, 0xff}), "truncated varint"},
		{"varint overflow", specials().raw([]byte{0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), "overflows"},
		{"length past end", specials().raw([]byte{0x0a, 0x40, 'x'}), "runs past the end"},
		{"field zero", specials().raw([]byte{0x00, 0x01}), "invalid field number 0"},
		{"group", specials().raw([]byte{0x1b}), "start-group"},
		{"wire type 7", specials().raw([]byte{0x0f}), "wire type 7"},
		{"truncated fixed32", specials().raw([]byte{0x2d, 1, 2}), "truncated 32-bit"},
		{"truncated fixed64", specials().raw([]byte{0x29, 1, 2}), "truncated 64-bit"},
		{"piece as varint", specials().uint(1, 5), "piece 3: offset 46: piece: wire type varint, want length-delimited"},
		{"score as varint", specials().bytes(1, enc(nil).str(1, "a").uint(2, 1)), "piece 3: offset"},
		{"model_type as string", specials().bytes(2, enc(nil).str(3, "bpe")), "trainer_spec: offset"},
		{"unknown model type", specials().bytes(2, enc(nil).int(3, 9)), "unknown model_type 9"},
		{"empty piece", specials().bytes(1, enc(nil).float(2, 1)), "piece 3 is empty"},
		{"invalid utf-8", specials().bytes(1, piece("\xff\xfe", 0, 1)), "not valid UTF-8"},
		{"unknown piece type", specials().bytes(1, piece("a", 0, 9)), "unknown type 9"},
		{"nan score", specials().bytes(1, piece("a", float32(math.NaN()), 1)), "score NaN"},
		{"duplicate", specials().bytes(1, piece("<s>", 0, 1)), `piece 3 "<s>" duplicates piece 1`},
		{"two unk", specials().bytes(1, piece("<unk2>", 0, TypeUnknown)), "both <unk>"},
		{"no unk", enc(nil).bytes(1, piece("a", 0, 1)).bytes(1, piece("b", 0, 1)).bytes(1, piece("c", 0, 1)), "no piece of type UNKNOWN"},
		{"unk id mismatch", specials().bytes(2, enc(nil).int(40, 1)), "unk_id 1"},
		{"bos out of range", specials().bytes(2, enc(nil).int(41, 3)), "bos_id 3 out of range"},
		{"pad below -1", specials().bytes(2, enc(nil).int(43, -2)), "pad_id -2"},
		{"byte piece without fallback", specials().bytes(1, piece("<0x41>", 0, TypeByte)), "byte_fallback is off"},
		{"malformed byte piece", specials().bytes(1, piece("<0xZZ>", 0, TypeByte)).bytes(2, enc(nil).int(35, 1)), "not <0xXX>"},
		{"lowercase byte piece", specials().bytes(1, piece("<0xab>", 0, TypeByte)).bytes(2, enc(nil).int(35, 1)), "not <0xXX>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.data)
			if err == nil {
				t.Fatalf("no error; %d pieces", len(m.Pieces))
			}
			if !strings.HasPrefix(err.Error(), "sentencepiece: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.model")); err == nil {
		t.Error("missing file: no error")
	}
	path := filepath.Join(t.TempDir(), "bad.model")
	if err := os.WriteFile(path, []byte{0x0a, 0x40}, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": not a valid SentencePiece model: ") {
		t.Errorf("error %v", err)
	}
}

// topLevelEnds returns the offsets where a top-level field of a valid model
// ends, the only places a truncated file is still well-formed protobuf, and
// a sample of them to test (every spec, every 50th piece).
func topLevelEnds(t *testing.T, data []byte) (ends, sample map[int]bool) {
	ends, sample = map[int]bool{}, map[int]bool{}
	d := &decoder{b: data}
	for i := 0; !d.done(); i++ {
		field, wire, err := d.key()
		if err == nil {
			err = d.skip(wire)
		}
		if err != nil {
			t.Fatal(err)
		}
		ends[d.off] = true
		if field != 1 || i%50 == 0 {
			sample[d.off] = true
		}
	}
	return ends, sample
}

// checkModel asserts what Parse promises of any model it accepts.
func checkModel(t *testing.T, m *Model) {
	t.Helper()
	n := len(m.Pieces)
	if n == 0 || m.UnkID < 0 || m.UnkID >= n || m.Pieces[m.UnkID].Type != TypeUnknown ||
		m.BOSID >= n || m.EOSID >= n || m.PadID >= n || m.BOSID < -1 || m.EOSID < -1 || m.PadID < -1 {
		t.Fatalf("accepted an inconsistent model: %d pieces, ids %d %d %d %d", n, m.UnkID, m.BOSID, m.EOSID, m.PadID)
	}
}

func TestTruncated(t *testing.T) {
	for _, name := range []string{"llama_spm", "t5_spm"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(tokDir, name+".model"))
			if err != nil {
				t.Fatal(err)
			}
			ends, sample := topLevelEnds(t, data)
			stride := 1 + len(data)/2000 // ~2000 evenly spread cuts
			tested, accepted := 0, 0
			for n := 0; n < len(data); n++ {
				if n%stride != 0 && !sample[n] && !sample[n+1] && n < len(data)-64 {
					continue
				}
				tested++
				m, err := Parse(data[:n])
				if err == nil {
					accepted++
					checkModel(t, m)
					if !ends[n] {
						t.Errorf("truncated to %d of %d bytes (inside a field): no error", n, len(data))
					}
				}
			}
			t.Logf("%d truncations tested, %d accepted (all at field boundaries)", tested, accepted)
		})
	}
}

func TestBitFlips(t *testing.T) {
	for _, name := range []string{"llama_spm", "t5_spm"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(tokDir, name+".model"))
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewSource(1))
			flips := 2000
			if len(data) > 100000 {
				flips = 1000 // each parse reads the 240 kB charsmap
			}
			if testing.Short() {
				flips = 300
			}
			rejected := 0
			buf := make([]byte, len(data))
			for i := 0; i < flips; i++ {
				copy(buf, data)
				bit := rng.Intn(len(buf) * 8)
				// Bias half the flips to the structure-heavy start (pieces).
				if i%2 == 0 {
					bit = rng.Intn(min(len(buf), 30000) * 8)
				}
				buf[bit/8] ^= 1 << (bit % 8)
				m, err := Parse(buf)
				if err != nil {
					rejected++
					continue
				}
				checkModel(t, m)
			}
			// Many flips land in scores or the charsmap and leave a valid model.
			t.Logf("%d of %d single-bit flips rejected", rejected, flips)
			if rejected == 0 {
				t.Error("no bit flip was rejected")
			}
		})
	}
}

// smallSeed keeps the first pieces and the small specs of a real model, so
// the fuzzer mutates real structure without minimizing a 256 kB input.
func smallSeed(data []byte, maxPieces int) []byte {
	var out []byte
	d := &decoder{b: data}
	pieces := 0
	for !d.done() {
		start := d.off
		field, wire, err := d.key()
		if err == nil {
			err = d.skip(wire)
		}
		if err != nil {
			return out
		}
		if field == 1 {
			pieces++
			if pieces > maxPieces {
				continue
			}
		}
		if d.off-start < 4096 {
			out = append(out, data[start:d.off]...)
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"llama_spm", "t5_spm"} {
		if data, err := os.ReadFile(filepath.Join(tokDir, name+".model")); err == nil {
			f.Add(smallSeed(data, 300))
		}
	}
	f.Add([]byte(specials()))
	f.Add([]byte(specials().bytes(2, enc(nil).int(3, 2).int(35, 1).int(43, -1)).bytes(3, enc(nil).str(1, "identity").int(3, 0))))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		checkModel(t, m)
	})
}

func TestSmallSeedsParse(t *testing.T) {
	for _, name := range []string{"llama_spm", "t5_spm"} {
		data, err := os.ReadFile(filepath.Join(tokDir, name+".model"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(smallSeed(data, 300))
		if err != nil {
			t.Fatalf("%s seed: %v", name, err)
		}
		if len(m.Pieces) != 300 {
			t.Errorf("%s seed: %d pieces", name, len(m.Pieces))
		}
	}
}
