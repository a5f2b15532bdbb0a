package safetensors

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestGoldenShapes(t *testing.T) {
	tests := []struct {
		file, tensor string
		dtype        DType
		shape        []int
	}{
		{"blip2-opt/golden.safetensors", "pixel_values", F32, []int{1, 3, 224, 224}},
		{"blip2-opt/golden.safetensors", "input_ids", I64, []int{1, 21}},
		{"blip2-opt/golden.safetensors", "logits", F32, []int{29, 1000}},
		{"blip2-opt/golden.safetensors", "vision_last_hidden_state", F32, []int{1, 257, 176}},
		{"blip2-t5/golden.safetensors", "forced_decoder_input_ids", I64, []int{23}},
		{"blip2-itm/golden.safetensors", "text2.input_ids", I64, []int{15}},
		{"blip2-opt/hf/model.safetensors", "language_model.model.decoder.embed_tokens.weight", F32, []int{1000, 64}},
		{"blip2-opt/hf/model.safetensors", "query_tokens", F32, []int{1, 8, 128}},
		{"images/images.safetensors", "cat.resized_u8", U8, []int{224, 224, 3}},
		{"images/images.safetensors", "video.resized_u8", U8, []int{224, 224, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.file+":"+tc.tensor, func(t *testing.T) {
			f, err := Open(filepath.Join(golden, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tt, ok := f.Tensor(tc.tensor)
			if !ok {
				t.Fatalf("no tensor %q among %d", tc.tensor, len(f.Names()))
			}
			if tt.Name != tc.tensor || tt.DType != tc.dtype || !slices.Equal(tt.Shape, tc.shape) {
				t.Fatalf("got %s %s %v, want %s %v", tt.Name, tt.DType, tt.Shape, tc.dtype, tc.shape)
			}
		})
	}
}

// TestGoldenFiles opens every golden file, checks the invariants of every
// tensor and the header bookkeeping (names sorted, metadata).
func TestGoldenFiles(t *testing.T) {
	for _, path := range goldenFiles(t) {
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		names := f.Names()
		if len(names) == 0 || !slices.IsSorted(names) {
			t.Errorf("%s: names %d, sorted %v", path, len(names), slices.IsSorted(names))
		}
		st, _ := os.Stat(path)
		checkInvariants(t, f, int(st.Size()))
		wantMeta := strings.Contains(path, "/hf/")
		if md := f.Metadata(); wantMeta != (md["format"] == "pt") {
			t.Errorf("%s: metadata %v", path, md)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		if _, ok := f.Tensor(names[0]); ok {
			t.Errorf("%s: Tensor works after Close", path)
		}
		if err := f.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
}

// TestGoldenValues checks decoded numbers against data from elsewhere: the
// ids and logits golden.json lists, and pixel_values recomputed from the
// resized image bytes of images.safetensors.
func TestGoldenValues(t *testing.T) {
	var itm struct {
		Items []struct {
			IDs       []int64   `json:"ids"`
			ITMLogits []float32 `json:"itm_logits"`
		} `json:"items"`
	}
	if err := json.Unmarshal(readGolden(t, "blip2-itm/golden.json"), &itm); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(golden, "blip2-itm/golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, item := range itm.Items {
		ids, _ := f.Tensor("text" + string(rune('0'+i)) + ".input_ids")
		got, err := ids.Int64()
		if err != nil || !slices.Equal(got, item.IDs) {
			t.Errorf("text%d ids: got %v (%v), want %v", i, got, err, item.IDs)
		}
		lg, _ := f.Tensor("text" + string(rune('0'+i)) + ".itm_logits")
		gotf, err := lg.Float32()
		if err != nil || !slices.Equal(gotf, item.ITMLogits) {
			t.Errorf("text%d itm_logits: got %v (%v), want %v", i, gotf, err, item.ITMLogits)
		}
	}

	// blip2-t5 encodes cat.jpg: pixel_values = (u8/255 - mean)/std, channels first.
	var t5 struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(readGolden(t, "blip2-t5/golden.json"), &t5); err != nil {
		t.Fatal(err)
	}
	g, err := Open(filepath.Join(golden, "blip2-t5/golden.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	im, err := Open(filepath.Join(golden, "images/images.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	pvT, _ := g.Tensor("pixel_values")
	u8T, ok := im.Tensor(strings.TrimSuffix(t5.Image, filepath.Ext(t5.Image)) + ".resized_u8")
	if !ok {
		t.Fatalf("no resized image for %s", t5.Image)
	}
	pv, err := pvT.Float32()
	if err != nil {
		t.Fatal(err)
	}
	u8, err := u8T.Float32()
	if err != nil {
		t.Fatal(err)
	}
	mean := [3]float64{0.48145466, 0.4578275, 0.40821073}
	std := [3]float64{0.26862954, 0.26130258, 0.27577711}
	var maxDiff float64
	for c := 0; c < 3; c++ {
		for p := 0; p < 224*224; p++ {
			want := (float64(u8[3*p+c])/255 - mean[c]) / std[c]
			maxDiff = max(maxDiff, math.Abs(float64(pv[c*224*224+p])-want))
		}
	}
	if maxDiff > 1e-5 {
		t.Errorf("pixel_values differ from the normalized image by %g", maxDiff)
	}
	t.Logf("pixel_values vs normalized images.safetensors: max |diff| %.2g", maxDiff)
}

func TestParseValidEdgeCases(t *testing.T) {
	tests := []struct {
		name   string
		file   []byte
		tensor string
		shape  []int
		meta   map[string]string
	}{
		{"empty", rawFile("{}", 0), "", nil, nil},
		{"padded", rawFile("{}      ", 0), "", nil, nil},
		{"null metadata", rawFile(`{"__metadata__":null}`, 0), "", nil, nil},
		{"metadata", rawFile(`{"__metadata__":{"a":"b","format":"pt"}}`, 0), "", nil, map[string]string{"a": "b", "format": "pt"}},
		{"scalar", rawFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, 4), "s", []int{}, nil},
		{"gap and trailing bytes", rawFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, 10), "a", []int{2}, nil},
		{"empty tensor inside another", rawFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]}}`, 8), "e", []int{0, 3}, nil},
		{"unknown field ignored", rawFile(`{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1],"extra":{"x":[1,2]}}}`, 1), "a", []int{1}, nil},
		{"key order free", rawFile(`{"a":{"data_offsets":[0,2],"shape":[1],"dtype":"BF16"}}`, 2), "a", []int{1}, nil},
		{"escaped name", rawFile(`{"a\"\u00e9\n":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), "a\"é\n", []int{1}, nil},
		{"whitespace", rawFile(" \n{ \"a\" : { \"dtype\" : \"U8\" , \"shape\" : [ 1 ] , \"data_offsets\" : [ 0 , 1 ] } }\t", 1), "a", []int{1}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, f, len(tc.file))
			if tc.tensor != "" {
				tt, ok := f.Tensor(tc.tensor)
				if !ok || !slices.Equal(tt.Shape, tc.shape) {
					t.Fatalf("tensor %q: %v %v", tc.tensor, ok, tt.Shape)
				}
			}
			if md := f.Metadata(); len(md) != len(tc.meta) || (tc.meta != nil && md["a"] != tc.meta["a"]) {
				t.Fatalf("metadata %v, want %v", md, tc.meta)
			}
		})
	}
	// The tensor's slice must not reach its neighbour's bytes.
	f, err := Parse(rawFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 4))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := f.Tensor("a"); cap(a.Data) != 2 {
		t.Errorf("tensor a has capacity %d, reaching into b", cap(a.Data))
	}
}

