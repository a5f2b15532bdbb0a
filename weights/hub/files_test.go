package hub

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNeeded(t *testing.T) {
	yes := []string{
		"config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
		"model.safetensors", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
		"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
		"tokenizer.model", "spiece.model", "vocab.json", "merges.txt", "vocab.txt",
		"qformer_tokenizer/vocab.txt", "qformer_tokenizer/tokenizer.json", "qformer_tokenizer/tokenizer_config.json",
		"qformer_tokenizer/special_tokens_map.json", "qformer_tokenizer/added_tokens.json",
	}
	no := []string{
		"pytorch_model.bin", "pytorch_model-00001-of-00002.bin", "pytorch_model.bin.index.json",
		"tf_model.h5", "flax_model.msgpack", "rust_model.ot", "model.pt", ".gitattributes", "README.md",
		"onnx/model.safetensors", "qformer_tokenizer/config.json", "sub/config.json", "qformer_tokenizer/x.safetensors",
	}
	for _, p := range yes {
		if !Needed(p) {
			t.Errorf("Needed(%q) = false", p)
		}
	}
	for _, p := range no {
		if Needed(p) {
			t.Errorf("Needed(%q) = true", p)
		}
	}
}

func paths(fs []File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

func listing(names ...string) []File {
	var fs []File
	for _, n := range names {
		fs = append(fs, File{Path: n, Size: 1, OID: strings.Repeat("a", 40)})
	}
	return fs
}

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []File
		want  []string
		err   string
	}{
		{"sharded (old layout, pickles beside)", listing(".gitattributes", "README.md", "config.json", "merges.txt",
			"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
			"preprocessor_config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model.bin.index.json",
			"special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.json"),
			[]string{"config.json", "merges.txt", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
				"model.safetensors.index.json", "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json",
				"tokenizer_config.json", "vocab.json"}, ""},
		{"single file wins over shards", listing("config.json", "model.safetensors", "model-00001-of-00002.safetensors",
			"model.safetensors.index.json", "vocab.txt"), []string{"config.json", "model.safetensors", "vocab.txt"}, ""},
		{"qformer tokenizer", listing("config.json", "model.safetensors", "qformer_tokenizer/vocab.txt", "qformer_tokenizer/README.md"),
			[]string{"config.json", "model.safetensors", "qformer_tokenizer/vocab.txt"}, ""},
		{"pickles only", listing("config.json", "pytorch_model.bin"), nil, "only pytorch_model.bin"},
		{"no weights", listing("config.json", "README.md"), nil, "no .safetensors weights"},
		{"no config", listing("model.safetensors"), nil, "no config.json"},
	} {
		got, err := Select(tc.files)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(paths(got), tc.want) {
			t.Errorf("%s: %v, %v\nwant %v", tc.name, paths(got), err, tc.want)
		}
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"config.json", "qformer_tokenizer/vocab.txt", "a/b/c.d", "..a", "a..b", "ünïcode.json"} {
		if err := checkPath(p); err != nil {
			t.Errorf("checkPath(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "../x", "a/../../x", "..", ".", "./x", "/etc/passwd", "a//b", "a/", `C:\x`, "C:x", `a\..\b`,
		"a/./b", "x\x00y", "x\ny", "qformer_tokenizer/../../../evil"} {
		if err := checkPath(p); err == nil {
			t.Errorf("checkPath(%q) accepted", p)
		}
	}
}

func TestParseTree(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	oid := strings.Repeat("c", 40)
	good := `[{"type":"directory","path":"qformer_tokenizer","size":0,"oid":"` + oid + `"},
		{"type":"file","path":"config.json","size":12,"oid":"` + oid + `"},
		{"type":"file","path":"model.safetensors","size":135,"oid":"` + oid + `","lfs":{"oid":"` + strings.ToUpper(sha) + `","size":5000,"pointerSize":135},"xetHash":"x"}]`
	fs, err := parseTree([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []File{{Path: "config.json", Size: 12, OID: oid}, {Path: "model.safetensors", Size: 5000, SHA256: sha, OID: oid}}
	if !slices.Equal(fs, want) {
		t.Errorf("got %+v\nwant %+v", fs, want)
	}
	if fs[1].Blob() != sha || fs[0].Blob() != oid || !fs[1].LFS() || fs[0].LFS() {
		t.Errorf("Blob/LFS wrong: %+v", fs)
	}
	for name, body := range map[string]string{
		"dotdot":        `[{"type":"file","path":"../evil","size":1,"oid":"` + oid + `"}]`,
		"absolute":      `[{"type":"file","path":"/etc/passwd","size":1,"oid":"` + oid + `"}]`,
		"dotdot dir":    `[{"type":"directory","path":"a/../..","size":0,"oid":"` + oid + `"}]`,
		"bad oid":       `[{"type":"file","path":"config.json","size":1,"oid":"../../x"}]`,
		"bad sha256":    `[{"type":"file","path":"model.safetensors","size":1,"oid":"` + oid + `","lfs":{"oid":"../x","size":1}}]`,
		"negative size": `[{"type":"file","path":"config.json","size":-1,"oid":"` + oid + `"}]`,
		"not json":      `<html>`,
	} {
		if _, err := parseTree([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseTree(f *testing.F) {
	f.Add([]byte(`[{"type":"file","path":"config.json","size":12,"oid":"` + strings.Repeat("c", 40) + `"}]`))
	f.Add([]byte(`[{"type":"file","path":"a/b.safetensors","size":1,"oid":"x","lfs":{"oid":"` + strings.Repeat("a", 64) + `","size":9}}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := parseTree(b)
		if err != nil {
			return
		}
		for _, f := range fs {
			// Every accepted file lands inside the snapshot and blobs/.
			if checkPath(f.Path) != nil || f.Size < 0 || !(isHex(f.Blob(), 64) || isHex(f.Blob(), 40)) {
				t.Errorf("accepted %+v", f)
			}
			root := filepath.Join("cache", "snapshots", "c")
			if p := snapshotPath("cache", "c", f.Path); !strings.HasPrefix(p, root+string(filepath.Separator)) {
				t.Errorf("%q escapes to %q", f.Path, p)
			}
		}
	})
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct {
		links []string
		want  string
	}{
		{nil, ""},
		{[]string{`<https://hf.co/api/models/a/b/tree/c?cursor=xyz>; rel="next"`}, "https://hf.co/api/models/a/b/tree/c?cursor=xyz"},
		{[]string{`<https://x/1>; rel="prev", <https://x/3>; rel="next"`}, "https://x/3"},
		{[]string{`<https://x/1>; rel="prev"`, `</api/next>; rel=next`}, "/api/next"},
		{[]string{`https://x/3; rel="next"`}, ""},
		{[]string{`<https://x/3>; rel="nextish"`}, ""},
	} {
		h := http.Header{}
		for _, l := range tc.links {
			h.Add("Link", l)
		}
		if got := nextLink(h); got != tc.want {
			t.Errorf("nextLink(%q) = %q, want %q", tc.links, got, tc.want)
		}
	}
}

func FuzzNextLink(f *testing.F) {
	f.Add(`<https://x/3>; rel="next"`)
	f.Fuzz(func(t *testing.T, s string) {
		h := http.Header{"Link": {s}}
		if got := nextLink(h); got != "" && !strings.Contains(s, "<"+got+">") {
			t.Errorf("nextLink(%q) = %q", s, got)
		}
	})
}

func TestContentRange(t *testing.T) {
	for _, tc := range []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */200", 0, 0, false},
		{"bytes -1-5/6", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes 5-9/x", 0, 0, false},
	} {
		s, tot, ok := contentRange(tc.in)
		if ok != tc.ok || (ok && (s != tc.start || tot != tc.total)) {
			t.Errorf("contentRange(%q) = %d, %d, %v", tc.in, s, tot, ok)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	f.Add("bytes 100-199/200")
	f.Fuzz(func(t *testing.T, s string) {
		if start, total, ok := contentRange(s); ok && (start < 0 || total < -1) {
			t.Errorf("contentRange(%q) = %d, %d", s, start, total)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999", time.Duration(1<<31) * time.Second, true},
	} {
		got, ok := retryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	home := t.TempDir()
	clear := func() {
		for _, k := range []string{"HF_HOME", "XDG_CACHE_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT",
			"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DOWNLOAD_TIMEOUT"} {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		t.Setenv("HOME", home)
		t.Setenv("USERPROFILE", home)
	}
	check := func(name string, want Config) {
		t.Helper()
		got, err := ConfigFromEnv()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	clear()
	check("defaults", Config{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(home, ".cache", "huggingface", "hub"), Timeout: DefaultTimeout})

	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "xdg"))
	check("XDG", Config{Endpoint: DefaultEndpoint, CacheDir: filepath.Join(home, "xdg", "huggingface", "hub"), Timeout: DefaultTimeout})

	t.Setenv("HF_HOME", "~/hfhome")
	if err := os.MkdirAll(filepath.Join(home, "hfhome"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "hfhome", "token"), []byte("  hf_fromfile\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_ENDPOINT", "https://mirror.example/")
	t.Setenv("HF_HUB_OFFLINE", "yes")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")
	check("HF_HOME, token file", Config{Endpoint: "https://mirror.example", CacheDir: filepath.Join(home, "hfhome", "hub"),
		Token: "hf_fromfile", Offline: true, Timeout: 2500 * time.Millisecond})

	t.Setenv("HUGGINGFACE_HUB_CACHE", "/legacy")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "hf_legacy")
	t.Setenv("HF_HUB_OFFLINE", "0")
	t.Setenv("TRANSFORMERS_OFFLINE", "TRUE")
	check("legacy names", Config{Endpoint: "https://mirror.example", CacheDir: "/legacy", Token: "hf_legacy", Offline: true, Timeout: 2500 * time.Millisecond})

	t.Setenv("HF_HUB_CACHE", "$HOME/c")
	t.Setenv("HF_TOKEN", "hf_env\n")
	t.Setenv("TRANSFORMERS_OFFLINE", "")
	check("HF_HUB_CACHE, HF_TOKEN", Config{Endpoint: "https://mirror.example", CacheDir: home + "/c", Token: "hf_env", Timeout: 2500 * time.Millisecond})

	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("HF_TOKEN_PATH", filepath.Join(home, "none"))
	check("no token", Config{Endpoint: "https://mirror.example", CacheDir: home + "/c", Timeout: 2500 * time.Millisecond})

	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "soon")
	if _, err := ConfigFromEnv(); err == nil || !strings.Contains(err.Error(), "HF_HUB_DOWNLOAD_TIMEOUT") {
		t.Errorf("bad timeout: %v", err)
	}
}
