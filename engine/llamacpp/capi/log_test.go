package capi

import (
	"bytes"
	"testing"
)

func TestLogSink(t *testing.T) {
	const info, warn = 2, 3
	for _, tc := range []struct {
		name string
		msgs []struct {
			level int32
			text  string
		}
		wantErr string
	}{
		{"none", nil, ""},
		{"info only", []struct {
			level int32
			text  string
		}{{info, "loading\n"}}, ""},
		{"error with continuation", []struct {
			level int32
			text  string
		}{
			{info, "x\n"}, {logLevelError, "failed to"}, {logLevelCont, " open\n"}, {info, "y"}, {logLevelCont, " more info\n"},
		}, "failed to open"},
		{"several errors", []struct {
			level int32
			text  string
		}{
			{logLevelError, "first\n"}, {warn, "w\n"}, {logLevelError, "second\n"},
		}, "first; second"},
	} {
		var buf bytes.Buffer
		var s logSink
		s.setWriter(&buf)
		want := ""
		for _, m := range tc.msgs {
			s.write(m.level, m.text)
			want += m.text
		}
		if buf.String() != want {
			t.Errorf("%s: writer got %q, want %q", tc.name, buf.String(), want)
		}
		if got := s.takeError(); got != tc.wantErr {
			t.Errorf("%s: takeError = %q, want %q", tc.name, got, tc.wantErr)
		}
		if got := s.takeError(); got != "" {
			t.Errorf("%s: second takeError = %q", tc.name, got)
		}
	}
	// Many errors are bounded.
	var s logSink
	s.setWriter(nil)
	for range 100 {
		s.write(logLevelError, "e")
	}
	if n := len(s.errs); n != maxErrs {
		t.Errorf("kept %d errors, want %d", n, maxErrs)
	}
}
