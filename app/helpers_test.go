package app

import (
	"context"
	"github.com/blip2chat/blip2chat/engine/llamacpp/llamatest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blip2chat/blip2chat/engine/demo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if testData != "" {
		os.RemoveAll(testData)
	}
	if code == 0 {
		// Every app closed by the tests must have stopped its goroutines.
		// engine/kernels keeps a process-wide worker pool by design.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/blip2chat/blip2chat/engine/kernels.(*Pool).worker")); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

var (
	demoOnce sync.Once
	testData string
	demoErr  error
)

// llamaLib is the library the tests use (see llamatest.LibDir).
func llamaLib(t testing.TB) string { return llamatest.LibDir(t) }

// demoSource is the real demo model (built once per test run), opened by
// the real engine, with reproducible sampling settings.
func demoSource(t testing.TB) *ModelSource {
	t.Helper()
	lib := llamaLib(t)
	demoOnce.Do(func() {
		testData, demoErr = os.MkdirTemp("", "blip2chat-app-test-")
		if demoErr == nil {
			_, demoErr = demo.Ensure(context.Background(), testData)
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return DemoSource(testData, OpenOptions{LlamaLib: lib})
}

// testSettings sample with a fixed seed: answers differ between retries of
// one turn only through the seed, and are long enough to cancel.
var testSettings = Settings{Temperature: 0.8, TopP: 0.95, TopK: 40, MaxTokens: 24, Seed: 7,
	Template: "Question: {prompt} Answer:", Threads: 1}

// newTestApp starts an app on the demo model with its sample image and
// waits until it is ready. It is closed at the end of the test.
func newTestApp(t *testing.T, mod func(*Options)) (*App, string) {
	t.Helper()
	sess := t.TempDir()
	s := testSettings
	o := Options{Model: demoSource(t), SessionsDir: sess, Settings: &s, SaveDir: t.TempDir()}
	if mod != nil {
		mod(&o)
	}
	a := New(o)
	t.Cleanup(func() { a.Close() })
	a.Start()
	waitIdle(t, a)
	if st := a.Snapshot(); !st.HasModel {
		t.Fatalf("model not loaded: %s", transcript(st))
	}
	return a, sess
}

// waitIdle waits until no job runs.
func waitIdle(t testing.TB, a *App) State {
	t.Helper()
	return waitFor(t, a, "idle", func(s State) bool { return !s.Phase.Busy() })
}

// waitFor waits until cond holds for the state.
func waitFor(t testing.TB, a *App, what string, cond func(State) bool) State {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		st := a.Snapshot()
		if cond(st) {
			return st
		}
		select {
		case <-a.Changed():
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; state %v, transcript:\n%s", what, st.Phase, transcript(st))
		}
	}
}

// transcript is the entries as text, for failure messages.
func transcript(st State) string {
	var b strings.Builder
	for _, e := range st.Entries {
		b.WriteString([]string{"Q", "A", "note", "ERROR", "image"}[e.Kind] + ": " + e.Text + "\n")
	}
	return b.String()
}

// lastOf returns the last entry of a kind.
func lastOf(st State, k EntryKind) (Entry, bool) {
	for i := len(st.Entries) - 1; i >= 0; i-- {
		if st.Entries[i].Kind == k {
			return st.Entries[i], true
		}
	}
	return Entry{}, false
}

// sessionOf reads the app's session file back.
func sessionOf(t *testing.T, a *App) *Session {
	t.Helper()
	st := a.Snapshot()
	if st.SessionPath == "" {
		t.Fatal("no session file")
	}
	s, err := LoadSession(st.SessionPath)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
