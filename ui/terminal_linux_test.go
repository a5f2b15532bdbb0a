package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/blip2chat/blip2chat/app"
	"github.com/blip2chat/blip2chat/app/apptest"
)

// TestC7PanicRestoresTerminal runs the interface in a child process (this
// test binary) on a pseudo-terminal, makes it end in each of the ways it
// can be made to end, and checks that the terminal is back as it was: the
// last switch to the alternate screen is undone, mouse reporting is off,
// the cursor shows, the line discipline is cooked again (echo, line
// editing), and a panic is reported after all that, on the normal screen.
func TestC7PanicRestoresTerminal(t *testing.T) {
	if mode := os.Getenv("BLIP2CHAT_TEST_C7_CHILD"); mode != "" {
		c7Child(t, mode)
		return
	}
	for _, c := range []struct {
		mode string
		send string         // typed once the interface is ready
		sig  syscall.Signal // or sent
		want string         // in what follows the terminal's restoration
	}{
		{mode: "job", send: "hello\r", want: "internal error while answering: boom in Ask"},
		{mode: "update", send: "!", want: "internal error in the interface"},
		{mode: "command", send: "@", want: "internal error while testing: boom in a command"},
		{mode: "wedged", send: "hello\r", want: "the interface stopped answering"},
		{mode: "sigterm", sig: syscall.SIGTERM},
		{mode: "sighup", sig: syscall.SIGHUP},
		{mode: "ctrl-c", send: "\x03"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			out, tio, elapsed := runOnPTY(t, c.mode, c.send, c.sig)
			t.Logf("%s: ended %v after the input", c.mode, elapsed)
			if elapsed > 10*time.Second {
				t.Errorf("took %v to end", elapsed)
			}
			enter := strings.LastIndex(out, "\x1b[?1049h")
			if enter < 0 {
				t.Fatalf("the interface never showed:\n%q", out)
			}
			after := out[enter:]
			for _, seq := range []struct{ on, off, what string }{
				{"\x1b[?1049h", "\x1b[?1049l", "the alternate screen"},
				{"\x1b[?1002h", "\x1b[?1002l", "mouse reporting"},
				{"\x1b[?1006h", "\x1b[?1006l", "SGR mouse reporting"},
				{"\x1b[?25l", "\x1b[?25h", "the hidden cursor"},
			} {
				if strings.LastIndex(after, seq.off) < strings.LastIndex(after, seq.on) || !strings.Contains(after, seq.off) {
					t.Errorf("%s is left on", seq.what)
				}
			}
			if tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 {
				t.Errorf("the terminal is left in raw mode: lflag %#x", tio.Lflag)
			}
			report := after[strings.LastIndex(after, "\x1b[?1049l"):]
			if c.want != "" && !strings.Contains(report, c.want) {
				t.Errorf("the report after the restoration lacks %q:\n%s", c.want, ansi.Strip(report))
			}
			if c.want != "" && !strings.Contains(report, "goroutine ") && !strings.Contains(report, ".go:") {
				t.Errorf("no trace in the report:\n%s", ansi.Strip(report))
			}
		})
	}
}

// runOnPTY runs the child in mode on a new pseudo-terminal, waits for its
// interface to be ready, types send or sends sig, and returns what it
// wrote, the terminal's modes once it ended, and how long it took to end.
func runOnPTY(t *testing.T, mode, send string, sig syscall.Signal) (string, *unix.Termios, time.Duration) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip("no pseudo-terminal:", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestC7PanicRestoresTerminal$")
	cmd.Env = append(os.Environ(), "BLIP2CHAT_TEST_C7_CHILD="+mode, "BLIP2CHAT_TEST_C7_DIR="+t.TempDir(), "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	go func() {
		b := make([]byte, 32<<10)
		for {
			n, err := ptmx.Read(b)
			// Answer the queries a terminal answers (the background
			// colour, the cursor position), or the child waits for them.
			if strings.Contains(string(b[:n]), "\x1b]11;?") {
				ptmx.WriteString("\x1b]11;rgb:0000/0000/0000\x1b\\")
			}
			if strings.Contains(string(b[:n]), "\x1b[6n") {
				ptmx.WriteString("\x1b[1;1R")
			}
			mu.Lock()
			out.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	text := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	deadline := time.Now().Add(30 * time.Second)
	// The status line says ready with the image loaded (before the app
	// starts it says ready too).
	ready := regexp.MustCompile(`ready .*image cat\.png`)
	for !ready.MatchString(ansi.Strip(text())) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the interface never got ready:\n%s", ansi.Strip(text()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	if send != "" {
		ptmx.WriteString(send)
	}
	if sig != 0 {
		cmd.Process.Signal(sig)
	}
	cmd.Wait()
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond) // the last of the output
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return text(), tio, elapsed
}

// panicky is an engine whose answers panic.
type panicky struct{ *apptest.Engine }

func (panicky) Ask(context.Context, string, func(string)) (app.Answer, error) {
	panic("boom in Ask")
}

// faulty is the interface with faults on demand: "!" makes Update panic,
// "@" runs a command that panics; when wedged, it stops answering once
// the app fails (as when the failed job holds the app's lock).
type faulty struct {
	*Model
	wedged bool
}

func (f faulty) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		switch msg.String() {
		case "!":
			panic("boom in Update")
		case "@":
			return f, guard("testing", func() tea.Msg { panic("boom in a command") })
		}
	case failedMsg:
		if f.wedged {
			select {}
		}
	}
	m, c := f.Model.Update(msg)
	f.Model = m.(*Model)
	return f, c
}

// c7Child runs the interface on the terminal it was given, in mode.
func c7Child(t *testing.T, mode string) {
	dir := os.Getenv("BLIP2CHAT_TEST_C7_DIR")
	img := apptest.WritePNG(t, dir, "cat.png", 40, 30)
	src := &app.ModelSource{Dir: filepath.Join(dir, "model"), Image: img,
		Open: func(context.Context, func(string)) (app.Engine, error) {
			if mode == "job" || mode == "wedged" {
				return panicky{apptest.NewEngine()}, nil
			}
			return apptest.NewEngine(), nil
		}}
	a := app.New(app.Options{Model: src, SessionsDir: filepath.Join(dir, "sessions")})
	var err error
	switch mode {
	case "job", "sigterm", "sighup", "ctrl-c":
		err = Run(a, Options{})
	default:
		m := New(a, Options{})
		err = runProgram(a, faulty{Model: m, wedged: mode == "wedged"})
	}
	fmt.Fprintf(os.Stderr, "Run: %v\n", err)
}
