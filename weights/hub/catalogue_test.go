package hub

import (
	"math"
	"strings"
	"testing"
)

func TestCatalogueEntries(t *testing.T) {
	want := []string{
		"blip2-opt-2.7b", "blip2-opt-6.7b", "blip2-opt-2.7b-coco", "blip2-opt-6.7b-coco",
		"blip2-flan-t5-xl", "blip2-flan-t5-xl-coco", "blip2-flan-t5-xxl",
		"instructblip-vicuna-7b", "instructblip-vicuna-13b", "instructblip-flan-t5-xl", "instructblip-flan-t5-xxl",
		"blip2-itm-vit-g", "blip2-itm-vit-g-coco",
	}
	cat := Catalogue()
	if len(cat) != len(want) {
		t.Fatalf("%d entries, want %d", len(cat), len(want))
	}
	for i, m := range cat {
		if m.Name != want[i] || m.Repo != "Salesforce/"+want[i] {
			t.Errorf("entry %d: %s (%s), want %s", i, m.Name, m.Repo, want[i])
		}
		wantLLM := "" // blip2-itm: retrieval only
		switch {
		case strings.Contains(m.Name, "opt"):
			wantLLM = "opt"
		case strings.Contains(m.Name, "t5"):
			wantLLM = "t5"
		case strings.Contains(m.Name, "vicuna"):
			wantLLM = "llama"
		}
		if m.LLM != wantLLM || m.HasLLM() != (wantLLM != "") {
			t.Errorf("%s: LLM %q, want %q", m.Name, m.LLM, wantLLM)
		}
		if wantFam := map[bool]string{true: "instructblip", false: "blip-2"}[strings.HasPrefix(m.Name, "instructblip")]; m.Family != wantFam {
			t.Errorf("%s: family %q", m.Name, m.Family)
		}
		if wantSize := map[bool]int{true: 364, false: 224}[strings.HasSuffix(m.Name, "-coco")]; m.ImageSize != wantSize {
			t.Errorf("%s: image size %d, want %d", m.Name, m.ImageSize, wantSize)
		}
		wantType := map[string]string{"opt": "q8_0", "t5": "q4_k_m", "llama": "q4_k_m", "": ""}[m.LLM]
		if m.VisionType != "q8_0" || m.LLMType != wantType {
			t.Errorf("%s: types %s/%s, want q8_0/%s", m.Name, m.VisionType, m.LLMType, wantType)
		}
		if !(m.ConvertedBytes > 0 && m.ConvertedBytes < m.DownloadBytes/2 && m.RAMBytes > m.ConvertedBytes) {
			t.Errorf("%s: sizes download %d converted %d RAM %d", m.Name, m.DownloadBytes, m.ConvertedBytes, m.RAMBytes)
		}
		if m.Layout != layoutOld && m.Layout != layoutNew {
			t.Errorf("%s: layout %q", m.Name, m.Layout)
		}
		if got, ok := Lookup(strings.ToUpper(m.Name)); !ok || got.Name != m.Name {
			t.Errorf("Lookup(%s) = %v, %v", strings.ToUpper(m.Name), got.Name, ok)
		}
		if got, ok := Lookup(m.Repo); !ok || got.Name != m.Name {
			t.Errorf("Lookup(%s) = %v, %v", m.Repo, got.Name, ok)
		}
	}
}

// TestDownloadSizes holds the sizes computed from the shapes to the shard
// sizes the repositories list (hub-checkpoints.md §1, GB = 1e9 as the Hub
// displays them, to three digits: hence 0.5%).
func TestDownloadSizes(t *testing.T) {
	for _, tc := range []struct {
		what   string
		arch   arch
		listed float64 // GB
	}{
		{"blip2-opt-2.7b new (10 + 4.98)", opt(224, 2560, 32, 10240, layoutNew), 10 + 4.98},
		{"blip2-opt-2.7b old (10 + 5.5)", opt(224, 2560, 32, 10240, layoutOld), 10 + 5.5},
		{"blip2-opt-2.7b-coco (main, old: 10 + 5.5)", entryArch("blip2-opt-2.7b-coco"), 10 + 5.5},
		{"blip2-opt-6.7b new", entryArch("blip2-opt-6.7b"), 9.8 + 9.93 + 9.93 + 1.34},
		{"blip2-opt-6.7b old", opt(224, 4096, 32, 16384, layoutOld), 9.8 + 9.93 + 9.93 + 2.17},
		{"blip2-flan-t5-xl new", entryArch("blip2-flan-t5-xl"), 9.96 + 5.81},
		{"blip2-flan-t5-xl old", entryArch("blip2-flan-t5-xl"), 9.44 + 6.33},
		{"blip2-flan-t5-xxl new", entryArch("blip2-flan-t5-xxl"), 9.97 + 9.87 + 9.97 + 9.93 + 9.18},
		{"blip2-flan-t5-xxl old (one more embedding copy)", t5(224, 4096, 64, 10240, false, 3, layoutOld), 9.37 + 9.87 + 9.99 + 10 + 9.7 + 0.526},
		{"instructblip-vicuna-7b new", entryArch("instructblip-vicuna-7b"), 9.9 + 9.96 + 9.92 + 1.88},
		{"instructblip-vicuna-7b old", llama(4096, 32, 11008, layoutOld), 9.9 + 9.96 + 9.92 + 1.87},
		{"instructblip-vicuna-13b old", entryArch("instructblip-vicuna-13b"), 9.87 + 9.87 + 9.94 + 9.94 + 9.87 + 7.28},
		{"instructblip-flan-t5-xl new", entryArch("instructblip-flan-t5-xl"), 9.98 + 6.11},
		{"blip2-itm-vit-g", entryArch("blip2-itm-vit-g"), 4.69},
	} {
		got := float64(tc.arch.sizes("q8_0", "q8_0").download) / 1e9
		if rel := math.Abs(got-tc.listed) / tc.listed; rel > 0.005 {
			t.Errorf("%s: computed %.3f GB, listed %.3f GB (%.2f%% off)", tc.what, got, tc.listed, 100*rel)
		}
	}
}

