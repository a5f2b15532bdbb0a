package app_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blip2chat/blip2chat/app"
)

// TestResolveModel: a folder is a folder; an installed model is found by
// its catalogue name (any case), its repository, or ORG/NAME; a known
// model that is not installed says what to pull; anything else comes back
// for the caller to report as a missing folder.
func TestResolveModel(t *testing.T) {
	data := t.TempDir()
	install := func(name string) string {
		dir := filepath.Join(app.ModelsDir(data), filepath.FromSlash(name))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "vision.gguf"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	opt := install("blip2-opt-2.7b")
	mine := install("me/my-blip")
	folder := t.TempDir()
	for _, c := range []struct {
		arg, want string
		missing   string // the NotInstalledError's name
		catalogue bool
	}{
		{arg: folder, want: folder},
		{arg: "blip2-opt-2.7b", want: opt},
		{arg: "BLIP2-OPT-2.7B", want: opt},
		{arg: "Salesforce/blip2-opt-2.7b", want: opt},
		{arg: "me/my-blip", want: mine},
		{arg: "blip2-flan-t5-xl", missing: "blip2-flan-t5-xl", catalogue: true},
		{arg: "Salesforce/blip2-flan-t5-xl@refs/pr/6", missing: "blip2-flan-t5-xl@refs/pr/6", catalogue: true},
		{arg: "me/other", missing: "me/other"},
		{arg: "no-such-folder", want: "no-such-folder"},
		{arg: "/no/such/folder", want: "/no/such/folder"},
		{arg: "", want: ""},
	} {
		got, err := app.ResolveModel(data, c.arg)
		var ni *app.NotInstalledError
		switch {
		case c.missing != "":
			if !errors.As(err, &ni) || ni.Name != c.missing || (ni.Model != nil) != c.catalogue {
				t.Errorf("%q: %q, %v; want not installed %q", c.arg, got, err, c.missing)
			}
		case err != nil || got != c.want:
			t.Errorf("%q: %q, %v; want %q", c.arg, got, err, c.want)
		}
	}
	if !app.IsModelName(data, "blip2-flan-t5-xl") || !app.IsModelName(data, "me/my-blip") || app.IsModelName(data, "me/other") || app.IsModelName(data, folder) {
		t.Error("IsModelName")
	}
	list, err := app.Installed(data)
	if err != nil || len(list) != 2 || list[0].Name != "blip2-opt-2.7b" || list[1].Name != "me/my-blip" {
		t.Fatalf("Installed: %+v, %v", list, err)
	}
	im, err := app.FindInstalled(data, "me/my-blip")
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Remove(im); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(mine)); !os.IsNotExist(err) {
		t.Errorf("the empty organization folder stays: %v", err)
	}
}
