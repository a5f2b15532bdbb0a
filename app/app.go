// Package app is blip2chat's conversation state machine: it owns the
// loaded model (through Engine), the image, the turns, the settings and the
// session file, runs slow work (loading, encoding, generating) off the
// caller's goroutine, and publishes a State that a user interface renders.
//
// The user interface (ui/) only renders State and sends intents: Submit a
// line of input, Cancel the work in progress, Close. It never touches the
// engine. Every change to State is signalled on Changed; call Snapshot to
// read it, or Refresh to bring a state read before up to date (what a
// screen redrawn at every streamed token does).
package app

import (
	"context"
	"fmt"
	"image"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blip2chat/blip2chat/engine/generate"
	"github.com/blip2chat/blip2chat/engine/lm"
	"github.com/blip2chat/blip2chat/weights/hub"
)

// Phase is what the app is doing.
type Phase int

const (
	Idle        Phase = iota // waiting for input
	NoModel                  // no model to load: the transcript explains how to get one
	Loading                  // opening the model
	Encoding                 // encoding an image
	Generating               // streaming an answer
	Working                  // a short job (tokenizing)
	Downloading              // pulling the model from the Hub (Options.Pull)
)

func (p Phase) String() string {
	return [...]string{"idle", "no model", "loading", "encoding", "generating", "working", "downloading"}[p]
}

// Busy reports whether a job is running.
func (p Phase) Busy() bool { return p >= Loading }

// EntryKind is the kind of a transcript entry.
type EntryKind int

const (
	EntryQuestion EntryKind = iota // the user's question
	EntryAnswer                    // the model's answer (streaming while Streaming)
	EntryNote                      // information from the app (Text, and Rows if a table)
	EntryError                     // something went wrong (one line)
	EntryImage                     // a new image was loaded (Text is its path)
	EntryReset                     // the conversation restarted, same image (/reset)
)

// Entry is one item of the transcript.
type Entry struct {
	Kind EntryKind
	Text string
	// Rows is a note's table (/info, /set), under Text: the interface
	// aligns the columns and wraps a value under its own column.
	Rows []Row
	// Bars is a note's ranked bar chart (/match, /labels, /search), under
	// Text: the interface draws each fraction as a bar.
	Bars      []Bar
	Time      time.Time
	Streaming bool // the answer is still coming
	// Hypothesis says Text is beam search's best hypothesis so far, which
	// the next step may change (shown dimmed until the answer is final).
	Hypothesis bool
	Stop       lm.StopReason // why the answer ended
	Stats      *Answer       // the finished answer's numbers
	Encoding   *ImageStats   // how an EntryImage's image was encoded (nil when resumed)
	Retries    int           // times the answer was generated again
	Caption    bool          // the question was /caption
	// Tokens say how sure the model was of each piece of an answer's
	// Text (nil while it streams, and for answers that do not say).
	Tokens []TokenConfidence
	// Columns are a note's answers side by side (/compare), under Text.
	Columns []Column
}

// Column is one answer of a comparison: the setting it was made with and
// the answer.
type Column struct {
	Title, Text string
	Stop        lm.StopReason
}

// Row is one row of a note's table: a label ("" continues the row above),
// its value, and a remark on it (what a setting does).
type Row struct {
	Label, Value, Remark string
}

// State is a snapshot of the app for rendering.
type State struct {
	Phase    Phase
	Activity string    // what the running job does, e.g. "encoding image"
	Since    time.Time // when the running job started
	Progress string    // detail of the running job

	HasModel bool
	// Generates says the model generates text (it has decoding presets);
	// false for a retrieval model, which only matches.
	Generates bool
	Model     ModelInfo
	Demo      bool
	DemoLabel string

	ImagePath string
	Image     image.Image // the image for display (at most displayMax px), nil if none
	// Overlay, when set, is a heat map the interface draws over the
	// image: where the model looked (/attention).
	Overlay *HeatMap

	Entries  []Entry
	Settings Settings
	// Changes are what Settings change in their preset's decoding
	// (num_beams=3, ...), shown beside the preset's name.
	Changes  []string
	CtxUsed  int
	CtxTotal int
	Last     *Answer // the last finished answer: tokens/s, time to first token
	// Confidence asks the interface to tint answers by how sure the
	// model was of each token (/confidence toggles it).
	Confidence bool

	SessionID   string
	SessionPath string

	// Confirm is a yes-or-no question waiting for the user (replace an
	// existing file?): the interface shows it and answers with Confirm.
	Confirm string

	// Download is the pull's progress while Phase is Downloading (nil
	// otherwise).
	Download *hub.Progress

	rev uint64 // the transcript's revision that Entries hold (Refresh)
}