func TestParseMalformed(t *testing.T) {
	hugeLen := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	tests := []struct {
		name   string
		file   []byte
		phrase string
	}{
		{"empty file", nil, "too short"},
		{"7 bytes", []byte{2, 0, 0, 0, 0, 0, 0}, "too short"},
		{"header length over limit", append(hugeLen, "{}"...), "exceeds the 100000000-byte limit"},
		{"header length 100000001", append([]byte{0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0}, "{}"...), "exceeds"},
		{"header past end", append([]byte{100, 0, 0, 0, 0, 0, 0, 0}, "{}"...), "runs past the end of the file"},
		{"zero-length header", rawFile("", 0), "not a JSON object"},
		{"array header", rawFile("[]", 0), "not a JSON object"},
		{"string header", rawFile(`"x"`, 0), "not a JSON object"},
		{"invalid UTF-8", rawFile("{\"\xff\":1}", 0), "UTF-8"},
		{"cut JSON", rawFile(`{"a":{"dtype":"U8"`, 0), "header JSON ends early"},
		{"bad JSON", rawFile(`{"a":{"dtype" "U8"}}`, 0), "invalid header JSON"},
		{"trailing garbage", rawFile(`{}x`, 0), "after the header object"},
		{"two objects", rawFile(`{} {}`, 0), "after the header object"},
		{"metadata number", rawFile(`{"__metadata__":1}`, 0), "__metadata__ must be an object of strings"},
		{"metadata value", rawFile(`{"__metadata__":{"format":1}}`, 0), `value of "format" is not a string`},
		{"metadata duplicate key", rawFile(`{"__metadata__":{"a":"1","a":"2"}}`, 0), `key "a" appears twice`},
		{"metadata twice", rawFile(`{"__metadata__":{},"__metadata__":{}}`, 0), "__metadata__ appears twice"},
		{"entry not object", rawFile(`{"x":[1]}`, 0), `tensor "x": entry is not a JSON object`},
		{"unknown dtype", rawFile(`{"x":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}`, 4), `tensor "x": unknown dtype "F33"`},
		{"lower-case dtype", rawFile(`{"x":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}`, 4), `unknown dtype "f32"`},
		{"dtype number", rawFile(`{"x":{"dtype":1,"shape":[1],"data_offsets":[0,4]}}`, 4), "dtype is not a string"},
		{"dtype twice", rawFile(`{"x":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), "dtype appears twice"},
		{"shape twice", rawFile(`{"x":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}`, 1), "shape appears twice"},
		{"offsets twice", rawFile(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"data_offsets":[0,1]}}`, 1), "data_offsets appears twice"},
		{"missing dtype", rawFile(`{"x":{"shape":[1],"data_offsets":[0,4]}}`, 4), `tensor "x": missing dtype`},
		{"missing shape", rawFile(`{"x":{"dtype":"F32","data_offsets":[0,4]}}`, 4), "missing shape"},
		{"missing offsets", rawFile(`{"x":{"dtype":"F32","shape":[1]}}`, 4), "missing data_offsets"},
		{"negative dim", rawFile(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "shape holds negative -1"},
		{"fractional dim", rawFile(`{"x":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}`, 4), "not a non-negative 64-bit integer"},
		{"exponent dim", rawFile(`{"x":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, 4), "not a non-negative 64-bit integer"},
		{"string dim", rawFile(`{"x":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, 4), "not a number"},
		{"shape not array", rawFile(`{"x":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}`, 4), "shape is not an array"},
		{"dim too large", rawFile(`{"x":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,4]}}`, 4), "too large"},
		{"offset over uint64", rawFile(`{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}`, 4), "not a non-negative 64-bit integer"},
		{"three offsets", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, 8), "want [begin, end]"},
		{"one offset", rawFile(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, 8), "want [begin, end]"},
		{"offsets out of order", rawFile(`{"x.weight":{"dtype":"U8","shape":[2],"data_offsets":[10,8]}}`, 16), `safetensors: tensor "x.weight": data_offsets [10, 8] out of order`},
		{"offsets past data", rawFile(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 7), "outside the data section of 7 bytes"},
		{"size mismatch", rawFile(`{"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}`, 24), "needs 24 bytes but data_offsets [0, 20] span 20"},
		{"element count overflow", rawFile(`{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "overflows"},
		{"byte count overflow", rawFile(`{"x":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}}`, 4), "overflows"},
		{"overlap", rawFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 8), `tensor "b": data_offsets [2, 6] overlap tensor "a" at [0, 4]`},
		{"contained", rawFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, 8), "overlap"},
		{"same range", rawFile(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, 8), "overlap"},
		{"duplicate tensor", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), `tensor "a": appears twice`},
		{"deep nesting", rawFile(`{"a":{"x":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+`}}`, 0), "invalid header JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.file)
			wantErr(t, err, tc.phrase)
		})
	}
}

// TestOpenErrorsNameTheFile checks that Open prefixes errors with the path.
func TestOpenErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	writeFile(t, path, rawFile(`{"x.weight":{"dtype":"U8","shape":[2],"data_offsets":[10,8]}}`, 16))
	_, err := Open(path)
	wantErr(t, err, path+`: tensor "x.weight": data_offsets [10, 8] out of order`)

	empty := filepath.Join(dir, "empty.safetensors")
	writeFile(t, empty, nil)
	_, err = Open(empty)
	wantErr(t, err, empty+": file is 0 bytes")

	_, err = Open(filepath.Join(dir, "missing.safetensors"))
	if !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
	_, err = Open(dir)
	wantErr(t, err, "not a regular file")
}

