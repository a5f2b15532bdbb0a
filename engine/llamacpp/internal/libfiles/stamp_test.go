package libfiles

import (
	"strings"
	"testing"
)

func FuzzParseStamp(f *testing.F) {
	f.Add([]byte("@node-llama-cpp/linux-x64@3.21.1\nsha512-x\n5 " + strings.Repeat("ab", 32) + " libllama.v0.4.0.so\n"))
	f.Add([]byte("@node-llama-cpp/linux-x64@3.21.1\nsha512-x\nlibllama.v0.4.0.so\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStamp(data)
		if err != nil {
			return
		}
		again, err := ParseStamp(s.Format())
		if err != nil {
			t.Fatalf("formatted stamp does not parse: %v", err)
		}
		if string(again.Format()) != string(s.Format()) {
			t.Fatalf("round trip differs")
		}
	})
}

func TestParseStamp(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	head := "@node-llama-cpp/win-x64@3.21.1\nsha512-x\n"
	for _, tc := range []struct {
		in, err string
	}{
		{head + "5 " + sum + " llama.v0.4.0.dll\r\n7 " + sum + " ggml-base.dll\n", ""},
		{head + "llama.v0.4.0.dll\n", "lists no sizes"},
		{head, "stamp too short"},
		{"left-pad@1\nsha512-x\n5 " + sum + " a\n", "not an @node-llama-cpp package"},
		{"@node-llama-cpp/x@1\nmd5-x\n5 " + sum + " a\n", "not an npm integrity"},
		{head + "-5 " + sum + " a\n", "bad size"},
		{head + "5 " + sum[:10] + " a\n", "bad sha256"},
		{head + "5 " + strings.Repeat("zz", 32) + " a\n", "bad sha256"},
		{head + "5 " + sum + " ../a\n", "bad file name"},
		{head + "5 " + sum + " a b\n", "bad file name"},
		{head + "5 " + sum + " a\x1b]52\n", "bad file name"},
		{head + "5 " + sum + " a\n5 " + sum + " a\n", "a listed twice"},
	} {
		s, err := ParseStamp([]byte(tc.in))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.in, err)
				continue
			}
			p, ok := s.Package()
			if !ok || p.Variant != CPU || p.GOOS != "windows" || len(s.Files) != 2 || s.Files[0].Size != 5 || !s.Has("ggml-base.dll") {
				t.Errorf("%q: parsed %+v (package %+v)", tc.in, s, p)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		goos, variant string
		want          Files
	}{
		{"linux", CPU, Files{CPU, "libggml-base.so", "libggml.v0.4.0.so", "libllama.v0.4.0.so", ""}},
		{"linux", CUDA, Files{CUDA, "libggml-base.so", "libggml.cuda.v0.4.0.so", "libllama.cuda.v0.4.0.so", "libggml-cuda.so"}},
		{"darwin", Metal, Files{Metal, "libggml-base.dylib", "libggml.metal.v0.4.0.dylib", "libllama.metal.v0.4.0.dylib", "libggml-metal.so"}},
		{"windows", CPU, Files{CPU, "ggml-base.dll", "ggml.v0.4.0.dll", "llama.v0.4.0.dll", ""}},
		{"windows", Vulkan, Files{Vulkan, "ggml-base.dll", "ggml.vulkan.v0.4.0.dll", "llama.vulkan.v0.4.0.dll", "ggml-vulkan.dll"}},
	} {
		if got := Names(tc.goos, tc.variant); got != tc.want {
			t.Errorf("Names(%s, %s) = %+v, want %+v", tc.goos, tc.variant, got, tc.want)
		}
	}
	for _, tc := range []struct {
		goos, name string
		want       bool
	}{
		{"linux", "libggml-cpu-zen4.so", true}, {"linux", "libggml-cuda.so", true}, {"linux", "libggml-base.so", false},
		{"linux", "libllama.v0.4.0.so", false}, {"darwin", "libggml-metal.so", true}, {"darwin", "libggml-base.dylib", false},
		{"windows", "ggml-cpu-x64.dll", true}, {"windows", "GGML-CUDA.DLL", true}, {"windows", "ggml.v0.4.0.dll", false},
	} {
		if got := IsBackendModule(tc.goos, tc.name); got != tc.want {
			t.Errorf("IsBackendModule(%s, %s) = %v", tc.goos, tc.name, got)
		}
	}
}
