package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/internal/safefile"
	"github.com/blip2chat/blip2chat/ui"
	"github.com/blip2chat/blip2chat/weights/hub"
)

func init() {
	register(&command{
		name:    "chat",
		summary: "chat about an image in the terminal (the default command)",
		usage:   "[NAME | -m MODEL] [--resume [ID] [--fork|--read-only]] [--llama-lib DIR] [--no-color] [IMAGE]",
		run:     runChat,
	})
}

// EnvModel names the variable that gives the model folder when -m is not
// given.
const EnvModel = "BLIP2CHAT_MODEL"

// resumeFlag is --resume (the latest session) or --resume=ID.
type resumeFlag struct {
	set bool
	id  string
}

func (r *resumeFlag) String() string   { return r.id }
func (r *resumeFlag) IsBoolFlag() bool { return true }
func (r *resumeFlag) Set(s string) error {
	r.set = true
	switch s {
	case "true", "latest":
		r.id = ""
	case "false":
		r.set = false
	default:
		r.id = s
	}
	return nil
}

// uiFlags are the flags chat and demo share.
type uiFlags struct {
	llamaLib   *string
	noColor    *bool
	imageStyle *string
	threads    *int
	nctx       *int
	gpuLayers  *int
}

func addUIFlags(fs interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
	Int(string, int, string) *int
	Var(flag.Value, string, string)
}) uiFlags {
	return uiFlags{
		llamaLib:   fs.String("llama-lib", "", "`folder` holding the llama.cpp library (default: $BLIP2CHAT_LLAMA_LIB, beside the executable, the data folder)"),
		noColor:    fs.Bool("no-color", false, "no colours (also when NO_COLOR is set)"),
		imageStyle: fs.String("image-style", "auto", "how the image is drawn: ascii, halfblock (truecolor terminals) or auto; Ctrl+T toggles"),
		threads:    fs.Int("threads", 0, "CPU `threads` (0: all usable cores, at most 16; never more than the usable cores)"),
		nctx:       fs.Int("ctx", 0, "context size in `tokens` (0: the model's, at most 4096)"),
		gpuLayers:  addGPULayersFlag(fs),
	}
}

// uiOptions resolves the display flags against the terminal.
func (f uiFlags) uiOptions() (ui.Options, error) {
	o := ui.Options{Version: version, NoColor: *f.noColor || os.Getenv("NO_COLOR") != ""}
	switch strings.ToLower(*f.imageStyle) {
	case "ascii":
		o.ImageMode = ui.ASCII
	case "halfblock", "half-block", "blocks":
		o.ImageMode = ui.HalfBlock
	case "auto", "":
		if !o.NoColor && lipgloss.ColorProfile() == termenv.TrueColor {
			o.ImageMode = ui.HalfBlock
		}
	default:
		return o, fmt.Errorf("--image-style %q: want ascii, halfblock or auto", *f.imageStyle)
	}
	return o, nil
}

func (f uiFlags) openOptions() app.OpenOptions {
	return app.OpenOptions{LlamaLib: *f.llamaLib, Threads: *f.threads, NCtx: *f.nctx, GPULayers: *f.gpuLayers}
}

// modelSource opens a converted model folder.
func modelSource(dir string, oo app.OpenOptions) *app.ModelSource {
	return &app.ModelSource{Dir: dir, Open: func(ctx context.Context, status func(string)) (app.Engine, error) {
		o := oo
		o.Status = status
		return app.OpenEngine(ctx, dir, o)
	}}
}

func runChat(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["chat"], stderr)
	modelDir := fs.String("m", "", "model: an installed or catalogue name (blip2chat models) or a `folder` made by 'blip2chat convert' (default: $"+EnvModel+")")
	var resume resumeFlag
	fs.Var(&resume, "resume", "continue a session: the latest, or --resume=ID (see 'blip2chat sessions')")
	fork := fs.Bool("fork", false, "with --resume: continue a copy of the session (a new session; the old one stays as it is)")
	readOnly := fs.Bool("read-only", false, "with --resume: show the session and chat on, saving nothing")
	uf := addUIFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	sessDir := app.SessionsDir(data)

	if (*fork || *readOnly) && !resume.set || *fork && *readOnly {
		return badUsage("--fork and --read-only go with --resume, one of them at a time")
	}
	var sess *app.Session
	if resume.set {
		// "--resume ID" (a separate word) names a session too, unless it
		// names none (it is the image then).
		if resume.id == "" && len(pos) > 0 {
			s, err := app.FindSession(sessDir, pos[0])
			switch {
			case err == nil:
				sess, pos = s, pos[1:]
			case !errors.Is(err, app.ErrNoSession):
				return err
			}
		}
		if sess == nil {
			if sess, err = app.FindSession(sessDir, resume.id); err != nil {
				return err
			}
		}
		if err := resumable(sess, *fork || *readOnly); err != nil {
			return err
		}
	}
	// "chat NAME [IMAGE]": a model's name before the image, or alone when
	// it names no file.
	name := ""
	if len(pos) == 2 && !app.IsModelName(data, pos[0]) {
		_, refErr := hub.ParseRef(pos[0])
		st, err := os.Stat(pos[0])
		if err == nil && !st.IsDir() || refErr != nil && err != nil {
			return errUsage // two images (an existing file is never a repository), or a mistyped name
		}
	}
	if len(pos) == 2 || len(pos) == 1 && app.IsModelName(data, pos[0]) {
		if *modelDir != "" {
			return badUsage("the model is given twice: -m %s and %s", safefile.Name(*modelDir), safefile.Name(pos[0]))
		}
		name, pos = pos[0], pos[1:]
	}
	img, uo, err := uiArgs("chat", pos, uf, stderr)
	if err != nil {
		return err
	}

	opts := app.Options{Image: img, SessionsDir: sessDir, Resume: sess, ResumeAs: resumeMode(*fork, *readOnly), Demo: func() *app.ModelSource {
		return app.DemoSource(data, uf.openOptions())
	}}
	dir := *modelDir
	if name != "" {
		dir = name
	}
	if dir == "" && sess != nil {
		if sess.Demo {
			opts.Model = app.DemoSource(data, uf.openOptions())
		} else {
			dir = sess.Model
		}
	}
	if dir == "" && opts.Model == nil {
		dir = os.Getenv(EnvModel)
	}
	if dir != "" {
		var missing *app.NotInstalledError
		dir, err = app.ResolveModel(data, dir)
		if errors.As(err, &missing) {
			opts.Pull = pullOffer(data, missing, img, uf)
			return runUI(opts, uo, stdout)
		} else if err != nil {
			return err
		}
		if st, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: no such model folder (make one with 'blip2chat convert')", safefile.Name(dir))
		} else if err != nil {
			return err
		} else if !st.IsDir() {
			return fmt.Errorf("%s is not a model folder (make one with 'blip2chat convert')", safefile.Name(dir))
		}
		opts.Model = modelSource(dir, uf.openOptions())
	}
	return runUI(opts, uo, stdout)
}

