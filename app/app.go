// Package app is blip2chat's conversation state machine: it owns the
// loaded model (through Engine), the image, the turns, the settings and the
// session file, runs slow work (loading, encoding, generating) off the
// caller's goroutine, and publishes a State that a user interface renders.
//
// The user interface (ui/) only renders State and sends intents: Submit a
// line of input, Cancel the work in progress, Close. It never touches the
// engine. Every change to State is signalled on Changed; call Snapshot to
// read it.
package app

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/engine/imageprep"
)

// Phase is what the app is doing.
type Phase int

const (
	Idle       Phase = iota // waiting for input
	NoModel                 // no model to load: the transcript explains how to get one
	Loading                 // opening the model
	Encoding                // encoding an image
	Generating              // streaming an answer
	Working                 // a short job (tokenizing)
)

func (p Phase) String() string {
	return [...]string{"idle", "no model", "loading", "encoding", "generating", "working"}[p]
}

// Busy reports whether a job is running.
func (p Phase) Busy() bool { return p >= Loading }

// EntryKind is the kind of a transcript entry.
type EntryKind int

const (
	EntryQuestion EntryKind = iota // the user's question
	EntryAnswer                    // the model's answer (streaming while Streaming)
	EntryNote                      // information from the app
	EntryError                     // something went wrong (one line)
	EntryImage                     // a new image was loaded
)

// Entry is one item of the transcript.
type Entry struct {
	Kind      EntryKind
	Text      string
	Time      time.Time
	Streaming bool    // the answer is still coming
	Stop      string  // why the answer ended (Stop* constants)
	Stats     *Answer // the finished answer's numbers
	Retries   int     // times the answer was generated again
	Caption   bool    // the question was /caption
}

