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
	"github.com/blip2chat/blip2chat/ui"
)

func init() {
	register(&command{
		name:    "chat",
		summary: "chat about an image in the terminal (the default command)",
		usage:   "[-m MODEL_DIR] [--resume [ID]] [--llama-lib DIR] [--no-color] [IMAGE]",
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
		threads:    fs.Int("threads", 0, "CPU `threads` (0: all usable cores, at most 16)"),
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
	modelDir := fs.String("m", "", "model `folder` made by 'blip2chat convert' (default: $"+EnvModel+")")
	var resume resumeFlag
	fs.Var(&resume, "resume", "continue a session: the latest, or --resume=ID (see 'blip2chat sessions')")
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

	var sess *app.Session
	if resume.set {
		// "--resume ID" (a separate word) names a session too.
		if resume.id == "" && len(pos) > 0 {
			if s, err := app.FindSession(sessDir, pos[0]); err == nil {
				sess, pos = s, pos[1:]
			}
		}
		if sess == nil {
			if sess, err = app.FindSession(sessDir, resume.id); err != nil {
				return err
			}
		}
	}
	if len(pos) > 1 {
		return errUsage
	}
	img, err := imageArg(pos)
	if err != nil {
		return err
	}
	uo, err := uf.uiOptions()
	if err != nil {
		return err
	}

	opts := app.Options{Image: img, SessionsDir: sessDir, Resume: sess, Demo: func() *app.ModelSource {
		return app.DemoSource(data, uf.openOptions())
	}}
	dir := *modelDir
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
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("%s: no such model folder (make one with 'blip2chat convert')", dir)
		}
		opts.Model = modelSource(dir, uf.openOptions())
	}
	if err := needTerminal(stdout); err != nil {
		return err
	}
	return runUI(opts, uo, stdout)
}

// runUI runs the app on the terminal and says how to come back.
func runUI(opts app.Options, uo ui.Options, stdout io.Writer) error {
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
	if writerIsTerminal(w) && fileIsTerminal(os.Stdin) {
		return nil
	}
	return errors.New("the chat needs a terminal (stdin and stdout); for scripts use 'blip2chat ask'")
}

func fileIsTerminal(f *os.File) bool { return writerIsTerminal(f) }

// imageArg is the optional IMAGE argument of chat and demo, checked before
// the interface starts: "" when absent.
func imageArg(pos []string) (string, error) {
	if len(pos) == 0 {
		return "", nil
	}
	img := pos[0]
	if st, err := os.Stat(img); err != nil {
		return "", fmt.Errorf("%s: no such image file", img)
	} else if st.IsDir() {
		return "", fmt.Errorf("%s is a folder, not an image", img)
	}
	return img, nil
}
