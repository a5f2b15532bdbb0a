package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFileLimitAndKinds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 0); err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if b, err := ReadFile(p, 5); err != nil || string(b) != "hello" {
		t.Fatalf("ReadFile at the limit = %q, %v", b, err)
	}
	var tl *TooLargeError
	if _, err := ReadFile(p, 4); !errors.As(err, &tl) || !strings.Contains(err.Error(), "5 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	_, err := ReadFile(dir, 0)
	if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("folder: %v", err)
	}
	if _, err := Regular(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Regular(folder): %v", err)
	}
	if _, err := Regular(p); err != nil {
		t.Errorf("Regular(file): %v", err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b c.jpg":    "/a/b c.jpg",
		"é.png":         "é.png",
		"t\x1b]0;x\a":   `"t\x1b]0;x\a"`,
		"bad\xff.jpg":   `"bad\xff.jpg"`,
		"new\nline.jpg": `"new\nline.jpg"`,
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestCheckTarget: an output may be new or an existing regular file (to
// be confirmed); it may not be an input (by any name), a folder or a
// symbolic link.
func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jpg")
	other := filepath.Join(dir, "other.md")
	for _, p := range []string{in, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hard := filepath.Join(dir, "hard.jpg")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.md")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	if tg, err := CheckTarget(filepath.Join(dir, "new.md"), in); err != nil || tg.Existing != nil {
		t.Errorf("new file: %+v %v", tg, err)
	}
	if tg, err := CheckTarget(other, in, ""); err != nil || tg.Existing == nil {
		t.Errorf("existing file: %+v %v", tg, err)
	}
	for _, c := range []struct{ path, want string }{
		{in, "is an input"},
		{hard, "is the input " + in},
		{dir, "is a folder"},
		{link, "is a symbolic link (to " + other + ")"},
	} {
		if _, err := CheckTarget(c.path, in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckTarget(%s): %v, want %q", c.path, err, c.want)
		}
	}
}

// TestWriteNamesTarget (U5): a write that fails names the user's path,
// never the hidden temporary file; a target that changed after the check
// is not replaced; a replaced file keeps its permissions.
func TestWriteNamesTarget(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "x.md")
	tg, err := CheckTarget(missing)
	if err != nil {
		t.Fatal(err)
	}
	err = tg.Write([]byte("data"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "cannot write "+missing+": ") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("write into a missing folder: %v", err)
	}

	p := filepath.Join(dir, "x.md")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err = CheckTarget(p)
	if err != nil || tg.Existing == nil {
		t.Fatal(tg, err)
	}
	if err := tg.Write([]byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if b, _ := os.ReadFile(p); string(b) != "new" || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced file: %q, mode %v", b, fi.Mode())
	}
	// Replaced by another file after the check (the confirmation was for
	// the old one): not written.
	os.Remove(p)
	os.WriteFile(p, []byte("someone else's"), 0o644)
	if err := tg.Write([]byte("mine"), 0o644); err == nil || !strings.Contains(err.Error(), "changed meanwhile") {
		t.Errorf("changed target: %v", err)
	}
	// Appeared after a check that found nothing.
	q := filepath.Join(dir, "y.md")
	tq, _ := CheckTarget(q)
	os.WriteFile(q, []byte("someone else's"), 0o644)
	if err := tq.Write([]byte("mine"), 0o644); err == nil || !strings.Contains(err.Error(), "appeared meanwhile") {
		t.Errorf("new target that appeared: %v", err)
	}
	if b, _ := os.ReadFile(q); string(b) != "someone else's" {
		t.Errorf("the file that appeared was replaced: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestTryLock: a second open file cannot take the lock (flock locks belong
// to the open file, so this holds within one process too) until the first
// is released or closed.
func TestTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.jsonl")
	a, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if ok, err := TryLock(a); !ok || err != nil {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	b, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if ok, err := TryLock(b); ok || err != nil {
		t.Fatalf("second lock while the first holds: %v %v", ok, err)
	}
	// Reading is not blocked by the lock.
	if _, err := ReadFile(p, 0); err != nil {
		t.Errorf("read while locked: %v", err)
	}
	if err := Unlock(a); err != nil {
		t.Fatal(err)
	}
	if ok, err := TryLock(b); !ok || err != nil {
		t.Fatalf("lock after the release: %v %v", ok, err)
	}
	Unlock(b)
}
