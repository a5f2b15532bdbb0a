package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
)

// The kinds of failure; every error the client returns wraps one of them
// or a context error, and its message is one line.
var (
	ErrRepoNotFound     = errors.New("repository not found")
	ErrRevisionNotFound = errors.New("revision not found")
	ErrEntryNotFound    = errors.New("file not found")
	ErrGated            = errors.New("gated repository")
	ErrForbidden        = errors.New("access denied")
	ErrRateLimited      = errors.New("rate limited")
	ErrServer           = errors.New("server error")
	ErrNetwork          = errors.New("network error")
	ErrChecksum         = errors.New("checksum mismatch")
	ErrUnsafeListing    = errors.New("unsafe file listing")
	ErrNotCheckpoint    = errors.New("not a usable checkpoint")
	ErrNoSpace          = errors.New("not enough disk space")
	ErrNotCached        = errors.New("not in the cache")
)

// Error is a failure of one kind (Kind, one of the Err values above) with
// a message for people.
type Error struct {
	Kind error
	Msg  string
	// Status and Code are the HTTP status and the Hub's X-Error-Code of a
	// failed response (0 and "" otherwise).
	Status int
	Code   string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: oneLine(fmt.Sprintf(format, args...))}
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}

// serverMessage extracts the Hub's explanation of a failed response: the
// X-Error-Message header, else a JSON body's "error", else a short
// non-HTML body; cut to one line of at most 200 characters.
func serverMessage(resp *http.Response, body []byte) string {
	msg := resp.Header.Get("X-Error-Message")
	if msg == "" {
		var j struct {
			Error any `json:"error"`
		}
		if json.Unmarshal(body, &j) == nil && j.Error != nil {
			msg = fmt.Sprint(j.Error)
		} else if !strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "html") {
			msg = string(body)
		}
	}
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	return msg
}

// statusError turns a failed Hub response into an Error, as
// huggingface_hub's hf_raise_for_status reads X-Error-Code. what names
// the request ("Salesforce/x@main", "Salesforce/x@abc1234: config.json").
func (c *Client) statusError(resp *http.Response, body []byte, repo, what string) *Error {
	code := resp.Header.Get("X-Error-Code")
	msg := serverMessage(resp, body)
	tail := ""
	if msg != "" {
		tail = " (the Hub says: " + msg + ")"
	}
	page := c.cfg.Endpoint + "/" + repo
	auth := "no token was sent: set HF_TOKEN or log in with `hf auth login`"
	if c.cfg.Token != "" {
		auth = "the token was sent"
	}
	var e *Error
	switch {
	case code == "GatedRepo" && resp.StatusCode == http.StatusUnauthorized:
		e = errorf(ErrGated, "%s is gated: accept its conditions at %s and use a token (%s)%s", repo, page, auth, tail)
	case code == "GatedRepo":
		e = errorf(ErrGated, "%s is gated and this account has not been granted access: ask for it at %s%s", repo, page, tail)
	case code == "RevisionNotFound":
		e = errorf(ErrRevisionNotFound, "%s: revision not found%s", what, tail)
	case code == "EntryNotFound":
		e = errorf(ErrEntryNotFound, "%s: file not found%s", what, tail)
	case code == "RepoNotFound" || resp.StatusCode == http.StatusUnauthorized:
		// The Hub answers 401 for private and missing repositories alike.
		e = errorf(ErrRepoNotFound, "%s: repository not found on %s, or private (%s)%s", repo, c.cfg.Endpoint, auth, tail)
	case resp.StatusCode == http.StatusForbidden:
		e = errorf(ErrForbidden, "%s: access denied (HTTP 403)%s", what, tail)
	case resp.StatusCode == http.StatusNotFound:
		e = errorf(ErrEntryNotFound, "%s: not found (HTTP 404)%s", what, tail)
	case resp.StatusCode == http.StatusTooManyRequests:
		e = errorf(ErrRateLimited, "%s: rate limited by the Hub (HTTP 429); try again later%s", what, tail)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		e = errorf(ErrServer, "%s: the server failed (HTTP %d)%s", what, resp.StatusCode, tail)
	default:
		e = errorf(ErrServer, "%s: unexpected HTTP %d%s", what, resp.StatusCode, tail)
	}
	e.Msg = c.redact(e.Msg)
	e.Status, e.Code = resp.StatusCode, code
	return e
}

// redact hides the token wherever it might be echoed (a hostile or broken
// server quoting the Authorization header back).
func (c *Client) redact(s string) string {
	if c.cfg.Token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.Token, "[token]")
}