// pullOffer offers to pull a model that is not installed, in the
// interface (which asks first, with the sizes).
func pullOffer(data string, missing *app.NotInstalledError, img string, uf uiFlags) *app.PullOffer {
	return &app.PullOffer{Name: missing.Name, Info: missing.Model, Image: img,
		Run: func(ctx context.Context, progress func(hub.Progress), status func(string)) (*app.ModelSource, error) {
			res, err := app.Pull(ctx, data, missing.Name, app.PullOptions{
				LlamaLib: *uf.llamaLib,
				Progress: progress,
				Status:   status,
				Hub:      hub.Options{Log: status},
			})
			if err != nil {
				return nil, err
			}
			return modelSource(res.Dir, uf.openOptions()), nil
		}}
}

// resumable refuses a session that another blip2chat has open, unless it
// is only copied or read (copy).
func resumable(s *app.Session, copy bool) error {
	if copy {
		return nil
	}
	inUse, err := app.SessionInUse(s)
	if err != nil {
		return err
	}
	if inUse {
		id := safefile.Name(s.ID)
		return fmt.Errorf("session %s is open in another blip2chat: continue a copy of it with --resume=%s --fork, or look at it with --resume=%s --read-only",
			id, id, id)
	}
	return nil
}

func resumeMode(fork, readOnly bool) app.ResumeMode {
	switch {
	case fork:
		return app.ResumeFork
	case readOnly:
		return app.ResumeReadOnly
	}
	return app.ResumeAppend
}

// uiArgs checks what chat and demo (cmd) take besides their flags: at most
// one IMAGE (returned, "" when absent; checked before the interface starts),
// the numeric flags (--threads capped at the usable cores, saying so on
// stderr) and the display flags.
func uiArgs(cmd string, pos []string, uf uiFlags, stderr io.Writer) (string, ui.Options, error) {
	if len(pos) > 1 {
		return "", ui.Options{}, errUsage
	}
	switch {
	case *uf.threads < 0:
		return "", ui.Options{}, badUsage("--threads %d is negative", *uf.threads)
	case *uf.nctx < 0:
		return "", ui.Options{}, badUsage("--ctx %d is negative", *uf.nctx)
	}
	*uf.threads = capThreads(cmd, *uf.threads, stderr)
	img, err := imageArg(pos)
	if err != nil {
		return "", ui.Options{}, err
	}
	uo, err := uf.uiOptions()
	return img, uo, err
}

// runUI runs the app on the terminal (refusing a pipe or a file) and says
// how to come back.
func runUI(opts app.Options, uo ui.Options, stdout io.Writer) error {
	if err := needTerminal(stdout); err != nil {
		return err
	}
	a := app.New(opts)
	if err := ui.Run(a, uo); err != nil {
		return err
	}
	if st := a.Snapshot(); st.SessionID != "" && hasTurns(st) {
		fmt.Fprintf(stdout, "Session %s saved; continue it with: blip2chat chat --resume=%s\n", st.SessionID, st.SessionID)
	}
	return nil
}

func hasTurns(st app.State) bool {
	for _, e := range st.Entries {
		if e.Kind == app.EntryAnswer {
			return true
		}
	}
	return false
}

// needTerminal refuses to draw the interface into a pipe or a file.
func needTerminal(w io.Writer) error {
	if isTerminal(w) && isTerminal(os.Stdin) {
		return nil
	}
	return errors.New("the chat needs a terminal (stdin and stdout); for scripts use 'blip2chat ask'")
}

// imageArg is the optional IMAGE argument of chat and demo, checked before
// the interface starts: "" when absent.
func imageArg(pos []string) (string, error) {
	if len(pos) == 0 {
		return "", nil
	}
	img := pos[0]
	// The image is opened later, by the interface: a FIFO or a device is
	// refused now, as a missing file is.
	if _, err := safefile.Regular(img); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: no such image file", safefile.Name(img))
	} else if err != nil {
		return "", err
	}
	return img, nil
}
