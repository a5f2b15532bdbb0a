// Command blip2chat talks to an image: a local BLIP-2 chat in the terminal.
//
// Each subcommand lives in its own file and registers itself in init, so that
// commands can be added without touching this dispatcher.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
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

// exitError carries an exit status other than 1 for an error already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	name := defaultCommand
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	switch name {
	case "help", "-h", "--help":
		printCommands(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintf(stdout, "blip2chat %s\n", version)
		return 0
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") && commands[name] == nil {
		printCommands(stdout)
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
	fmt.Fprintf(stderr, "blip2chat %s: %v\n", c.name, err)
	return 1
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
// arguments (Go's flag package stops at the first positional one).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
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