// TestTruncated cuts a golden file at every length up to a few hundred bytes
// past its header and at points of its data section: every cut must fail.
func TestTruncated(t *testing.T) {
	for _, rel := range []string{"images/images.safetensors", "blip2-itm/golden.safetensors"} {
		data := readGolden(t, rel)
		if _, err := Parse(data); err != nil {
			t.Fatal(err)
		}
		f, _ := Parse(data)
		headerEnd := f.dataOff
		var cuts []int
		for n := 0; n <= headerEnd+300 && n < len(data); n++ {
			cuts = append(cuts, n)
		}
		for _, n := range []int{len(data) / 2, len(data) - 4096, len(data) - 1} {
			cuts = append(cuts, n)
		}
		for _, n := range cuts {
			if _, err := Parse(data[:n:n]); err == nil {
				t.Fatalf("%s cut to %d of %d bytes parsed without error", rel, n, len(data))
			}
		}
		// Open of a truncated copy too: the error names the file.
		path := filepath.Join(t.TempDir(), "cut.safetensors")
		writeFile(t, path, data[:len(data)-1])
		_, err := Open(path)
		wantErr(t, err, "outside the data section")
	}
}

// TestBitFlips flips every bit of a golden header: each copy must parse
// to a consistent file or fail, never panic.
func TestBitFlips(t *testing.T) {
	data := bytes.Clone(readGolden(t, "blip2-itm/golden.safetensors"))
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	end := f.dataOff + 64
	var ok, failed int
	for i := 0; i < end; i++ {
		for bit := 0; bit < 8; bit++ {
			data[i] ^= 1 << bit
			g, err := Parse(data)
			if err == nil {
				ok++
				checkInvariants(t, g, len(data))
			} else {
				failed++
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("multi-line error %q", err)
				}
			}
			data[i] ^= 1 << bit
		}
	}
	t.Logf("%d bit flips: %d parsed consistently, %d rejected", ok+failed, ok, failed)
	if failed == 0 {
		t.Error("no bit flip was rejected")
	}
}

