package app

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/blip2chat/blip2chat/engine/lm"
)

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
	if src == nil && a.opts.Pull != nil {
		a.offerPull(a.opts.Pull)
		return
	}
	if src == nil {
		a.note(noModelHelp(a.opts.Demo != nil))
		return
	}
	a.load(src, a.opts.Image, a.opts.Resume)
}

// noModelHelp explains how to get a model.
func noModelHelp(demo bool) string {
	s := `No model yet. To chat about your own images, install one (downloaded from the Hugging Face Hub and converted, once):
     blip2chat pull blip2-flan-t5-xl
then chat:
     blip2chat chat blip2-flan-t5-xl photo.jpg
'blip2chat models' lists the models you can pull. A checkpoint you downloaded yourself converts with:
     blip2chat convert HF_DIR -o ~/models/mine
     blip2chat chat -m ~/models/mine photo.jpg
BLIP2CHAT_MODEL may name the model (a name or a folder): then just run blip2chat`
	if demo {
		s = "Type /demo to try the interface now with a tiny demo model (trained only on synthetic shapes, so it answers only about coloured circles, squares, triangles, stars and crosses; no download).\n\n" + s
	}
	return s
}

// load opens the model, then the image and the resumed turns.
func (a *App) load(src *ModelSource, img string, resume *Session) {
	a.run(Loading, "loading model", func(ctx context.Context) { a.loadJob(ctx, src, img, resume) })
}

// loadJob is load's job.
func (a *App) loadJob(ctx context.Context, src *ModelSource, img string, resume *Session) {
	if resume != nil {
		resume = a.reopen(resume)
		a.replay(resume)
		a.notef("Resumed session %s from %s.", resume.ID, resume.Updated.Local().Format("2006-01-02 15:04"))
		if note := resume.DamageNote(); note != "" {
			a.errorf("session file %s: %s", resume.Path, note)
		}
	}
	eng, info, err := a.open(ctx, src)
	if err != nil {
		a.errorf("cannot load the model: %v", err)
		return
	}
	if err := a.createSession(src, resume); err != nil {
		a.errorf("session file: %v (this conversation will not be saved)", err)
	}
	if set := resolveSettings(eng.Settings(), a.opts.Settings, resume); !sameSettings(set, eng.Settings()) {
		if err := eng.Apply(set); err != nil {
			a.errorf("settings: %v", err)
		} else {
			a.mu.Lock()
			a.setSettingsLocked(eng.Settings())
			a.mu.Unlock()
		}
	}
	a.notef("Loaded %s in %s.", info.Name, roundDur(info.LoadTime))
	if info.Notice != "" {
		a.note("Note: " + info.Notice) // the GPU build fell back to the CPU
	}
	if src.Demo {
		a.note("This is the demo model: tiny, trained only on pictures of coloured shapes, so it answers about those and nothing else (try /caption, or ask what colour a shape is). It shows how blip2chat works without a download; for real answers install a model (blip2chat pull blip2-flan-t5-xl) and run blip2chat chat blip2-flan-t5-xl.")
	}

	path, resumed := resolveImage(img, resume, src)
	if path == "" {
		a.note("Load an image with /image PATH (Tab completes the path).")
		return
	}
	if a.setImage(ctx, path, resumed) && resumed && len(resume.Turns) > 0 {
		a.restore(resume)
	}
}

// open opens the model and makes it the app's.
func (a *App) open(ctx context.Context, src *ModelSource) (Engine, ModelInfo, error) {
	start := a.opts.Now()
	eng, err := src.Open(ctx, a.progress)
	if err != nil {
		a.mu.Lock()
		a.st.Phase = NoModel
		a.mu.Unlock()
		return nil, ModelInfo{}, err
	}
	info := eng.Info()
	if info.LoadTime == 0 {
		info.LoadTime = a.opts.Now().Sub(start)
	}
	if info.Name == "" {
		info.Name = filepath.Base(src.Dir)
	}
	if info.Dir == "" {
		info.Dir = src.Dir
	}
	a.mu.Lock()
	a.eng = eng
	a.defaults, a.presets = eng.Settings(), eng.Presets()
	a.st.HasModel, a.st.Generates, a.st.Model = true, len(a.presets) > 0, info
	a.st.Demo, a.st.DemoLabel = src.Demo, src.Label
	a.setSettingsLocked(a.defaults)
	a.refreshUsageLocked()
	a.mu.Unlock()
	a.notify()
	return eng, info, nil
}

// resolveSettings is the settings a conversation starts with: the model's
// defaults, replaced by the ones given (Options.Settings), replaced by the
// resumed session's last.
func resolveSettings(defaults Settings, given *Settings, resume *Session) Settings {
	set := defaults
	if given != nil {
		set = *given
	}
	if resume != nil && resume.Settings != nil {
		set = *resume.Settings
	}
	return set
}

