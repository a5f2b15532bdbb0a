package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options tune a Client. The zero value is the defaults.
type Options struct {
	// Parallel is how many files download at once; 0 means 4.
	Parallel int
	// Retries is how many times a request that failed in a way worth
	// retrying (429, 5xx, 408, a dropped or stalled connection) is tried
	// again without any progress in between; 0 means 8, a negative value
	// none. A download that makes progress between failures resets it.
	Retries int
	// RetryBase and RetryMax bound the exponential backoff between tries
	// (jittered); 0 means 1 s and 30 s.
	RetryBase, RetryMax time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one
	// fails the request with ErrRateLimited. 0 means 5 minutes.
	MaxRetryAfter time.Duration
	// Space measures free disk space; nil means the operating system's.
	Space DiskSpace
	// Log receives one line per retry or warning; nil discards them.
	// Lines never contain the token.
	Log func(line string)
	// Transport carries the requests; nil means a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// NoSymlinks stores copies in snapshots/ instead of symlinks, as
	// huggingface_hub does where symlinks cannot be made (done
	// automatically when making one fails).
	NoSymlinks bool
}

// Client talks to one Hub and one cache.
type Client struct {
	cfg    Config
	opt    Options
	hc     *http.Client
	origin string // scheme://host[:port] of the endpoint: where the token may go
	logMu  sync.Mutex
}

