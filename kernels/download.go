package kernels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// httpError is a non-200 answer.
type httpError struct {
	url  string
	code int
}

func (e *httpError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.url, e.code) }

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

func (s *session) open(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &httpError{url: url, code: resp.StatusCode}
	}
	return resp, nil
}

// get reads a small file (an InRelease) into memory.
func (s *session) get(ctx context.Context, url string) ([]byte, error) {
	resp, err := s.open(ctx, url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return b, nil
}

// fetchVerified streams url through consume while hashing it, and succeeds
// only if exactly size bytes arrived and their SHA-256 is want. A short
// body is retried (consume's target must be reset by reset) up to
// s.retries() times; a complete body with the wrong digest is not.
// consume must not make anything it wrote visible until fetchVerified
// returns nil.
func (s *session) fetchVerified(ctx context.Context, url, want string, size int64, reset func() (io.Writer, error)) error {
	var last error
	for attempt := 0; attempt <= s.retries(); attempt++ {
		if err := context.Cause(ctx); err != nil && ctx.Err() != nil {
			return err
		}
		w, err := reset()
		if err != nil {
			return err
		}
		h := sha256.New()
		n, served, err := s.copyOnce(ctx, url, io.MultiWriter(w, h), size)
		if err != nil {
			var he *httpError
			if errors.As(err, &he) || ctx.Err() != nil || isWriteError(err) {
				return err
			}
			last = err
			s.logf("kernels: %s: %v (attempt %d of %d)", url, err, attempt+1, s.retries()+1)
			continue
		}
		if size > 0 && n != size {
			if n > size || n == served {
				// The whole body arrived, it just is not the file the
				// signed index describes: a mirror out of sync with its
				// InRelease. Retrying would fetch the same wrong file.
				return &ChecksumError{URL: url, Want: want, WantSize: size, GotSize: n}
			}
			last = fmt.Errorf("%s: %w: got %d of %d bytes", url, ErrTruncated, n, size)
			s.logf("kernels: %v (attempt %d of %d)", last, attempt+1, s.retries()+1)
			continue
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return &ChecksumError{URL: url, Want: want, Got: got}
		}
		return nil
	}
	if errors.Is(last, ErrTruncated) {
		return fmt.Errorf("%w; gave up after %d attempts, nothing was cached", last, s.retries()+1)
	}
	return fmt.Errorf("%s: %w: %v; gave up after %d attempts, nothing was cached", url, ErrTruncated, last, s.retries()+1)
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

// copyOnce copies url's body to w; it returns the bytes copied and the
// size the server announced (-1 if it did not).
func (s *session) copyOnce(ctx context.Context, url string, w io.Writer, size int64) (n, served int64, err error) {
	resp, err := s.open(ctx, url)
	if err != nil {
		return 0, -1, err
	}
	served = resp.ContentLength
	defer resp.Body.Close()
	total := size
	if total <= 0 {
		total = resp.ContentLength
	}
	tr := s.progress.start(total)
	defer tr.done()
	// Read at most one byte more than announced: a longer body is as wrong as a shorter one.
	r := io.Reader(resp.Body)
	if size > 0 {
		r = io.LimitReader(r, size+1)
	}
	n, err = io.Copy(io.MultiWriter(errWriter{w}, tr), r)
	if err != nil {
		if isWriteError(err) {
			return n, served, err
		}
		return n, served, fmt.Errorf("%w after %d bytes: %v", ErrTruncated, n, err)
	}
	return n, served, nil
}

// downloadFile downloads url into a temporary file in dir and returns its
// path once its size and SHA-256 match; the caller removes it.
func (s *session) downloadFile(ctx context.Context, dir, url, sha string, size int64) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("download directory: %w", err)
	}
	var f *os.File
	cleanup := func() {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
			f = nil
		}
	}
	err := s.fetchVerified(ctx, url, sha, size, func() (io.Writer, error) {
		cleanup()
		var err error
		f, err = os.CreateTemp(dir, sha[:16]+".*.part")
		if err != nil {
			return nil, &writeError{fmt.Errorf("download %s: %w", url, err)}
		}
		return f, nil
	})
	if err != nil {
		cleanup()
		return "", err
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", &writeError{fmt.Errorf("download %s: %w", url, err)}
	}
	return name, nil
}