// resolveImage is the image a conversation starts with: the one asked
// for, else the resumed session's, else the model source's own (the demo's
// sample), else none. resumed says it is the resumed session's image, whose
// turns go back into the context.
func resolveImage(asked string, resume *Session, src *ModelSource) (path string, resumed bool) {
	path = asked
	if path == "" && resume != nil {
		path = resume.Image
	}
	if path == "" {
		path = src.Image
	}
	return path, path != "" && resume != nil && path == resume.Image
}

// restore puts the resumed session's turns about its image back into the
// model's context. An interrupted answer goes back as a stopped one: what
// came of it, without an end.
func (a *App) restore(resume *Session) {
	a.mu.Lock()
	eng := a.eng
	a.mu.Unlock()
	turns := append([]Turn(nil), resume.Turns...)
	for i := range turns {
		if turns[i].Stop == lm.StopInterrupted {
			turns[i].Stop = lm.StopCancelled
		}
	}
	if err := eng.Restore(turns); err != nil {
		a.mu.Lock()
		a.lastAnswer = -1
		a.mu.Unlock()
		a.errorf("cannot restore the earlier turns: %v (the model starts afresh)", err)
		return
	}
	a.mu.Lock()
	a.refreshUsageLocked()
	a.mu.Unlock()
	a.notef("Resumed session %s: %d earlier turn(s) are back in the model's context.", resume.ID, len(resume.Turns))
}

// replay puts a resumed session's turns in the transcript.
func (a *App) replay(s *Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range s.Records {
		switch r.Type {
		case "image":
			a.pushLocked(Entry{Kind: EntryImage, Text: r.Path, Time: r.Time})
			a.lastAnswer = -1
		case "reset":
			a.pushLocked(Entry{Kind: EntryReset, Text: "Conversation restarted.", Time: r.Time})
			a.lastAnswer = -1
		case "turn":
			if r.Turn == nil {
				continue
			}
			if r.Retry && a.lastAnswer >= 0 {
				e := a.entryLocked(a.lastAnswer)
				e.Text, e.Stop, e.Tokens = r.Turn.Answer, r.Turn.Stop, r.Turn.Tokens
				e.Retries++
				continue
			}
			q := r.Turn.Question
			if r.Turn.Caption {
				q = "/caption"
			}
			a.pushLocked(
				Entry{Kind: EntryQuestion, Text: q, Time: r.Time, Caption: r.Turn.Caption},
				Entry{Kind: EntryAnswer, Text: r.Turn.Answer, Stop: r.Turn.Stop, Time: r.Time, Tokens: r.Turn.Tokens})
			a.lastAnswer = len(a.st.Entries) - 1
		}
	}
	a.notify()
}

// reopen takes the file of a resumed session for the app, as
// Options.ResumeAs says, and returns the session to replay: as the file
// holds it now when the app continues it.
func (a *App) reopen(s *Session) *Session {
	if a.opts.SessionsDir == "" || a.opts.ResumeAs == ResumeFork {
		return s // nothing written, or a copy made once the model is loaded
	}
	if a.opts.ResumeAs == ResumeReadOnly {
		a.notef("Session %s is open read-only: new turns are not saved.", s.ID)
		return s
	}
	f, fresh, err := ReopenSession(s)
	switch {
	case errors.Is(err, ErrSessionOpen):
		a.errorf("session %s is open in another blip2chat: nothing here is saved (quit, then 'blip2chat chat --resume=%s --fork' continues a copy)", s.ID, s.ID)
		return s
	case err != nil:
		a.errorf("session file: %v (this conversation will not be saved)", err)
		return s
	}
	a.setSession(f)
	return fresh
}

// createSession starts the session file of a new conversation, or of a
// fork of resume (Options.ResumeAs).
func (a *App) createSession(src *ModelSource, resume *Session) error {
	if a.opts.SessionsDir == "" || resume != nil && a.opts.ResumeAs != ResumeFork {
		return nil
	}
	var f *SessionFile
	var err error
	if resume != nil {
		f, err = ForkSession(resume, a.opts.SessionsDir, a.opts.Now())
	} else {
		f, err = CreateSession(a.opts.SessionsDir, src.Dir, src.Demo, a.opts.Now())
	}
	if err != nil {
		return err
	}
	a.setSession(f)
	if resume != nil {
		a.notef("This is session %s, a copy of session %s: new turns go to the copy.", f.ID, resume.ID)
	}
	return nil
}

// setSession makes f the file the conversation is recorded in.
func (a *App) setSession(f *SessionFile) {
	a.mu.Lock()
	a.sess = f
	a.st.SessionID, a.st.SessionPath = f.ID, f.Path
	a.mu.Unlock()
	a.notify()
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
	err := f.Append(r, a.opts.Now())
	a.mu.Lock()
	failing := a.sessFailed
	a.sessFailed = err != nil
	a.mu.Unlock()
	switch {
	case err != nil && !failing:
		// Said once: the records wait and go out with the next write.
		a.errorf("session file: %v (what is not written waits, and is written when it can be)", err)
	case err == nil && failing:
		a.note("Session file: written again, nothing lost.")
	}
}
