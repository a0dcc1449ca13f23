package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// httpError is a non-200 answer.
type httpError struct {
	url  string
	code int
}

func (e *httpError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.url, e.code) }

// transient: the server is there but overloaded or restarting; worth another try.
func (e *httpError) transient() bool {
	return e.code >= 500 || e.code == http.StatusTooManyRequests || e.code == http.StatusRequestTimeout
}

// ChecksumError reports a download whose SHA-256 is not the one in the signed index.
type ChecksumError struct {
	URL       string
	Want, Got string
	// WantSize and GotSize are set when the sizes already differ.
	WantSize, GotSize int64
}

func (e *ChecksumError) Error() string {
	if e.WantSize != 0 {
		return fmt.Sprintf("%s: the signed index says %d bytes, the mirror served a complete file of %d bytes: the mirror is out of sync with its InRelease or tampered with (nothing was cached)", e.URL, e.WantSize, e.GotSize)
	}
	return fmt.Sprintf("%s: SHA-256 mismatch: the signed index says %s, the download is %s; the mirror serves a corrupt or tampered file (it was not cached)", e.URL, e.Want, e.Got)
}

func (e *ChecksumError) Is(target error) bool { return target == ErrChecksum }

// The network deadlines. Every request has a connect, a response-header and
// an idle-read deadline; every download (all its attempts and the pauses
// between them) an overall one, inside the caller's context. Each can be
// set in Options or by its environment variable (a Go duration: 45s, 2m).
const (
	EnvConnectTimeout  = "KMATRIX_NET_CONNECT_TIMEOUT"
	EnvHeaderTimeout   = "KMATRIX_NET_HEADER_TIMEOUT"
	EnvIdleTimeout     = "KMATRIX_NET_IDLE_TIMEOUT"
	EnvDownloadTimeout = "KMATRIX_DOWNLOAD_TIMEOUT"
)

// Defaults of the deadlines: a Debian mirror answers in well under a
// second; the largest download (a 7.x linux-binary, ~70 MB) takes a minute
// on a slow line, so the overall deadline leaves room for retries.
const (
	defaultConnectTimeout  = 15 * time.Second
	defaultHeaderTimeout   = 30 * time.Second
	defaultIdleTimeout     = 30 * time.Second
	defaultDownloadTimeout = 15 * time.Minute
)

// DeadlineError is a network deadline that expired: which one, for which
// URL, and how to change it.
type DeadlineError struct {
	URL string
	// Which is "connect", "response-header", "idle-read" or "overall download".
	Which string
	Limit time.Duration
	// Env and Option name the setting that changes Limit.
	Env, Option string
	// Got is how many bytes of the body had arrived.
	Got int64
}

func (e *DeadlineError) Error() string {
	var what string
	switch e.Which {
	case "connect":
		what = fmt.Sprintf("no connection within %v", e.Limit)
	case "response-header":
		what = fmt.Sprintf("connected, but the server sent no response within %v", e.Limit)
	case "idle-read":
		what = fmt.Sprintf("the server sent nothing for %v after %d bytes", e.Limit, e.Got)
	default:
		what = fmt.Sprintf("not complete within %v (%d bytes in the last attempt)", e.Limit, e.Got)
	}
	return fmt.Sprintf("GET %s: %s (the %s deadline); set %s (or kernels.Options.%s) to change it", e.URL, what, e.Which, e.Env, e.Option)
}

func (e *DeadlineError) Is(target error) bool { return target == ErrNetDeadline }
func (e *DeadlineError) Timeout() bool        { return true }

// limits are the deadlines of a session, from Options, else the environment, else the defaults.
type limits struct {
	connect, header, idle, total time.Duration
	backoff                      time.Duration // first pause between attempts
}

