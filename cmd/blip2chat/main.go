// Command blip2chat talks to an image: a local BLIP-2 chat in the terminal.
//
// Each subcommand lives in its own file and registers itself in init, so that
// commands can be added without touching this dispatcher.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// command is one subcommand of blip2chat.
type command struct {
	name    string
	summary string // one line for the command list
	usage   string // argument synopsis after the command name
	// run parses args (after the command name) and does the work. Errors are
	// printed as one line by main; return errUsage to print usage too.
	run func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]*command{}

// defaultCommand runs when no subcommand is named.
var defaultCommand = "chat"

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("duplicate command " + c.name)
	}
	commands[c.name] = c
}

// errUsage asks main to print the command's usage after the message.
var errUsage = errors.New("usage")

// usageError is a bad command line (an unknown flag, a value out of range):
// main prints it as one line and exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badUsage returns a usageError with a formatted message.
func badUsage(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitError carries an exit status other than 1 for an error already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	name, named := defaultCommand, false
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args, named = args[0], args[1:], true
	}
	switch {
	case name == "help" && len(args) == 1 && commands[args[0]] != nil:
		// "blip2chat help ask" is "blip2chat ask -h".
		name, args = args[0], []string{"-h"}
	case name == "help", !named && len(args) > 0 && (args[0] == "-h" || args[0] == "--help"):
		// "blip2chat -h" lists the commands rather than the default
		// command's flags ("blip2chat chat -h" shows those).
		printCommands(stdout)
		return 0
	case name == "version", !named && len(args) > 0 && args[0] == "--version":
		fmt.Fprintf(stdout, "blip2chat %s\n", version)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "blip2chat: unknown command %q; run 'blip2chat help' for the list\n", name)
		return 2
	}
	err := c.run(args, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "usage: blip2chat %s %s\n", c.name, c.usage)
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, context.Canceled) {
		// Only interruptContext cancels a command's context.
		fmt.Fprintf(stderr, "blip2chat %s: interrupted\n", c.name)
		return 130
	}
	fmt.Fprintf(stderr, "blip2chat %s: %s\n", c.name, escapeControls(err.Error()))
	if errors.As(err, new(usageError)) {
		return 2
	}
	return 1
}

// interruptContext is the context of a command's work: done on Ctrl+C
// (SIGINT) or SIGTERM, after which the command stops within about a second
// and returns the context's error (main then says "interrupted" and exits
// with 130, the status a shell gives a process ended by SIGINT). The
// signals' default action is back once the first one arrived, so that a
// second one ends the process at once, whatever it waits for.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// escapeControls makes a message safe for the terminal and one line: its
// control characters (ESC, BEL, CR, newlines, C1 codes) and invalid UTF-8
// bytes are written as Go escapes (\x1b, \n). A path or a library's message
// may hold escape sequences a terminal would act on; error paths quote the
// paths they name (safefile.Name), and this is the last line of defence for
// the rest.
func escapeControls(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		clean = clean && !unicode.IsControl(r)
	}
	if clean {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u0085'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func printCommands(w io.Writer) {
	fmt.Fprintf(w, "blip2chat %s: talk to an image, locally (BLIP-2)\n\nusage: blip2chat <command> [flags] [args]\n\ncommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'blip2chat <command> -h' for a command's flags.\n")
}

// newFlagSet returns a FlagSet that prints its usage to stderr with the
// command's synopsis and returns errors instead of exiting.
func newFlagSet(c *command, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: blip2chat %s %s\n\n%s\n\nflags:\n", c.name, c.usage, c.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseInterspersed parses flags that may appear before or after positional
// arguments (Go's flag package stops at the first positional one). -h prints
// the usage and returns flag.ErrHelp; any other parse error is returned as a
// one-line usageError (the flag package would print the whole usage).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() { fs.Usage = usage; fs.SetOutput(out) }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usage()
				return nil, err
			}
			return nil, badUsage("%v (see 'blip2chat %s -h')", err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