func entryArch(name string) arch {
	for _, e := range entries {
		if e.name == name {
			return e.arch
		}
	}
	panic(name)
}

// TestQ4KMSize holds the q4_k_m estimate to a file llama.cpp made: LLaMA-2
// 7B (vocab 32000) as Q4_K_M is 4.08 GB (TheBloke/Llama-2-7B-GGUF,
// llama-2-7b.Q4_K_M.gguf), tokenizer metadata included.
func TestQ4KMSize(t *testing.T) {
	a := llama(4096, 32, 11008, layoutNew)
	a.vocab = 32000
	var n int64
	for _, ts := range a.llmSide() {
		n += ts.bytesAs("q4_k_m")
	}
	if got := float64(n) / 1e9; math.Abs(got-4.08)/4.08 > 0.005 {
		t.Errorf("LLaMA-2 7B q4_k_m: computed %.3f GB, llama.cpp wrote 4.08 GB", got)
	}
	// use_more_bits keeps half of 32 layers' attn_v at Q6_K, as llama.cpp.
	more := 0
	for i := range 32 {
		if useMoreBits(i, 32) {
			more++
		}
	}
	if more != 16 {
		t.Errorf("use_more_bits picks %d of 32 layers, want 16", more)
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		in      string
		ref     Ref
		catalog string
		err     string
	}{
		{"blip2-opt-2.7b", Ref{"Salesforce/blip2-opt-2.7b", ""}, "blip2-opt-2.7b", ""},
		{" BLIP2-OPT-2.7B@refs/pr/6 ", Ref{"Salesforce/blip2-opt-2.7b", "refs/pr/6"}, "blip2-opt-2.7b", ""},
		{"Salesforce/instructblip-vicuna-7b", Ref{"Salesforce/instructblip-vicuna-7b", ""}, "instructblip-vicuna-7b", ""},
		{"someone/blip2-finetune@51572668da0eb669e01a189dc22abe6088589a24", Ref{"someone/blip2-finetune", "51572668da0eb669e01a189dc22abe6088589a24"}, "", ""},
		{"someone/x.y_z-1@v1.0", Ref{"someone/x.y_z-1", "v1.0"}, "", ""},
		{"blip2", Ref{}, "", "unknown model"},
		{"a/b/c", Ref{}, "", "invalid repository"},
		{"a/b@", Ref{}, "", "empty revision"},
		{"a/b@../x", Ref{}, "", "invalid revision"},
		{"a/b@refs//x", Ref{}, "", "invalid revision"},
		{"a/b@x y", Ref{}, "", "invalid revision"},
		{"a/b@x\\y", Ref{}, "", "invalid revision"},
		{"../b", Ref{}, "", "invalid repository"},
		{"a--b/c", Ref{}, "", "not allowed"},
		{"a/.b", Ref{}, "", "invalid repository"},
		{"/b", Ref{}, "", "invalid repository"},
	} {
		ref, m, err := Resolve(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Resolve(%q) = %v, %v; want error %q", tc.in, ref, err, tc.err)
			}
			continue
		}
		if err != nil || ref != tc.ref {
			t.Errorf("Resolve(%q) = %v, %v; want %v", tc.in, ref, err, tc.ref)
			continue
		}
		if name := func() string {
			if m == nil {
				return ""
			}
			return m.Name
		}(); name != tc.catalog {
			t.Errorf("Resolve(%q): catalogue entry %q, want %q", tc.in, name, tc.catalog)
		}
	}
	if s := (Ref{"a/b", "v1"}).String(); s != "a/b@v1" {
		t.Errorf("String = %q", s)
	}
	if r := (Ref{Repo: "a/b"}); r.Rev() != "main" || r.String() != "a/b" {
		t.Errorf("Rev = %q, String = %q", r.Rev(), r.String())
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"a/b", "a/b@main", "a/b@refs/pr/1", "../x", "a/b@..", "a/b@/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseRef(s)
		if err != nil {
			return
		}
		// What parses is safe as a cache path: models--ORG--NAME and
		// refs/<revision> stay inside the cache.
		if err := checkPath(strings.ReplaceAll(ref.Repo, "/", "--")); err != nil {
			t.Errorf("%q: repository %q: %v", s, ref.Repo, err)
		}
		if ref.Revision != "" {
			if err := checkPath(ref.Revision); err != nil {
				t.Errorf("%q: revision %q: %v", s, ref.Revision, err)
			}
		}
		if back, err := ParseRef(ref.String()); err != nil || back != ref {
			t.Errorf("%q: round trip %v, %v", s, back, err)
		}
	})
}