func readLimits(opts Options) (limits, error) {
	var l limits
	var errs []string
	pick := func(opt time.Duration, env string, def time.Duration) time.Duration {
		if opt > 0 {
			return opt
		}
		if v := os.Getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				errs = append(errs, fmt.Sprintf("%s=%q: want a positive duration such as 30s or 2m", env, v))
				return def
			}
			return d
		}
		return def
	}
	l.connect = pick(opts.ConnectTimeout, EnvConnectTimeout, defaultConnectTimeout)
	l.header = pick(opts.HeaderTimeout, EnvHeaderTimeout, defaultHeaderTimeout)
	l.idle = pick(opts.IdleTimeout, EnvIdleTimeout, defaultIdleTimeout)
	l.total = pick(opts.DownloadTimeout, EnvDownloadTimeout, defaultDownloadTimeout)
	l.backoff = opts.retryBackoff
	if l.backoff <= 0 {
		l.backoff = time.Second
	}
	if len(errs) > 0 {
		return l, errors.New(strings.Join(errs, "; "))
	}
	return l, nil
}

// backoffFor is the pause before attempt n (1-based): exponential from
// limits.backoff, capped at 30 s, with "equal jitter" (half fixed, half
// random) so that concurrent runs retrying one mirror spread out.
func (l limits) backoffFor(n int) time.Duration {
	d := l.backoff << min(n-1, 10)
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// request is one GET under the per-request deadlines. Its body enforces the
// idle-read deadline; closing it ends the request.
type request struct {
	resp   *http.Response
	cancel context.CancelCauseFunc
	ctx    context.Context
	idle   time.Duration
	timer  *time.Timer
	mu     sync.Mutex
	got    int64
	url    string
}

func (r *request) idleErr() *DeadlineError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &DeadlineError{URL: r.url, Which: "idle-read", Limit: r.idle, Env: EnvIdleTimeout, Option: "IdleTimeout", Got: r.got}
}

func (r *request) Read(p []byte) (int, error) {
	n, err := r.resp.Body.Read(p)
	if n > 0 {
		r.mu.Lock()
		r.got += int64(n)
		r.mu.Unlock()
		r.timer.Reset(r.idle)
	}
	if err != nil && err != io.EOF {
		if c := context.Cause(r.ctx); c != nil {
			err = c
		}
	}
	return n, err
}

func (r *request) Close() error {
	r.timer.Stop()
	r.cancel(nil)
	return r.resp.Body.Close()
}

// open sends GET url (from byte offset from, when from > 0) under the
// connect and response-header deadlines, and returns the answer with its
// body under the idle-read deadline. Accepted: 200, and 206 for a range
// that starts at from.
func (s *session) open(ctx context.Context, url string, from int64) (*request, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	connectErr := &DeadlineError{URL: url, Which: "connect", Limit: s.limits.connect, Env: EnvConnectTimeout, Option: "ConnectTimeout"}
	headerErr := &DeadlineError{URL: url, Which: "response-header", Limit: s.limits.header, Env: EnvHeaderTimeout, Option: "HeaderTimeout"}
	// The connect deadline runs until a connection is there (a reused one
	// counts at once), then the response-header deadline until the headers.
	var tmu sync.Mutex
	timer := time.AfterFunc(s.limits.connect, func() { cancel(connectErr) })
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) {
		tmu.Lock()
		defer tmu.Unlock()
		if timer.Stop() {
			timer = time.AfterFunc(s.limits.header, func() { cancel(headerErr) })
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(rctx, trace), http.MethodGet, url, nil)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	resp, err := s.client.Do(req)
	tmu.Lock()
	timer.Stop()
	tmu.Unlock()
	if err != nil {
		c := context.Cause(rctx)
		cancel(nil)
		if c != nil && (ctx.Err() == nil || errors.Is(c, ErrNetDeadline)) {
			return nil, c
		}
		return nil, err
	}
	ok := resp.StatusCode == http.StatusOK ||
		from > 0 && resp.StatusCode == http.StatusPartialContent && strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(from, 10)+"-")
	if !ok {
		resp.Body.Close()
		cancel(nil)
		return nil, &httpError{url: url, code: resp.StatusCode}
	}
	r := &request{resp: resp, cancel: cancel, ctx: rctx, idle: s.limits.idle, url: url}
	r.timer = time.AfterFunc(s.limits.idle, func() { cancel(r.idleErr()) })
	return r, nil
}

