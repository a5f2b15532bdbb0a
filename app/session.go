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
	"sync"
	"time"

	"github.com/blip2chat/blip2chat/internal/safefile"
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

// maxSessionSize bounds a session file read back: sessions are kilobytes
// to megabytes; a larger file is not one.
const maxSessionSize = 1 << 30

// Record is one line of a session file. Type says which fields are set:
//
//	session   ID, Created, Model, Demo; Fork: the session it copies (the first line)
//	image     Path (a new image: the conversation restarts)
//	ask       Turn (its question), Retry: a question, written as it is asked
//	more      Text: the answer being generated grows by Text (written as it streams)
//	turn      Turn, Settings; Retry: it replaces the previous turn (the finished answer)
//	dropped   the question asked last failed before any answer came
//	reset     (the conversation restarts, same image)
//	settings  Settings
//
// An ask that no turn (or dropped) follows is an answer the program did
// not live to finish: it reads back as a turn with StopInterrupted.
// Versions without ask and more read the turns alone.
type Record struct {
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	ID       string    `json:"id,omitempty"`
	Model    string    `json:"model,omitempty"`
	Demo     bool      `json:"demo,omitempty"`
	Fork     string    `json:"fork,omitempty"`
	Path     string    `json:"path,omitempty"`
	Turn     *Turn     `json:"turn,omitempty"`
	Text     string    `json:"text,omitempty"`
	Retry    bool      `json:"retry,omitempty"`
	Settings *Settings `json:"settings,omitempty"`
}

// ErrSessionOpen is what errors.Is finds when another app (in this
// process or another) writes the session.
var ErrSessionOpen = errors.New("the session is open in another blip2chat")

// SessionFile is one session's JSON Lines file, open for appending. Each
// record is one line added at the end of the file (and synced, except the
// pieces of a streaming answer), so that a crash or a kill loses at most
// the line being written, which the next reader skips. The file is locked
// while open: one app writes a session at a time. A record whose write
// fails (a full disk) waits in memory and goes out before the next one.
type SessionFile struct {
	Path string
	ID   string

	mu      sync.Mutex
	f       *os.File
	size    int64  // the end of the last whole line written
	pending []byte // lines not written yet (a write failed)
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
	return createSession(dir, Record{Type: "session", Model: model, Demo: demo}, nil, now)
}

// ForkSession starts a new session file in dir that continues s: a copy of
// its records under a new id (for a session open in another app).
func ForkSession(s *Session, dir string, now time.Time) (*SessionFile, error) {
	var rest []Record
	if len(s.Records) > 1 {
		rest = s.Records[1:]
	}
	return createSession(dir, Record{Type: "session", Model: s.Model, Demo: s.Demo, Fork: s.ID}, rest, now)
}

// createSession writes a new session file: head with a new id, then
// records as they are.
func createSession(dir string, head Record, records []Record, now time.Time) (*SessionFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	for {
		id := newID(now)
		path := filepath.Join(dir, id+".jsonl")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue // the same second and the same 24 random bits
		}
		if err != nil {
			return nil, err
		}
		s := &SessionFile{Path: path, ID: id, f: f}
		if ok, err := safefile.TryLock(f); !ok || err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("cannot lock %s: %v", path, err)
		}
		head.ID, head.Time = id, now
		var b bytes.Buffer
		for _, r := range append([]Record{head}, records...) {
			line, err := json.Marshal(r)
			if err != nil {
				s.Close()
				return nil, err
			}
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := s.write(b.Bytes(), true); err != nil {
			s.Close()
			os.Remove(path)
			return nil, err
		}
		return s, nil
	}
}

