package capi

import (
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ebitengine/purego"
)

// ggml_log_level values.
const (
	logLevelError = 4
	logLevelCont  = 5 // continues the previous message
)

// logSink receives llama.cpp's log text. It also keeps the error messages
// since the last takeError, so that a failed call can say why instead of only
// "failed".
type logSink struct {
	mu        sync.Mutex
	w         io.Writer
	lastLevel int32
	errs      []string
}

// maxErrs bounds the error messages kept between two takeError calls.
const maxErrs = 8

func (s *logSink) setWriter(w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *logSink) write(level int32, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case level == logLevelError:
		if len(s.errs) < maxErrs {
			s.errs = append(s.errs, text)
		}
	case level == logLevelCont && s.lastLevel == logLevelError:
		if n := len(s.errs); n > 0 && n <= maxErrs {
			s.errs[n-1] += text
		}
	}
	if level != logLevelCont {
		s.lastLevel = level
	}
	if s.w != nil {
		s.w.Write([]byte(text)) // a failing log file must not break inference
	}
}

// takeError returns the errors llama.cpp logged since the previous call, as
// one line ("" if none), and forgets them.
func (s *logSink) takeError() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, e := range s.errs {
		if e = strings.Join(strings.Fields(e), " "); e != "" {
			parts = append(parts, e)
		}
	}
	s.errs = s.errs[:0]
	return strings.Join(parts, "; ")
}

// withReason appends the errors llama.cpp logged, if any, to msg.
func (l *Library) withReason(msg string) string {
	if r := l.log.takeError(); r != "" {
		return msg + ": " + r
	}
	return msg
}

var (
	activeSink atomic.Pointer[logSink]
	logCBOnce  sync.Once
	logCB      uintptr
)

// logCallback returns the C function pointer for llama_log_set. purego
// callbacks are a limited, never-freed resource, so there is exactly one;
// it may run on llama.cpp's own threads.
func logCallback() uintptr {
	logCBOnce.Do(func() {
		// The C function returns void; the result is there because Windows
		// callbacks must return one word.
		logCB = purego.NewCallback(func(level int32, text *byte, _ uintptr) uintptr {
			if s := activeSink.Load(); s != nil {
				s.write(level, cString(text))
			}
			return 0
		})
	})
	return logCB
}
