package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/blip2chat/blip2chat/app"
)

func init() {
	register(&command{
		name:    "sessions",
		summary: "list saved chat sessions (continue one with 'chat --resume=ID')",
		usage:   "",
		run:     runSessions,
	})
}

func runSessions(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["sessions"], stderr)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return errUsage
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	dir := app.SessionsDir(data)
	list, errs := app.ListSessions(dir)
	// Warnings name files as they are: made printable, like the list.
	for _, e := range errs {
		fmt.Fprintf(stderr, "warning: %s\n", app.Printable(e.Error()))
	}
	for _, s := range list {
		if note := s.DamageNote(); note != "" {
			fmt.Fprintf(stderr, "warning: %s: %s\n", app.Printable(s.Path), note)
		}
	}
	if len(list) == 0 {
		fmt.Fprintf(stdout, "No sessions yet in %s.\n", dir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUPDATED\tTURNS\tMODEL\tIMAGE\tFIRST QUESTION")
	for _, s := range list {
		model := filepath.Base(s.Model)
		if s.Demo {
			model = "demo"
		}
		img := "-"
		if s.Image != "" {
			img = filepath.Base(s.Image)
		}
		first := "-"
		for _, t := range s.All {
			first = t.Question
			if t.Caption {
				first = "/caption"
			}
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", clip(s.ID, 40), s.Updated.Local().Format("2006-01-02 15:04"),
			len(s.All), clip(model, 30), clip(img, 30), clip(first, 40))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d session(s) in %s; continue one with: blip2chat chat --resume=ID\n", len(list), dir)
	return nil
}

// clip shortens s to n characters on one line, safe to print: a session
// file holds what a model generated and file names as they are, control
// characters included.
func clip(s string, n int) string {
	s = app.Printable(strings.Join(strings.Fields(s), " "))
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