// State is a snapshot of the app for rendering.
type State struct {
	Phase    Phase
	Activity string    // what the running job does, e.g. "encoding image"
	Since    time.Time // when the running job started
	Progress string    // detail of the running job

	HasModel  bool
	Model     ModelInfo
	Demo      bool
	DemoLabel string

	ImagePath string
	Image     image.Image // the image for display (at most displayMax px), nil if none

	Entries  []Entry
	Settings Settings
	CtxUsed  int
	CtxTotal int
	Last     *Answer // the last finished answer: tokens/s, time to first token

	SessionID   string
	SessionPath string
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
	// Image is the image to open once the model is loaded ("" for the
	// model source's own, or none).
	Image string
	// SessionsDir is where session files are written; "" writes none.
	SessionsDir string
	// Resume continues a session: its image, settings and turns.
	Resume *Session
	// Settings, if set, replace the model's defaults before Resume's.
	Settings *Settings
	// SaveDir is where /save writes when given no path (default: the
	// working folder).
	SaveDir string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Result is what Submit asks of the user interface right away.
type Result struct {
	Quit    bool   // leave the app
	Prefill string // put this text in the input box (/template edit)
	Clear   bool   // the transcript was cleared (screen redraw)
}

// App is the conversation state machine. Its methods are safe for
// concurrent use.
type App struct {
	opts Options

	mu         sync.Mutex
	st         State
	eng        Engine // set once loaded; used by jobs only (one at a time)
	defaults   Settings
	sess       *SessionFile
	cancel     context.CancelFunc // of the running job
	lastAnswer int                // index in st.Entries of the answer /retry redoes, -1 if none
	started    bool
	closed     bool

	root     context.Context
	stopAll  context.CancelFunc
	wg       sync.WaitGroup
	changed  chan struct{}
	done     chan struct{}
	closeErr error
}

// New makes an app; call Start to begin loading.
func New(o Options) *App {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &App{opts: o, lastAnswer: -1, changed: make(chan struct{}, 1), done: make(chan struct{})}
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

// Start loads the model (and the image, and the resumed session) in the
// background, or explains how to get a model. Later calls do nothing.
func (a *App) Start() {
	a.mu.Lock()
	if a.started || a.closed {
		a.mu.Unlock()
		return
	}
	a.started = true
	src := a.opts.Model
	a.mu.Unlock()
	if src == nil {
		a.note(noModelHelp(a.opts.Demo != nil))
		return
	}
	a.load(src, a.opts.Image, a.opts.Resume)
}

// noModelHelp explains how to get a model.
func noModelHelp(demo bool) string {
	s := `No model yet. To chat about your own images:
1. Download a BLIP-2 checkpoint (safetensors), e.g. Salesforce/blip2-opt-2.7b:
     huggingface-cli download Salesforce/blip2-opt-2.7b --local-dir blip2-opt
   (also Salesforce/blip2-flan-t5-xl, Salesforce/instructblip-vicuna-7b)
2. Convert it once:
     blip2chat convert blip2-opt -o ~/models/blip2-opt
3. Chat:
     blip2chat chat -m ~/models/blip2-opt photo.jpg
   or set BLIP2CHAT_MODEL=~/models/blip2-opt and just run blip2chat`
	if demo {
		s = "Type /demo to try the interface now with a tiny demo model (random weights, so its answers are meaningless; no download).\n\n" + s
	}
	return s
}

// load opens the model, then the image and the resumed turns.
func (a *App) load(src *ModelSource, img string, resume *Session) {
	a.run(Loading, "loading model", func(ctx context.Context) {
		if resume != nil {
			a.replay(resume)
			a.notef("Resumed session %s from %s.", resume.ID, resume.Updated.Local().Format("2006-01-02 15:04"))
		}
		start := a.opts.Now()
		eng, err := src.Open(ctx, func(s string) { a.progress(s) })
		if err != nil {
			a.mu.Lock()
			a.st.Phase = NoModel
			a.mu.Unlock()
			a.errorf("cannot load the model: %v", err)
			return
		}
		info := eng.Info()
		if info.LoadTime == 0 {
			info.LoadTime = a.opts.Now().Sub(start)
		}
		if info.Name == "" {
			info.Name = filepath.Base(src.Dir)
		}
		a.mu.Lock()
		a.eng = eng
		a.defaults = eng.Settings()
		a.st.HasModel, a.st.Model = true, info
		a.st.Demo, a.st.DemoLabel = src.Demo, src.Label
		a.st.Settings = a.defaults
		a.refreshUsageLocked()
		a.mu.Unlock()

		if err := a.openSession(src, resume); err != nil {
			a.errorf("session file: %v (this conversation will not be saved)", err)
		}
		set := a.defaults
		if a.opts.Settings != nil {
			set = *a.opts.Settings
		}
		if resume != nil && resume.Settings != nil {
			set = *resume.Settings
		}
		if set != a.defaults {
			if err := eng.Apply(set); err != nil {
				a.errorf("settings: %v", err)
			} else {
				a.mu.Lock()
				a.st.Settings = set
				a.mu.Unlock()
			}
		}
		a.notef("Loaded %s in %s.", info.Name, roundDuration(info.LoadTime))
		if src.Demo {
			a.note("This is the demo model: tiny, with random weights, so its answers are meaningless. It shows how blip2chat works without a download; for real answers convert a checkpoint (blip2chat convert) and run blip2chat chat -m MODEL_DIR.")
		}

		if resume != nil && img == "" {
			img = resume.Image
		}
		if img == "" {
			img = src.Image
		}
		if img == "" {
			a.note("Load an image with /image PATH (Tab completes the path).")
			return
		}
		if !a.setImage(ctx, img, resume != nil && img == resume.Image) {
			return
		}
		if resume != nil && img == resume.Image && len(resume.Turns) > 0 {
			if err := eng.Restore(resume.Turns); err != nil {
				a.mu.Lock()
				a.lastAnswer = -1
				a.mu.Unlock()
				a.errorf("cannot restore the earlier turns: %v (the model starts afresh)", err)
			} else {
				a.mu.Lock()
				a.refreshUsageLocked()
				a.mu.Unlock()
				a.notef("Resumed session %s: %d earlier turn(s) are back in the model's context.", resume.ID, len(resume.Turns))
			}
		}
	})
}

// replay puts a resumed session's turns in the transcript.
func (a *App) replay(s *Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range s.Records {
		switch r.Type {
		case "image":
			a.st.Entries = append(a.st.Entries, Entry{Kind: EntryImage, Text: r.Path, Time: r.Time})
			a.lastAnswer = -1
		case "reset":
			a.st.Entries = append(a.st.Entries, Entry{Kind: EntryNote, Text: "Conversation restarted.", Time: r.Time})
			a.lastAnswer = -1
		case "turn":
			if r.Turn == nil {
				continue
			}
			if r.Retry && a.lastAnswer >= 0 {
				e := &a.st.Entries[a.lastAnswer]
				e.Text, e.Stop = r.Turn.Answer, r.Turn.Stop
				e.Retries++
				continue
			}
			q := r.Turn.Question
			if r.Turn.Caption {
				q = "/caption"
			}
			a.st.Entries = append(a.st.Entries,
				Entry{Kind: EntryQuestion, Text: q, Time: r.Time, Caption: r.Turn.Caption},
				Entry{Kind: EntryAnswer, Text: r.Turn.Answer, Stop: r.Turn.Stop, Time: r.Time})
			a.lastAnswer = len(a.st.Entries) - 1
		}
	}
	a.notify()
}

// openSession starts (or, resuming, reopens) the session file.
func (a *App) openSession(src *ModelSource, resume *Session) error {
	if a.opts.SessionsDir == "" {
		return nil
	}
	var f *SessionFile
	var err error
	if resume != nil {
		f, err = ReopenSession(resume)
	} else {
		f, err = CreateSession(a.opts.SessionsDir, src.Dir, src.Demo)
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.sess = f
	a.st.SessionID, a.st.SessionPath = f.ID, f.Path
	a.mu.Unlock()
	a.notify()
	return nil
}

// record appends to the session file, reporting a failure in the
// transcript.
func (a *App) record(r Record) {
	a.mu.Lock()
	f := a.sess
	a.mu.Unlock()
	if f == nil {
		return
	}
	if err := f.Append(r); err != nil {
		a.errorf("session file: %v", err)
	}
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
		job(ctx)
		a.mu.Lock()
		a.cancel = nil
		a.st.Phase = Idle
		if !a.st.HasModel {
			a.st.Phase = NoModel
		}
		a.st.Activity, a.st.Progress = "", ""
		a.mu.Unlock()
		a.notify()
	}()
	return true
}

func (a *App) progress(s string) {
	a.mu.Lock()
	a.st.Progress = s
	a.mu.Unlock()
	a.notify()
}

// Cancel stops the answer in progress (what was generated stays, marked
// as stopped) or the image being decoded or encoded (the previous image
// and conversation stay). It reports whether there was one. Loading a
// model cannot be stopped.
func (a *App) Cancel() bool {
	a.mu.Lock()
	c := a.cancel
	if a.st.Phase != Generating && a.st.Phase != Encoding {
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
	a.mu.Lock()
	eng := a.eng
	a.eng = nil
	a.mu.Unlock()
	if eng != nil {
		a.closeErr = eng.Close()
	}
	close(a.done)
	return a.closeErr
}

func (a *App) add(e Entry) int {
	a.mu.Lock()
	if e.Time.IsZero() {
		e.Time = a.opts.Now()
	}
	a.st.Entries = append(a.st.Entries, e)
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
func (a *App) refreshUsageLocked()                { a.st.CtxUsed, a.st.CtxTotal = a.eng.Usage() }
func roundDuration(d time.Duration) time.Duration { return roundDur(d) }

// oneLine keeps the first line of an error message.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

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

// displayMax bounds the display copy of an image: the largest pane needs
// far fewer pixels, and resizing a small copy on every resize is cheap.
const displayMax = 512

// decodeImage decodes an image once for both its uses: the RGB image the
// engine prepares for the model, and a copy of at most displayMax pixels a
// side for the image pane. It says what it does through status.
func decodeImage(path string, status func(string)) (rgb *image.NRGBA, disp image.Image, err error) {
	status("decoding " + filepath.Base(path))
	img, err := imageprep.Load(path)
	if err != nil {
		return nil, nil, err
	}
	rgb = imageprep.ToRGB(img)
	b := rgb.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= displayMax && h <= displayMax {
		return rgb, rgb, nil
	}
	status(fmt.Sprintf("resizing %d×%d for display", w, h))
	if w >= h {
		w, h = displayMax, max(1, h*displayMax/w)
	} else {
		w, h = max(1, w*displayMax/h), displayMax
	}
	return rgb, shrink(rgb, w, h), nil
}

// shrink scales src down to w x h pixels, each the average of the source
// pixels it covers: one pass over the source, so that a 60-megapixel
// photo shrinks in a fraction of a second (a filtered resize takes
// seconds), with no aliasing.
func shrink(src *image.NRGBA, w, h int) *image.NRGBA {
	b := src.Bounds()
	sw, sh := b.Dx(), b.Dy()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	sum := make([]uint64, w*4)
	for y := 0; y < h; y++ {
		y0, y1 := y*sh/h, max((y+1)*sh/h, y*sh/h+1)
		clear(sum)
		for sy := y0; sy < y1; sy++ {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+sy):][:sw*4]
			for x := 0; x < w; x++ {
				x0, x1 := x*sw/w, max((x+1)*sw/w, x*sw/w+1)
				s, p := sum[x*4:x*4+4], row[x0*4:x1*4]
				for i := 0; i < len(p); i += 4 {
					s[0] += uint64(p[i])
					s[1] += uint64(p[i+1])
					s[2] += uint64(p[i+2])
					s[3] += uint64(p[i+3])
				}
			}
		}
		d := dst.Pix[y*dst.Stride:][:w*4]
		for x := 0; x < w; x++ {
			n := uint64((y1 - y0) * (max((x+1)*sw/w, x*sw/w+1) - x*sw/w))
			for c := 0; c < 4; c++ {
				d[x*4+c] = uint8((sum[x*4+c] + n/2) / n)
			}
		}
	}
	return dst
}

// setImage decodes, shows and encodes an image, starting a new
// conversation. resumed says not to record it again in the session. A
// cancel (Esc, or Close) stops it between the decoding, the resize and the
// engine's layers; the previous image and conversation then stay.
func (a *App) setImage(ctx context.Context, path string, resumed bool) bool {
	abs := path
	if p, err := filepath.Abs(expandHome(path)); err == nil {
		abs = p
	}
	a.mu.Lock()
	if a.st.Phase != Encoding {
		a.st.Phase, a.st.Activity, a.st.Since = Encoding, "encoding image", a.opts.Now()
	}
	prevPath, prevImg := a.st.ImagePath, a.st.Image
	a.mu.Unlock()
	rgb, disp, err := decodeImage(abs, a.progress)
	if err != nil {
		a.errorf("%v", err)
		return false
	}
	if ctx.Err() != nil {
		a.imageCancelled(prevPath)
		return false
	}
	a.mu.Lock()
	a.st.ImagePath, a.st.Image = abs, disp
	a.st.Progress = "preparing and encoding (ViT, Q-Former)"
	eng := a.eng
	a.mu.Unlock()
	a.notify()

	// The engine gets the image decoded above: a large photo takes seconds
	// to decode.
	stats, err := eng.SetImage(ctx, rgb, abs)
	if err != nil {
		a.mu.Lock()
		a.st.ImagePath, a.st.Image = prevPath, prevImg
		a.mu.Unlock()
		if errors.Is(err, context.Canceled) || ctx.Err() != nil {
			a.imageCancelled(prevPath)
		} else {
			a.errorf("%v", err)
		}
		return false
	}
	a.mu.Lock()
	if !resumed {
		a.lastAnswer = -1
	}
	a.refreshUsageLocked()
	a.mu.Unlock()
	if resumed {
		// The replayed transcript already shows it.
		return true
	}
	a.add(Entry{Kind: EntryImage, Text: abs, Stats: &Answer{Elapsed: stats.Encode}})
	a.record(Record{Type: "image", Path: abs})
	return true
}

// imageCancelled says that loading an image was cancelled and what stays.
func (a *App) imageCancelled(prev string) {
	if prev == "" {
		a.note("Image loading cancelled.")
		return
	}
	a.notef("Image loading cancelled; the image is still %s.", filepath.Base(prev))
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}