// New makes a client. cfg is usually ConfigFromEnv's.
func New(cfg Config, opt Options) (*Client, error) {
	cfg.Endpoint = strings.TrimRight(cfg.Endpoint, "/")
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("HF_ENDPOINT %q: want an http(s) URL such as %s", cfg.Endpoint, DefaultEndpoint)
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("no Hugging Face cache folder (set HF_HUB_CACHE or HF_HOME)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if opt.Retries == 0 {
		opt.Retries = 8
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = time.Second
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = 30 * time.Second
	}
	if opt.MaxRetryAfter <= 0 {
		opt.MaxRetryAfter = 5 * time.Minute
	}
	if opt.Space == nil {
		opt.Space = osSpace{}
	}
	tr := opt.Transport
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	c := &Client{cfg: cfg, opt: opt, origin: origin(u)}
	c.hc = &http.Client{
		Transport: tr,
		// Redirects are followed by do, which decides where the token goes.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

func (c *Client) logf(format string, args ...any) {
	if c.opt.Log == nil {
		return
	}
	c.logMu.Lock()
	defer c.logMu.Unlock()
	c.opt.Log(c.redact(oneLine(fmt.Sprintf(format, args...))))
}

// response is a successful (2xx) response; cancel ends its request, body
// reads reset the stall timer.
type response struct {
	*http.Response
	first   http.Header // the headers of the first answer, before redirects
	cancel  context.CancelFunc
	stalled func() bool
}

func (r *response) Close() {
	r.Body.Close()
	r.cancel()
}

// retryable marks a failure worth another try, after at least wait.
type retryable struct {
	err  error
	wait time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// do sends a request and follows redirects itself, so that the
// Authorization header goes to the Hub's own origin only and never to a
// CDN it redirects to (a signed URL needs none). Non-2xx responses become
// errors: *retryable for those worth retrying. what and repo name the
// request in messages. The caller must Close the response.
func (c *Client) do(ctx context.Context, method, rawURL string, hdr http.Header, repo, what string) (*response, error) {
	ctx, cancel := context.WithCancel(ctx)
	var stalled bool
	var mu sync.Mutex
	timer := time.AfterFunc(c.cfg.Timeout, func() {
		mu.Lock()
		stalled = true
		mu.Unlock()
		cancel()
	})
	isStalled := func() bool { mu.Lock(); defer mu.Unlock(); return stalled }
	fail := func(err error) (*response, error) {
		timer.Stop()
		cancel()
		return nil, err
	}

	cur := rawURL
	var first http.Header
	for hop := 0; ; hop++ {
		timer.Reset(c.cfg.Timeout)
		u, err := url.Parse(cur)
		if err != nil {
			return fail(fmt.Errorf("%s: bad URL: %v", what, err))
		}
		req, err := http.NewRequestWithContext(ctx, method, cur, nil)
		if err != nil {
			return fail(fmt.Errorf("%s: %v", what, err))
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "blip2chat")
		if c.cfg.Token != "" && origin(u) == c.origin {
			req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil && !isStalled() {
				return fail(context.Cause(ctx))
			}
			why := netError(err)
			if isStalled() {
				why = fmt.Sprintf("no answer for %s", c.cfg.Timeout)
			}
			// A name the resolver says does not exist will not exist in a
			// minute either: say so at once instead of backing off for minutes.
			if dns := (*net.DNSError)(nil); errors.As(err, &dns) && dns.IsNotFound {
				return fail(errorf(ErrNetwork, "%s: cannot resolve %s: offline? (HF_HUB_OFFLINE=1 uses only the local cache, HF_ENDPOINT names a mirror)", what, u.Hostname()))
			}
			return fail(&retryable{err: c.netErr(what, u, why)})
		}
		if first == nil {
			first = resp.Header
		}
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
			resp.Body.Close()
			if hop >= 10 {
				return fail(errorf(ErrServer, "%s: too many redirects", what))
			}
			next, err := u.Parse(resp.Header.Get("Location"))
			if err != nil || (next.Scheme != "http" && next.Scheme != "https") {
				return fail(errorf(ErrServer, "%s: bad redirect", what))
			}
			cur = next.String()
			continue
		}
		timer.Reset(c.cfg.Timeout)
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			timer.Stop()
			cancel()
			e := c.statusError(resp, body, repo, what)
			switch {
			case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
				wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
				if ok && wait > c.opt.MaxRetryAfter {
					return nil, errorf(e.Kind, "%s (the server asks to wait %s)", e.Msg, wait.Round(time.Second))
				}
				return nil, &retryable{err: e, wait: wait}
			}
			return nil, e
		}
		resp.Body = &watchedBody{ReadCloser: resp.Body, timer: timer, timeout: c.cfg.Timeout}
		return &response{Response: resp, first: first, cancel: func() { timer.Stop(); cancel() }, stalled: isStalled}, nil
	}
}

// watchedBody resets the stall timer on every read that returns data.
type watchedBody struct {
	io.ReadCloser
	timer   *time.Timer
	timeout time.Duration
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	if n > 0 {
		w.timer.Reset(w.timeout)
	}
	return n, err
}

// netErr describes a transport failure without the URL's query (a CDN's
// signature) or anything the server sent.
func (c *Client) netErr(what string, u *url.URL, why string) *Error {
	return errorf(ErrNetwork, "%s: %s (%s)", what, why, u.Host)
}

// netError is the innermost message of a transport error.
func netError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(s string, now time.Time) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<31)) * time.Second, true
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// retry runs try until it succeeds, fails with an error that is not
// *retryable, or has failed more than Options.Retries times in a row
// without progress (try reports progress when it got some bytes before
// failing). Waits grow exponentially with jitter, and are at least a
// server's Retry-After.
func (c *Client) retry(ctx context.Context, what string, try func() (progress bool, err error)) error {
	failures := 0
	for {
		progress, err := try()
		var r *retryable
		if err == nil || !errors.As(err, &r) {
			return err
		}
		if progress {
			failures = 0
		}
		failures++
		if c.opt.Retries < 0 || failures > c.opt.Retries {
			if failures > 1 {
				return fmt.Errorf("%w (gave up after %d tries)", r.err, failures)
			}
			return r.err
		}
		wait := c.opt.RetryBase << min(failures-1, 20)
		wait = min(wait, c.opt.RetryMax)
		wait = wait/2 + rand.N(wait/2+1)
		wait = max(wait, r.wait)
		c.logf("%v; retrying in %s (try %d of %d)", r.err, wait.Round(time.Millisecond), failures+1, c.opt.Retries+1)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(wait):
		}
	}
}