// overall bounds one download, all attempts included.
func (s *session) overall(ctx context.Context, url string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.limits.total,
		&DeadlineError{URL: url, Which: "overall download", Limit: s.limits.total, Env: EnvDownloadTimeout, Option: "DownloadTimeout"})
}

// get reads a small file (an InRelease) into memory.
func (s *session) get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := s.overall(ctx, url)
	defer cancel()
	r, err := s.open(ctx, url, 0)
	if err != nil {
		return nil, s.stopped(ctx, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, s.stopped(ctx, err))
	}
	return b, nil
}

// stopped prefers why ctx ended (the overall deadline, the caller's
// cancellation) over the error it caused.
func (s *session) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(err, c) {
			return c
		}
	}
	return err
}

// fetchVerified streams url into the writer reset returns while hashing
// it, and succeeds only if exactly size bytes arrived and their SHA-256 is
// want. A failed attempt (cut connection, idle stall, overloaded server) is
// tried again up to s.retries() times after an exponential, jittered pause;
// with resumable, an attempt that got some bytes continues with a Range
// request where the server allows it (else reset starts over). A complete
// body with the wrong digest, an HTTP 4xx, a local write failure and a
// server that never answers are not retried. The target must not make
// anything it wrote visible until fetchVerified returns nil.
func (s *session) fetchVerified(ctx context.Context, url, want string, size int64, reset func() (io.Writer, error), resumable bool) error {
	ctx, cancel := s.overall(ctx, url)
	defer cancel()
	var (
		last error
		w    io.Writer
		h    hash.Hash
		got  int64 // bytes in w
	)
	for attempt := 0; attempt <= s.retries(); attempt++ {
		if attempt > 0 {
			pause := s.limits.backoffFor(attempt)
			s.logf("kernels: %v (attempt %d of %d; again in %v)", last, attempt, s.retries()+1, pause.Round(time.Millisecond))
			select {
			case <-ctx.Done():
				return s.giveUp(ctx, url, got, last)
			case <-time.After(pause):
			}
		}
		if ctx.Err() != nil {
			return s.giveUp(ctx, url, got, last)
		}
		from := int64(0)
		if resumable && w != nil && got > 0 && (size <= 0 || got < size) {
			from = got
		}
		r, err := s.open(ctx, url, from)
		if err != nil {
			if ctx.Err() != nil {
				return s.giveUp(ctx, url, got, err)
			}
			var he *httpError
			var de *DeadlineError
			if errors.As(err, &he) && !he.transient() || errors.As(err, &de) && got == 0 {
				// A server that accepts but never answers would make every
				// retry wait the whole deadline again: fail now, saying which.
				return err
			}
			last = err
			continue
		}
		if from > 0 && r.resp.StatusCode != http.StatusPartialContent {
			from = 0
		}
		if from == 0 {
			if w, err = reset(); err != nil {
				r.Close()
				return err
			}
			h, got = sha256.New(), 0
		} else {
			s.logf("kernels: %s: resuming at byte %d", url, from)
		}
		n, served, err := s.copyOnce(r, io.MultiWriter(w, h), size-got, size)
		got += n
		if err != nil {
			if isWriteError(err) {
				return err
			}
			if ctx.Err() != nil {
				return s.giveUp(ctx, url, got, err)
			}
			last = err
			continue
		}
		if size > 0 && got != size {
			if got > size || n == served {
				// The whole body arrived, it just is not the file the
				// signed index describes: a mirror out of sync with its
				// InRelease. Retrying would fetch the same wrong file.
				return &ChecksumError{URL: url, Want: want, WantSize: size, GotSize: got}
			}
			last = fmt.Errorf("%s: %w: got %d of %d bytes", url, ErrTruncated, got, size)
			continue
		}
		if gotSum := hex.EncodeToString(h.Sum(nil)); gotSum != want {
			return &ChecksumError{URL: url, Want: want, Got: gotSum}
		}
		return nil
	}
	if errors.Is(last, ErrTruncated) {
		return fmt.Errorf("%w; gave up after %d attempts, nothing was cached", last, s.retries()+1)
	}
	if strings.Contains(last.Error(), url) {
		return fmt.Errorf("%w; gave up after %d attempts, nothing was cached", last, s.retries()+1)
	}
	return fmt.Errorf("%s: %w; gave up after %d attempts, nothing was cached", url, last, s.retries()+1)
}

