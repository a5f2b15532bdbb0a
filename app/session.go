package app

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DataDir is blip2chat's data folder: $XDG_DATA_HOME/blip2chat, else
// ~/.local/share/blip2chat.
func DataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "blip2chat"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data folder: set XDG_DATA_HOME or HOME (%v)", err)
	}
	return filepath.Join(home, ".local", "share", "blip2chat"), nil
}

// SessionsDir is where session files live inside the data folder.
func SessionsDir(dataDir string) string { return filepath.Join(dataDir, "sessions") }

// Record is one line of a session file. Type says which fields are set:
//
//	session   ID, Created, Model, Demo (the first line)
//	image     Path (a new image: the conversation restarts)
//	turn      Turn, Settings; Retry: it replaces the previous turn
//	reset     (the conversation restarts, same image)
//	settings  Settings
type Record struct {
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	ID       string    `json:"id,omitempty"`
	Model    string    `json:"model,omitempty"`
	Demo     bool      `json:"demo,omitempty"`
	Path     string    `json:"path,omitempty"`
	Turn     *Turn     `json:"turn,omitempty"`
	Retry    bool      `json:"retry,omitempty"`
	Settings *Settings `json:"settings,omitempty"`
}

// SessionFile is one session's JSON Lines file. Every Append rewrites the
// whole file through a synced temporary file renamed into place, so the
// file on disk is always complete and parseable: a crash or a kill loses at
// most the record being appended. Sessions are small (kilobytes).
type SessionFile struct {
	Path    string
	ID      string
	records []Record
	buf     bytes.Buffer
}

// newID makes a session id that sorts by creation time.
func newID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return now.Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// CreateSession starts a new session file in dir (created if needed),
// created at now.
func CreateSession(dir, model string, demo bool, now time.Time) (*SessionFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	id := newID(now)
	s := &SessionFile{Path: filepath.Join(dir, id+".jsonl"), ID: id}
	if err := s.Append(Record{Type: "session", ID: id, Model: model, Demo: demo}, now); err != nil {
		return nil, err
	}
	return s, nil
}

// Append adds a record made at now and writes the file atomically
// (temporary file, fsync, rename, fsync of the folder).
func (s *SessionFile) Append(r Record, now time.Time) error {
	r.Time = now
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	s.records = append(s.records, r)
	s.buf.Write(line)
	s.buf.WriteByte('\n')
	return writeAtomic(s.Path, s.buf.Bytes())
}

// Records returns the records so far.
func (s *SessionFile) Records() []Record { return append([]Record(nil), s.records...) }

// writeAtomic replaces path with data: a crash leaves either the old file
// or the new one, both complete.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Session is a session file read back.
type Session struct {
	ID      string
	Path    string
	Created time.Time
	Updated time.Time
	Model   string
	Demo    bool
	// Image is the last image; Turns the conversation about it since the
	// last image or reset (what a resume puts back in the context).
	Image string
	Turns []Turn
	// All is every turn of the session, in order, with retries applied.
	All      []Turn
	Settings *Settings // the last settings recorded
	Records  []Record
}

// ParseSession reads a session file's records. A line that is not valid
// JSON is an error naming the line, except a torn last line, which is
// ignored (a file written by an older version that appended in place).
func ParseSession(data []byte) (*Session, error) {
	s := &Session{}
	lines := bytes.Split(data, []byte("\n"))
	torn := len(data) > 0 && data[len(data)-1] != '\n'
	for i, line := range lines {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			if torn && i == len(lines)-1 {
				break
			}
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if i == 0 && r.Type != "session" {
			break
		}
		s.apply(r)
	}
	if len(s.Records) == 0 || s.Records[0].Type != "session" || s.ID == "" {
		return nil, errors.New("not a blip2chat session (no session record first)")
	}
	return s, nil
}

func (s *Session) apply(r Record) {
	s.Records = append(s.Records, r)
	if !r.Time.IsZero() {
		s.Updated = r.Time
	}
	switch r.Type {
	case "session":
		s.ID, s.Created, s.Model, s.Demo = r.ID, r.Time, r.Model, r.Demo
	case "image":
		s.Image = r.Path
		s.Turns = nil
	case "reset":
		s.Turns = nil
	case "settings":
		s.Settings = r.Settings
	case "turn":
		if r.Turn == nil {
			return
		}
		if r.Settings != nil {
			s.Settings = r.Settings
		}
		if r.Retry && len(s.Turns) > 0 {
			s.Turns[len(s.Turns)-1] = *r.Turn
			if len(s.All) > 0 {
				s.All[len(s.All)-1] = *r.Turn
			}
			return
		}
		s.Turns = append(s.Turns, *r.Turn)
		s.All = append(s.All, *r.Turn)
	}
}

// LoadSession reads one session file.
func LoadSession(path string) (*Session, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseSession(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	s.Path = path
	return s, nil
}

// ListSessions reads every session in dir, newest first. Unreadable files
// are skipped and reported in the returned errors.
func ListSessions(dir string) ([]*Session, []error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []*Session
	var errs []error
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		s, err := LoadSession(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, errs
}

// FindSession finds a session by id (or a unique prefix of one); "" or
// "latest" means the newest.
func FindSession(dir, id string) (*Session, error) {
	all, _ := ListSessions(dir)
	if len(all) == 0 {
		return nil, fmt.Errorf("no sessions in %s", dir)
	}
	if id == "" || id == "latest" {
		return all[0], nil
	}
	var found []*Session
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
		if strings.HasPrefix(s.ID, id) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no session %q in %s (run 'blip2chat sessions' for the list)", id, dir)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%q matches %d sessions; give more of the id", id, len(found))
}

// ReopenSession continues writing an existing session file.
func ReopenSession(s *Session) (*SessionFile, error) {
	data, err := os.ReadFile(s.Path)
	if err != nil {
		return nil, err
	}
	f := &SessionFile{Path: s.Path, ID: s.ID, records: s.Records}
	// Keep only whole lines: a torn line is dropped by the next write.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		f.buf.Write(data[:i+1])
	}
	return f, nil
}
