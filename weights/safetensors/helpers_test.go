package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const golden = "../../testdata/golden"

// rawFile assembles a file from a literal header and dataLen zero bytes of
// data, without any of the writer's checks.
func rawFile(header string, dataLen int) []byte {
	b := make([]byte, 8, 8+len(header)+dataLen)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, dataLen)...)
}

func goldenFiles(t testing.TB) []string {
	t.Helper()
	var all []string
	for _, pat := range []string{"*/golden.safetensors", "*/hf/model.safetensors", "images/images.safetensors"} {
		m, err := filepath.Glob(filepath.Join(golden, pat))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	if len(all) < 11 {
		t.Fatalf("found only %d golden safetensors files under %s", len(all), golden)
	}
	return all
}

func readGolden(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(golden, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err error, phrase string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", phrase)
	}
	if !strings.Contains(err.Error(), phrase) {
		t.Fatalf("error %q does not contain %q", err, phrase)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error %q spans several lines", err)
	}
}

// toWrite turns a parsed file back into writer input.
func toWrite(f *File) []WriteTensor {
	var out []WriteTensor
	for _, name := range f.Names() {
		t, _ := f.Tensor(name)
		out = append(out, WriteTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: t.Data})
	}
	return out
}

// checkInvariants asserts what every successfully parsed file guarantees.
func checkInvariants(t testing.TB, f *File, size int) {
	t.Helper()
	for _, name := range f.Names() {
		tt, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("Names lists %q but Tensor does not find it", name)
		}
		if got, want := len(tt.Data), tt.NumElements()*tt.DType.Size(); got != want {
			t.Fatalf("tensor %q: %d bytes, want %d", name, got, want)
		}
		if len(tt.Data) > size {
			t.Fatalf("tensor %q larger than the file", name)
		}
		if _, err := tt.Float32(); err != nil {
			t.Fatalf("tensor %q: Float32: %v", name, err)
		}
		if tt.DType.isInteger() {
			if _, err := tt.Int64(); err != nil && tt.DType != U64 {
				t.Fatalf("tensor %q: Int64: %v", name, err)
			}
		}
	}
}
