package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/blip2chat/blip2chat/internal/safefile"
)

// BatchLog is a batch's output file, JSON Lines: one BatchRecord a line,
// appended, each line written whole in one write and synced before the
// next answer starts, so that a crash (kill -9, power) loses at most the
// answer in progress. Opened again, it tells which answers are there:
// rerunning the same command goes on where it stopped.
type BatchLog struct {
	f       *os.File
	path    string
	records []BatchRecord
	done    map[BatchKey]bool
}

// maxBatchLog bounds the output file a batch reads back (a million
// answers is about 1 GB).
const maxBatchLog = 4 << 30

// OpenBatchLog opens (or creates) the output file path and reads the
// answers it holds. A last line cut short by a crash is dropped (the file
// is cut back to the last whole line); any other line that is not a record
// is refused, naming it, and the file is left as it is. The file is
// locked: two batches cannot write it at once.
func OpenBatchLog(path string) (*BatchLog, error) {
	f, err := safefile.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	ok, err := safefile.TryLock(f)
	if err != nil || !ok {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is being written by another batch", safefile.Name(path))
		}
		return nil, err
	}
	l := &BatchLog{f: f, path: path, done: map[BatchKey]bool{}}
	data, err := safefile.ReadAll(f, maxBatchLog)
	if err != nil {
		l.Close()
		return nil, err
	}
	whole := bytes.LastIndexByte(data, '\n') + 1
	for n, line := range bytes.Split(data[:whole], []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r BatchRecord
		if err := json.Unmarshal(line, &r); err != nil || r.Image == "" || r.Model == "" {
			l.Close()
			if err == nil {
				err = fmt.Errorf("no image or model")
			}
			return nil, fmt.Errorf("%s line %d is not a batch answer (%v): give another --out file", safefile.Name(path), n+1, err)
		}
		l.add(r)
	}
	if whole < len(data) {
		if err := f.Truncate(int64(whole)); err != nil {
			l.Close()
			return nil, fmt.Errorf("cannot cut the unfinished last line of %s: %w", safefile.Name(path), err)
		}
	}
	return l, nil
}

func (l *BatchLog) add(r BatchRecord) {
	if !l.done[r.Key()] {
		l.records = append(l.records, r)
	}
	l.done[r.Key()] = true
}

// Done says whether the file holds the answer k.
func (l *BatchLog) Done(k BatchKey) bool { return l.done[k] }

// Records are the answers in the file, in order, each key once.
func (l *BatchLog) Records() []BatchRecord { return l.records }

// Write appends r as a line and syncs the file.
func (l *BatchLog) Write(r BatchRecord) error {
	line, err := MarshalRecord(r)
	if err != nil {
		return err
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("cannot write %s: %w", safefile.Name(l.path), err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("cannot write %s: %w", safefile.Name(l.path), err)
	}
	l.add(r)
	return nil
}

// MarshalRecord is r as one line of JSON Lines, newline included; the
// answer's characters are kept as they are (no HTML escaping).
func MarshalRecord(r BatchRecord) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Close unlocks and closes the file.
func (l *BatchLog) Close() error {
	safefile.Unlock(l.f)
	return l.f.Close()
}