// ModelSource says how to open a model.
type ModelSource struct {
	Dir  string
	Demo bool
	// Label is shown wherever the model is (the demo's warning); "" for
	// none.
	Label string
	// Image is the image to start with when none is given (the demo's
	// sample).
	Image string
	// Open loads the model; status reports progress text.
	Open func(ctx context.Context, status func(string)) (Engine, error)
}

// Options configure New.
type Options struct {
	// Model to load at Start; nil starts in the NoModel phase, which
	// explains how to get one and offers Demo.
	Model *ModelSource
	// Demo, if set, is offered by /demo when there is no model.
	Demo func() *ModelSource
	// Pull, when Model is nil, is the missing model the user asked for:
	// Start asks whether to download it, then pulls and loads it.
	Pull *PullOffer
	// Image is the image to open once the model is loaded ("" for the
	// model source's own, or none).
	Image string
	// SessionsDir is where session files are written; "" writes none.
	SessionsDir string
	// Resume continues a session: its image, settings and turns come
	// back; ResumeAs says where its new records go.
	Resume   *Session
	ResumeAs ResumeMode
	// Settings, if set, replace the model's defaults before Resume's.
	Settings *Settings
	// SaveDir is where /save writes when given no path (default: the
	// working folder).
	SaveDir string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// ResumeMode says where a resumed session's new records go.
type ResumeMode int

const (
	// ResumeAppend adds them to its file, which the app locks while it
	// runs: when another app has it open, the transcript says so and
	// nothing is saved.
	ResumeAppend ResumeMode = iota
	// ResumeFork writes them to a new session that starts as a copy.
	ResumeFork
	// ResumeReadOnly saves nothing.
	ResumeReadOnly
)

// Result is what Submit asks of the user interface right away.
type Result struct {
	Quit     bool   // leave the app
	ShowHelp bool   // show the commands and keys (/help): the interface owns the keys
	Prefill  string // put this text in the input box (/template edit)
}

// App is the conversation state machine. Its methods are safe for
// concurrent use.
type App struct {
	opts Options

	mu         sync.Mutex
	st         State
	eng        Engine // set once loaded; used by jobs only (one at a time)
	defaults   Settings
	presets    []generate.Preset // the model's, resolved (Engine.Presets)
	sess       *SessionFile
	cancel     context.CancelFunc // of the running job
	revs       []uint64           // revs[i]: the revision at which st.Entries[i] last changed
	lastAnswer int                // index in st.Entries of the answer /retry redoes, -1 if none
	search     searchState        // /search's models, loaded indexes and last hits (search.go)
	started    bool
	closed     bool
	sessFailed bool // the last session write failed (said once, until one works)
	// confirmYes and confirmNo answer st.Confirm.
	confirmYes, confirmNo func()

	root     context.Context
	stopAll  context.CancelFunc
	wg       sync.WaitGroup
	changed  chan struct{}
	done     chan struct{}
	closeErr error

	// failed is closed when a job panics; failure says how. Neither needs
	// a.mu, which the panicking job may hold.
	failed   chan struct{}
	failure  atomic.Pointer[PanicError]
	failOnce sync.Once
}

// PanicError is a panic recovered in one of the app's jobs: a bug. The
// app stops its work and closes Failed; the interface then quits,
// restoring the terminal, and reports it with its stack.
type PanicError struct {
	Job   string // what the job was doing ("answering")
	Value any    // what it panicked with
	Stack []byte // where
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error while %s: %v", e.Job, e.Value)
}

// New makes an app; call Start to begin loading.
func New(o Options) *App {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &App{opts: o, lastAnswer: -1, changed: make(chan struct{}, 1), done: make(chan struct{}), failed: make(chan struct{})}
	a.root, a.stopAll = context.WithCancel(context.Background())
	a.st.Phase = Idle
	if o.Model == nil {
		a.st.Phase = NoModel
	} else {
		a.st.Demo, a.st.DemoLabel = o.Model.Demo, o.Model.Label
		a.st.Model.Dir, a.st.Model.Name = o.Model.Dir, filepath.Base(o.Model.Dir)
	}
	return a
}

// Changed receives a value after the state changes (several changes may
// make one signal). It is never closed; see Done.
func (a *App) Changed() <-chan struct{} { return a.changed }

// Done is closed once Close has finished.
func (a *App) Done() <-chan struct{} { return a.done }

// Failed is closed when one of the app's jobs panicked (a bug): Err says
// how. The app has stopped its work; the interface should quit.
func (a *App) Failed() <-chan struct{} { return a.failed }

// Err is the panic that closed Failed, nil if none.
func (a *App) Err() error {
	if e := a.failure.Load(); e != nil {
		return e
	}
	return nil
}

// guard, deferred first thing in every goroutine the app starts, turns a
// panic of job into Failed: the process goes on, so that the interface
// can restore the terminal and say what happened.
func (a *App) guard(job string) {
	r := recover()
	if r == nil {
		return
	}
	a.failOnce.Do(func() {
		a.failure.Store(&PanicError{Job: job, Value: r, Stack: debug.Stack()})
		close(a.failed)
	})
	a.stopAll()
}

func (a *App) notify() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// Snapshot returns a copy of the state.
func (a *App) Snapshot() State {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.st
	s.Entries = append([]Entry(nil), a.st.Entries...)
	return s
}

// Refresh brings st, a state from Snapshot or Refresh, up to date. It
// copies only the entries that changed since, so that a token streamed
// into a long transcript costs no more than into a short one, and reports
// the first entry that changed (len(st.Entries) if none did). st's entries
// are updated in place: keep no other copy of them.
func (a *App) Refresh(st *State) (first int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	entries, since := st.Entries, st.rev
	n := len(a.st.Entries)
	first = min(n, len(entries))
	if len(entries) > n {
		entries = entries[:n]
	}
	for i := range entries {
		if a.revs[i] > since {
			entries[i] = a.st.Entries[i]
			first = min(first, i)
		}
	}
	entries = append(entries, a.st.Entries[len(entries):]...)
	*st = a.st
	st.Entries = entries
	return first
}

// The transcript changes only through the three functions below, called
// with a.mu held: each change moves the revision on, so that Refresh
// finds it.

// pushLocked appends entries to the transcript.
func (a *App) pushLocked(es ...Entry) {
	for _, e := range es {
		a.st.rev++
		a.st.Entries = append(a.st.Entries, e)
		a.revs = append(a.revs, a.st.rev)
	}
}

// entryLocked returns entry i to be changed.
func (a *App) entryLocked(i int) *Entry {
	a.st.rev++
	a.revs[i] = a.st.rev
	return &a.st.Entries[i]
}

// truncateLocked drops the entries from n on.
func (a *App) truncateLocked(n int) {
	a.st.rev++
	a.st.Entries, a.revs = a.st.Entries[:n], a.revs[:n]
}

// run starts job in the background in phase p (the job may move on to
// other phases). It returns false (and says why) when another job is
// running. Cancel cancels the job's context while it generates or encodes
// an image; Close cancels it in any phase.
func (a *App) run(p Phase, activity string, job func(ctx context.Context)) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return false
	}
	if a.st.Phase.Busy() {
		what := a.st.Activity
		a.mu.Unlock()
		a.errorf("busy %s: wait, or press Esc to stop it", what)
		return false
	}
	ctx, cancel := context.WithCancel(a.root)
	a.st.Phase, a.st.Activity, a.st.Since, a.st.Progress = p, activity, a.opts.Now(), ""
	a.cancel = cancel
	a.wg.Add(1)
	a.mu.Unlock()
	a.notify()
	go func() {
		defer a.wg.Done()
		defer cancel()
		defer a.guard(activity)
		job(ctx)
		a.mu.Lock()
		a.cancel = nil
		a.st.Phase = Idle
		if !a.st.HasModel {
			a.st.Phase = NoModel
		}
		a.st.Activity, a.st.Progress, a.st.Download = "", "", nil
		a.mu.Unlock()
		a.notify()
	}()
	return true
}