// ReopenSession opens s's file to continue it, locked, and returns it
// with the session as the file holds it now (another app may have added
// to it since s was read). A torn last line, left by a crash, is cut
// off. It fails with ErrSessionOpen when another app has the file open.
func ReopenSession(s *Session) (*SessionFile, *Session, error) {
	f, err := safefile.OpenFile(s.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	ok, err := safefile.TryLock(f)
	if err != nil || !ok {
		f.Close()
		if err == nil {
			err = fmt.Errorf("session %s: %w", safefile.Name(s.ID), ErrSessionOpen)
		}
		return nil, nil, err
	}
	sf := &SessionFile{Path: s.Path, ID: s.ID, f: f}
	data, err := safefile.ReadAll(f, maxSessionSize)
	if err == nil {
		s, err = ParseSession(data)
	}
	if err != nil {
		sf.Close()
		return nil, nil, fmt.Errorf("%s: %v", safefile.Name(sf.Path), err)
	}
	s.Path = sf.Path
	sf.size = int64(bytes.LastIndexByte(data, '\n') + 1)
	if sf.size < int64(len(data)) {
		if err := f.Truncate(sf.size); err != nil {
			sf.Close()
			return nil, nil, err
		}
	}
	return sf, s, nil
}

// SessionInUse reports whether another app has s's file open (see
// ReopenSession), without keeping it.
func SessionInUse(s *Session) (bool, error) {
	f, err := safefile.OpenFile(s.Path, os.O_RDWR, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	ok, err := safefile.TryLock(f)
	if ok {
		safefile.Unlock(f)
	}
	return !ok && err == nil, err
}

// Append adds a record made at now at the end of the file. Records but
// the pieces of a streaming answer are synced before Append returns.
func (s *SessionFile) Append(r Record, now time.Time) error {
	r.Time = now
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.write(append(line, '\n'), r.Type != "more")
}

// write appends whole lines after the lines still pending. A failed write
// is cut back, so that no torn line stays in the file, and its lines wait
// for the next write.
func (s *SessionFile) write(lines []byte, sync bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("the session file is closed")
	}
	s.pending = append(s.pending, lines...)
	n, err := s.f.WriteAt(s.pending, s.size)
	if err == nil && sync {
		err = s.f.Sync()
	}
	if err != nil {
		if n > 0 {
			s.f.Truncate(s.size)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("%s: %w", safefile.Name(s.Path), err)
	}
	s.size += int64(n)
	s.pending = s.pending[:0]
	return nil
}

// Close writes what is pending (once more) and closes the file, releasing
// its lock.
func (s *SessionFile) Close() error {
	var err error
	if len(s.pending) > 0 {
		err = s.write(nil, true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return err
	}
	safefile.Unlock(s.f)
	err = errors.Join(err, s.f.Close())
	s.f = nil
	return err
}

// Session is a session file read back.
type Session struct {
	ID      string
	Path    string
	Created time.Time
	Updated time.Time
	Model   string
	Demo    bool
	Fork    string // the session this one copies, if any
	// Image is the last image; Turns the conversation about it since the
	// last image or reset (what a resume puts back in the context).
	Image string
	Turns []Turn
	// All is every turn of the session, in order, with retries applied.
	All      []Turn
	Settings *Settings // the last settings recorded
	// Records are the records, with each answer whole: an ask and its
	// pieces become the turn they make.
	Records []Record
	// Damaged lists the lines (from 1) that were not records and were
	// skipped: at most maxDamaged of them, then DamagedMore counts the
	// rest.
	Damaged     []int
	DamagedMore int

	pending *Record // the turn an ask started, until its turn record
}

// maxDamaged bounds the damaged lines a Session lists.
const maxDamaged = 10

// ParseSession reads a session file's records. A line that is not a
// record is skipped and listed in Damaged; a torn last line (a crash in
// mid-write) is dropped silently. The first line must be the session
// record.
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
		if err := json.Unmarshal(line, &r); err != nil || r.Type == "" {
			if len(s.Records) == 0 {
				if err == nil {
					err = errors.New("no record type")
				}
				return nil, fmt.Errorf("not a blip2chat session: line %d: %v", i+1, err)
			}
			if torn && i == len(lines)-1 {
				break
			}
			s.damaged(i + 1)
			continue
		}
		if len(s.Records) == 0 && (r.Type != "session" || r.ID == "") {
			return nil, errors.New("not a blip2chat session (no session record first)")
		}
		s.apply(r)
	}
	if len(s.Records) == 0 {
		return nil, errors.New("not a blip2chat session (empty)")
	}
	s.interrupt()
	return s, nil
}

func (s *Session) damaged(line int) {
	if len(s.Damaged) < maxDamaged {
		s.Damaged = append(s.Damaged, line)
	} else {
		s.DamagedMore++
	}
}

// DamageNote says which lines were skipped ("" when none): "line 3",
// "lines 3 and 5", "lines 3, 5, 9 and 12 more".
func (s *Session) DamageNote() string {
	if len(s.Damaged) == 0 {
		return ""
	}
	nums := make([]string, len(s.Damaged))
	for i, n := range s.Damaged {
		nums[i] = fmt.Sprint(n)
	}
	if s.DamagedMore > 0 {
		nums = append(nums, fmt.Sprintf("%d more", s.DamagedMore))
	}
	if len(nums) == 1 {
		return "line " + nums[0] + " is damaged and was skipped"
	}
	return "lines " + strings.Join(nums[:len(nums)-1], ", ") + " and " + nums[len(nums)-1] + " are damaged and were skipped"
}

// apply adds one record read from the file.
func (s *Session) apply(r Record) {
	if !r.Time.IsZero() {
		s.Updated = r.Time
	}
	switch r.Type {
	case "ask":
		s.interrupt()
		if r.Turn == nil {
			return
		}
		t := *r.Turn
		s.pending = &Record{Type: "turn", Time: r.Time, Turn: &t, Retry: r.Retry}
		return
	case "more":
		if s.pending != nil {
			s.pending.Turn.Answer += r.Text
		}
		return
	case "dropped":
		s.pending = nil
		return
	case "turn":
		s.pending = nil
	default:
		s.interrupt()
	}
	s.add(r)
}

// interrupt ends the answer an ask started and nothing finished: the
// program stopped while it was generated.
func (s *Session) interrupt() {
	if p := s.pending; p != nil {
		s.pending = nil
		p.Turn.Stop = StopInterrupted
		s.add(*p)
	}
}

// add adds a whole record to the session.
func (s *Session) add(r Record) {
	s.Records = append(s.Records, r)
	switch r.Type {
	case "session":
		s.ID, s.Created, s.Model, s.Demo, s.Fork = r.ID, r.Time, r.Model, r.Demo, r.Fork
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

// LoadSession reads one session file. A FIFO or any other file that is
// not a regular file is refused at once.
func LoadSession(path string) (*Session, error) {
	data, err := safefile.ReadFile(path, maxSessionSize)
	if err != nil {
		return nil, err
	}
	s, err := ParseSession(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", safefile.Name(path), err)
	}
	s.Path = path
	return s, nil
}

// sessionIDs lists the session files in dir by id (their names), newest
// first.
func sessionIDs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if e.IsDir() || !ok || id == "" || strings.HasPrefix(id, ".") {
			continue
		}
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	return ids, nil
}

// ListSessions reads every session in dir, newest first. Unreadable files
// are skipped and reported in the returned errors.
func ListSessions(dir string) ([]*Session, []error) {
	ids, err := sessionIDs(dir)
	if err != nil {
		return nil, []error{err}
	}
	var out []*Session
	var errs []error
	for _, id := range ids {
		s, err := LoadSession(filepath.Join(dir, id+".jsonl"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, errs
}

// ErrNoSession is what errors.Is finds when no session has the id asked
// for.
var ErrNoSession = errors.New("no such session")

// noSession is an ErrNoSession with its own message.
type noSession string

func (e noSession) Error() string        { return string(e) }
func (e noSession) Is(target error) bool { return target == ErrNoSession }

// FindSession finds a session by id, or by a prefix of one id; "" or
// "latest" means the newest. It never settles for another session than
// the one meant: a prefix of several ids is an error listing them, and a
// session that cannot be read is an error saying why (not "no session",
// nor the next one down).
func FindSession(dir, id string) (*Session, error) {
	ids, err := sessionIDs(dir)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, noSession(fmt.Sprintf("no sessions in %s", dir))
	}
	var found []string
	switch {
	case id == "" || id == "latest":
		found = ids[:1]
	default:
		for _, c := range ids {
			if c == id {
				found = []string{c}
				break
			}
			if strings.HasPrefix(c, id) {
				found = append(found, c)
			}
		}
	}
	switch len(found) {
	case 0:
		return nil, noSession(fmt.Sprintf("no session %s in %s (run 'blip2chat sessions' for the list)", safefile.Name(id), dir))
	case 1:
		s, err := LoadSession(filepath.Join(dir, found[0]+".jsonl"))
		if err != nil {
			what := "session " + safefile.Name(found[0])
			if id == "" || id == "latest" {
				what = "the latest " + what
			}
			return nil, fmt.Errorf("%s cannot be read: %v (run 'blip2chat sessions' for the others)", what, err)
		}
		return s, nil
	}
	sort.Strings(found)
	list := found
	if len(list) > 10 {
		list = append(list[:10:10], fmt.Sprintf("and %d more", len(found)-10))
	}
	for i := range list {
		list[i] = safefile.Name(list[i])
	}
	return nil, fmt.Errorf("%s matches %d sessions: %s; give more of the id", safefile.Name(id), len(found), strings.Join(list, ", "))
}