// TestOpenDoesNotReadData maps a 16 GB sparse file and checks with mincore
// that Open touched only the header page: opening a real checkpoint is
// instant and costs no RAM.
func TestOpenDoesNotReadData(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("needs a 64-bit address space")
	}
	const size = 16 << 30
	path := filepath.Join(t.TempDir(), "big.safetensors")
	var buf bytes.Buffer
	hdr := rawFile(`{"w":{"dtype":"BF16","shape":[8589934592],"data_offsets":[0,17179869184]}}`, 0)
	hdr = append(hdr, bytes.Repeat([]byte{' '}, (8-len(hdr)%8)%8)...)
	hdr[0] = byte(len(hdr) - 8)
	buf.Write(hdr)
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(int64(len(hdr)) + size); err != nil {
		fh.Close()
		t.Skipf("cannot make a sparse 16 GB file here: %v", err)
	}
	fh.Close()
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := f.Tensor("w")
	if len(w.Data) != size || w.NumElements() != 8<<30 {
		t.Fatalf("tensor of %d bytes", len(w.Data))
	}
	resident, err := residentPages(f.data)
	if err != nil {
		t.Skipf("mincore: %v", err)
	}
	if resident > 4 {
		t.Errorf("%d pages of a 16 GB file resident after Open, want only the header", resident)
	}
	t.Logf("16 GB file: %d resident pages after Open", resident)
}

// TestRows takes leading rows of a tensor.
func TestRows(t *testing.T) {
	v := []float32{1, 2, 3, 4, 5, 6}
	w := Tensor{Name: "w", DType: F32, Shape: []int{3, 2}, Data: F32Tensor("w", []int{3, 2}, v).Data}
	for n, want := range map[int][]float32{0: {}, 1: {1, 2}, 3: {1, 2, 3, 4, 5, 6}} {
		r, err := w.Rows(n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Float32()
		if err != nil || !slices.Equal(got, want) || !slices.Equal(r.Shape, []int{n, 2}) {
			t.Errorf("Rows(%d): %v %v %v", n, got, r.Shape, err)
		}
	}
	for _, n := range []int{-1, 4} {
		if _, err := w.Rows(n); err == nil {
			t.Errorf("Rows(%d) accepted", n)
		}
	}
	if _, err := (Tensor{Name: "s", DType: F32, Data: make([]byte, 4)}).Rows(0); err == nil {
		t.Error("Rows of a scalar accepted")
	}
}