// giveUp explains a download that ctx ended: the overall deadline, or the
// caller's cancellation (Ctrl-C), never a "truncated" download.
func (s *session) giveUp(ctx context.Context, url string, got int64, last error) error {
	c := context.Cause(ctx)
	var de *DeadlineError
	if errors.As(c, &de) {
		d := *de
		d.Got = got
		if last != nil {
			return fmt.Errorf("%w; last attempt: %v; nothing was cached", &d, last)
		}
		return fmt.Errorf("%w; nothing was cached", &d)
	}
	return fmt.Errorf("GET %s: stopped after %d bytes, nothing was cached: %w", url, got, c)
}

// writeError marks failures of the local side (disk full, read-only), which
// retrying the download cannot fix.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func isWriteError(err error) bool {
	var we *writeError
	return errors.As(err, &we)
}

type errWriter struct{ w io.Writer }

func (e errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

// copyOnce copies r's body to w, at most want+1 bytes when want > 0
// (a longer body is as wrong as a shorter one); it returns the bytes
// copied and the length the server announced (-1 if it did not).
func (s *session) copyOnce(r *request, w io.Writer, want, size int64) (n, served int64, err error) {
	defer r.Close()
	served = r.resp.ContentLength
	total := size
	if total <= 0 {
		total = r.resp.ContentLength
	}
	tr := s.progress.start(total)
	defer tr.done()
	src := io.Reader(r)
	if size > 0 {
		src = io.LimitReader(src, want+1)
	}
	n, err = io.Copy(io.MultiWriter(errWriter{w}, tr), src)
	if err != nil {
		if isWriteError(err) {
			return n, served, err
		}
		if errors.Is(err, ErrNetDeadline) {
			return n, served, err
		}
		return n, served, fmt.Errorf("%w after %d bytes: %v", ErrTruncated, n, err)
	}
	return n, served, nil
}

// downloadFile downloads url into a temporary file in dir and returns its
// path once its size and SHA-256 match; the caller removes it. The file
// is held under a flock while it is written, so RemoveLeftovers can tell
// a partial file whose owner died from one being written.
func (s *session) downloadFile(ctx context.Context, dir, url, sha string, size int64) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("download directory: %w", err)
	}
	var f *partFile
	cleanup := func() {
		if f != nil {
			f.remove()
			f = nil
		}
	}
	err := s.fetchVerified(ctx, url, sha, size, func() (io.Writer, error) {
		if f != nil {
			if err := f.truncate(); err != nil {
				return nil, &writeError{fmt.Errorf("download %s: %w", url, err)}
			}
			return f.File, nil
		}
		var err error
		if f, err = createPart(dir, sha[:16]); err != nil {
			return nil, &writeError{fmt.Errorf("download %s: %w", url, err)}
		}
		return f.File, nil
	}, true)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	if err := f.Sync(); err != nil {
		cleanup()
		return "", nil, &writeError{fmt.Errorf("download %s: %w", url, err)}
	}
	return f.Name(), cleanup, nil
}