// background runs f off the caller's goroutine, beside any job: quick
// work that only reads the state (/save's synced write). Close waits for
// it.
func (a *App) background(f func()) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer a.guard("writing")
		f()
	}()
}

func (a *App) progress(s string) {
	a.mu.Lock()
	a.st.Progress = s
	a.mu.Unlock()
	a.notify()
}

// Cancel stops the answer in progress (what was generated stays, marked
// as stopped) or the image being decoded or encoded (the previous image
// and conversation stay), or a download (the next pull resumes it). It
// reports whether there was one. Loading a model cannot be stopped.
func (a *App) Cancel() bool {
	a.mu.Lock()
	c := a.cancel
	if a.st.Phase != Generating && a.st.Phase != Encoding && a.st.Phase != Downloading {
		c = nil
	}
	a.mu.Unlock()
	if c == nil {
		return false
	}
	c()
	return true
}

// Close stops any work, waits for it, closes the model and the session.
// The state stays readable. Close is idempotent.
func (a *App) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return a.closeErr
	}
	a.closed = true
	a.mu.Unlock()
	a.stopAll()
	a.wg.Wait()
	a.search.close()
	a.mu.Lock()
	eng, sess := a.eng, a.sess
	a.eng, a.sess = nil, nil
	a.mu.Unlock()
	if eng != nil {
		a.closeErr = closeEngine(eng)
	}
	if sess != nil {
		if err := sess.Close(); err != nil {
			a.closeErr = fmt.Errorf("session file: %w", err)
		}
	}
	close(a.done)
	return a.closeErr
}

