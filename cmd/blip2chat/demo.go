package main

import (
	"io"

	"github.com/blip2chat/blip2chat/app"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "try the interface on a tiny built-in model (trained only on synthetic shapes)",
		usage:   "[--llama-lib DIR] [--no-color] [IMAGE]",
		run:     runDemo,
	})
}

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(commands["demo"], stderr)
	uf := addUIFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	img, uo, err := uiArgs("demo", pos, uf, stderr)
	if err != nil {
		return err
	}
	data, err := app.DataDir()
	if err != nil {
		return err
	}
	return runUI(app.Options{
		Model:       app.DemoSource(data, uf.openOptions()),
		Image:       img,
		SessionsDir: app.SessionsDir(data),
	}, uo, stdout)
}
