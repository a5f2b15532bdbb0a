package app

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParseSetting: any text is read or refused without a panic, and a
// setting read is read back the same from its String.
func FuzzParseSetting(f *testing.F) {
	for _, s := range []string{"vqa", "num_beams=1", "vqa+max_tokens=5", "caption max_tokens=5 num_beams=3", "", "+", "=", "vqa vqa", "eos_token_id=2,3", "temperature=1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSetting(spec)
		if err != nil {
			return
		}
		back, err := ParseSetting(s.String())
		if err != nil {
			t.Fatalf("%q read as %q, which is refused: %v", spec, s.String(), err)
		}
		if back.String() != s.String() || back.preset() != s.preset() || !reflect.DeepEqual(back.Changes, s.Changes) {
			t.Fatalf("%q: %q read back as %q", spec, s.String(), back.String())
		}
	})
}

// FuzzOpenBatchLog: any output file is read or refused, one line, without
// a panic; read, it ends with a whole line (an unfinished last one cut)
// and its answers are each there once; refused, it is left as it was.
func FuzzOpenBatchLog(f *testing.F) {
	good := `{"image":"a.jpg","model":"m","prompt":"","settings":"reference","answer":"x","params":{"temperature":0,"top_p":1,"top_k":0,"min_p":0,"seed":-1,"max_tokens":3,"length_penalty":1}}` + "\n"
	for _, s := range []string{"", good, good + good, good + `{"image":"b`, "\n\n", "null\n", "{}\n", good + "[1]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "r.jsonl")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := OpenBatchLog(path)
		after, _ := os.ReadFile(path)
		if err != nil {
			if bytes.Contains([]byte(err.Error()), []byte("\n")) || !bytes.Equal(after, data) {
				t.Fatalf("refused %q with %q, file now %q", data, err, after)
			}
			return
		}
		defer l.Close()
		if len(after) > 0 && after[len(after)-1] != '\n' || !bytes.HasPrefix(data, after) {
			t.Fatalf("%q became %q", data, after)
		}
		seen := map[BatchKey]bool{}
		for _, r := range l.Records() {
			if seen[r.Key()] || !l.Done(r.Key()) {
				t.Fatalf("record %+v twice or not done", r.Key())
			}
			seen[r.Key()] = true
		}
	})
}