// closeEngine closes eng, which may be in any state after a job panicked:
// a panic of its own is an error.
func closeEngine(eng Engine) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("closing the model: internal error: %v", r)
		}
	}()
	return eng.Close()
}

// askConfirm puts question to the user (State.Confirm); Confirm runs yes
// or no, in the background, with the answer.
func (a *App) askConfirm(question string, yes, no func()) {
	a.mu.Lock()
	a.st.Confirm, a.confirmYes, a.confirmNo = question, yes, no
	a.mu.Unlock()
	a.notify()
}

// Confirm answers the question waiting in State.Confirm. It reports
// whether there was one.
func (a *App) Confirm(yes bool) bool {
	a.mu.Lock()
	f := a.confirmNo
	if yes {
		f = a.confirmYes
	}
	pending := a.st.Confirm != ""
	a.st.Confirm, a.confirmYes, a.confirmNo = "", nil, nil
	a.mu.Unlock()
	if !pending {
		return false
	}
	a.notify()
	if f != nil {
		a.background(f)
	}
	return true
}

func (a *App) add(e Entry) int {
	a.mu.Lock()
	if e.Time.IsZero() {
		e.Time = a.opts.Now()
	}
	a.pushLocked(e)
	i := len(a.st.Entries) - 1
	a.mu.Unlock()
	a.notify()
	return i
}

func (a *App) note(s string)               { a.add(Entry{Kind: EntryNote, Text: s}) }
func (a *App) notef(f string, args ...any) { a.note(fmt.Sprintf(f, args...)) }
func (a *App) errorf(f string, args ...any) {
	a.add(Entry{Kind: EntryError, Text: oneLine(fmt.Sprintf(f, args...))})
}
func (a *App) refreshUsageLocked() { a.st.CtxUsed, a.st.CtxTotal = a.eng.Usage() }

// oneLine keeps the first line of an error message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// roundDur rounds a duration for display: three or four digits.
func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}
