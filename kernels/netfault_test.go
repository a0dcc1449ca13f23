package kernels

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The network fault cases: a mirror that accepts and never answers, one
// that stalls in the middle of a body, one that trickles forever, one that
// supports Range, and a caller that gives up. Each asserts the error (which
// deadline, which file, which setting changes it), the time bound, and
// that nothing partial is left in the cache.

// resolved resolves the fixture catalog while the archive behaves.
func resolved(t *testing.T, a *archive) Resolved {
	rs, err := Resolve(context.Background(), writeCatalog(t, testCatalog), a.opts())
	require.NoError(t, err)
	require.Len(t, rs, 1)
	return rs[0]
}

func setOverride(a *archive, f func(w http.ResponseWriter, r *http.Request) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.override = f
}

// noLeftovers: no partial download and no cache entry.
func noLeftovers(t *testing.T, a *archive) {
	t.Helper()
	assert.Empty(t, entries(t, a.cache, "downloads"), "no partial file is left")
	for _, e := range entries(t, a.cache, "kernels") {
		assert.Fail(t, "no cache entry (or its debris) is left", e)
	}
}

func TestMirrorNeverReplies(t *testing.T) {
	a := standard(t)
	r := resolved(t, a)
	setOverride(a, func(w http.ResponseWriter, req *http.Request) bool {
		<-req.Context().Done() // accepted, request read, never a byte back
		return true
	})
	opts := a.opts()
	opts.HeaderTimeout = 500 * time.Millisecond
	start := time.Now()
	_, err := Fetch(context.Background(), r, opts)
	took := time.Since(start)
	t.Logf("stalled mirror: failed after %v (response-header deadline %v)", took, opts.HeaderTimeout)
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.Less(t, took, 2*opts.HeaderTimeout, "fails within twice the deadline")
	assert.ErrorIs(t, err, ErrNetDeadline)
	var de *DeadlineError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "response-header", de.Which)
	assert.ErrorContains(t, err, "linux-image-1.2.3-2-test-amd64", "names the package")
	assert.ErrorContains(t, err, ".deb", "names the file")
	assert.ErrorContains(t, err, EnvHeaderTimeout, "says how to change it")
	noLeftovers(t, a)
}

// The index fetch (InRelease, first contact with a mirror) is bounded the
// same way; with no cached copy to fall back on it is an error.
func TestResolveMirrorNeverReplies(t *testing.T) {
	a := standard(t)
	setOverride(a, func(w http.ResponseWriter, req *http.Request) bool {
		<-req.Context().Done()
		return true
	})
	opts := a.opts()
	opts.HeaderTimeout = 500 * time.Millisecond
	start := time.Now()
	_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), opts)
	took := time.Since(start)
	t.Logf("stalled mirror at resolve: failed after %v", took)
	require.Error(t, err)
	assert.Less(t, took, 2*opts.HeaderTimeout)
	assert.ErrorIs(t, err, ErrNetDeadline)
	assert.ErrorContains(t, err, "InRelease")
	assert.ErrorContains(t, err, EnvHeaderTimeout)
}

// fillBacklog returns the address of a listening socket whose accept queue
// is full and never drained: a new connection to it hangs in the handshake,
// as with a mirror behind a black-holing firewall.
func fillBacklog(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, syscall.Listen(fd, 0))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr // this one hung: the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel kept accepting connections into a backlog of 0; cannot make a connection hang here")
	return ""
}

func TestMirrorConnectHangs(t *testing.T) {
	a := standard(t)
	r := resolved(t, a)
	addr := fillBacklog(t)
	opts := a.opts()
	opts.Mirrors = Mirrors{Archive: "http://" + addr + "/debian", Security: "http://" + addr + "/debian-security"}
	opts.ConnectTimeout = 500 * time.Millisecond
	opts.HTTPClient = &http.Client{Transport: &http.Transport{}} // no dialer timeout of its own
	start := time.Now()
	_, err := Fetch(context.Background(), r, opts)
	took := time.Since(start)
	t.Logf("unreachable mirror: failed after %v (connect deadline %v)", took, opts.ConnectTimeout)
	require.Error(t, err)
	assert.Less(t, took, 2*opts.ConnectTimeout)
	var de *DeadlineError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "connect", de.Which)
	assert.ErrorContains(t, err, EnvConnectTimeout)
	noLeftovers(t, a)
}

// stallAfterHalf sends half of each .deb, then nothing (the connection stays open).
func stallAfterHalf(a *archive, times int) *int {
	var mu sync.Mutex
	n := 0
	setOverride(a, func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, ".deb") {
			return false
		}
		mu.Lock()
		n++
		stall := n <= times
		mu.Unlock()
		if !stall {
			return false
		}
		body := a.get(r.URL.Path)
		w.Header().Set("Content-Length", itoa(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	})
	return &n
}

func TestMirrorStallsMidBody(t *testing.T) {
	t.Run("always", func(t *testing.T) {
		a := standard(t)
		r := resolved(t, a)
		stallAfterHalf(a, 1000)
		opts := a.opts()
		opts.IdleTimeout = 300 * time.Millisecond
		start := time.Now()
		_, err := Fetch(context.Background(), r, opts)
		took := time.Since(start)
		attempts := opts.Retries + 1
		t.Logf("stalling mirror: failed after %v (%d attempts, idle deadline %v)", took, attempts, opts.IdleTimeout)
		require.Error(t, err)
		t.Logf("error: %v", err)
		// Each attempt ends at its idle deadline, not at the 30 s default
		// one (the bound is loose: retries back off, and a loaded machine
		// is slow; the error below says which deadline ended it).
		assert.Less(t, took, defaultIdleTimeout, "each attempt ends at its idle deadline")
		var de *DeadlineError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "idle-read", de.Which)
		assert.ErrorContains(t, err, EnvIdleTimeout)
		assert.ErrorContains(t, err, "gave up after 3 attempts, nothing was cached")
		noLeftovers(t, a)
	})
	t.Run("once", func(t *testing.T) {
		a := standard(t)
		r := resolved(t, a)
		n := stallAfterHalf(a, 1)
		opts := a.opts()
		opts.IdleTimeout = 300 * time.Millisecond
		k, err := Fetch(context.Background(), r, opts)
		require.NoError(t, err, "a stall is retried")
		assert.Equal(t, "1.2.3-2-test-amd64", k.Release)
		assert.GreaterOrEqual(t, *n, 2)
		assert.Empty(t, entries(t, a.cache, "downloads"))
	})
}

// A mirror that keeps sending a byte now and then never trips the idle
// deadline; the overall one stops it.
func TestDownloadOverallDeadline(t *testing.T) {
	a := standard(t)
	r := resolved(t, a)
	setOverride(a, func(w http.ResponseWriter, req *http.Request) bool {
		if !strings.HasSuffix(req.URL.Path, ".deb") {
			return false
		}
		body := a.get(req.URL.Path)
		w.Header().Set("Content-Length", itoa(len(body)))
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return true
			}
			w.(http.Flusher).Flush()
			select {
			case <-req.Context().Done():
				return true
			case <-time.After(50 * time.Millisecond):
			}
		}
		return true
	})
	opts := a.opts()
	opts.IdleTimeout = time.Second
	opts.DownloadTimeout = 700 * time.Millisecond
	start := time.Now()
	_, err := Fetch(context.Background(), r, opts)
	took := time.Since(start)
	t.Logf("trickling mirror: failed after %v (overall deadline %v)", took, opts.DownloadTimeout)
	require.Error(t, err)
	assert.Less(t, took, 2*opts.DownloadTimeout)
	var de *DeadlineError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "overall download", de.Which)
	assert.ErrorContains(t, err, EnvDownloadTimeout)
	assert.ErrorContains(t, err, "linux-image-1.2.3-2-test-amd64")
	noLeftovers(t, a)
}

// A server that supports Range: the second attempt continues where the
// first was cut, and the result still verifies.
func TestDownloadResumesWithRange(t *testing.T) {
	a := standard(t)
	r := resolved(t, a)
	var mu sync.Mutex
	var ranges []string
	served := map[string]int{}
	setOverride(a, func(w http.ResponseWriter, req *http.Request) bool {
		if !strings.HasSuffix(req.URL.Path, ".deb") {
			return false
		}
		body := a.get(req.URL.Path)
		mu.Lock()
		served[req.URL.Path]++
		first := served[req.URL.Path] == 1
		ranges = append(ranges, req.Header.Get("Range"))
		mu.Unlock()
		if first {
			w.Header().Set("Accept-Ranges", "bytes")
			w.Header().Set("Content-Length", itoa(len(body)))
			w.Write(body[:len(body)/2])
			return true // cut
		}
		http.ServeContent(w, req, "x.deb", time.Time{}, bytes.NewReader(body))
		return true
	})
	k, err := Fetch(context.Background(), r, a.opts())
	require.NoError(t, err)
	assert.Equal(t, "1.2.3-2-test-amd64", k.Release)
	mu.Lock()
	defer mu.Unlock()
	var resumed int
	for _, rg := range ranges {
		if strings.HasPrefix(rg, "bytes=") && rg != "bytes=0-" {
			resumed++
		}
	}
	assert.Equal(t, len(served), resumed, "every cut download resumed with a Range request: %q", ranges)
}

// Ctrl-C mid-download says the download was stopped, not "truncated".
func TestDownloadCanceled(t *testing.T) {
	a := standard(t)
	r := resolved(t, a)
	stallAfterHalf(a, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := Fetch(ctx, r, a.opts())
	t.Logf("canceled download: returned after %v", time.Since(start))
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assert.NotErrorIs(t, err, ErrTruncated)
	assert.ErrorContains(t, err, "stopped after")
	noLeftovers(t, a)
}

func TestBackoff(t *testing.T) {
	l := limits{backoff: 100 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 20: 30 * time.Second} {
		for range 50 {
			d := l.backoffFor(n)
			assert.GreaterOrEqual(t, d, want/2, "attempt %d", n)
			assert.LessOrEqual(t, d, want, "attempt %d", n)
		}
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[l.backoffFor(3)] = true
	}
	assert.Greater(t, len(seen), 1, "jittered")
}

// Retries pause, exponentially: 4 truncated attempts no longer hammer the
// mirror within a tenth of a second.
func TestRetriesBackOff(t *testing.T) {
	a := standard(t)
	r := resolved(t, a)
	var mu sync.Mutex
	var at []time.Time
	setOverride(a, func(w http.ResponseWriter, req *http.Request) bool {
		if !strings.HasSuffix(req.URL.Path, ".deb") {
			return false
		}
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		body := a.get(req.URL.Path)
		w.Header().Set("Content-Length", itoa(len(body)))
		w.Write(body[:len(body)/2])
		return true
	})
	opts := a.opts()
	opts.Retries = 3
	opts.retryBackoff = 100 * time.Millisecond
	_, err := Fetch(context.Background(), r, opts)
	require.ErrorIs(t, err, ErrTruncated)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, at, 4)
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		min := opts.retryBackoff << (i - 1) / 2
		assert.GreaterOrEqual(t, gap, min, "pause before attempt %d", i+1)
	}
}

func TestBadTimeoutEnv(t *testing.T) {
	a := standard(t)
	t.Setenv(EnvIdleTimeout, "soon")
	_, err := Fetch(context.Background(), Resolved{Name: "x", Release: "1", Packages: []Package{{Name: "p"}}}, a.opts())
	assert.ErrorContains(t, err, EnvIdleTimeout+`="soon": want a positive duration`)
}

// A partial download whose owner was killed is removed by the next fetch;
// one whose owner is alive is not.
func TestRemoveLeftoverParts(t *testing.T) {
	cache := t.TempDir()
	dl := filepath.Join(cache, "downloads")
	require.NoError(t, os.MkdirAll(dl, 0o755))
	live, err := createPart(dl, "live")
	require.NoError(t, err)
	defer live.remove()
	dead := filepath.Join(dl, "dead.1234.part")
	require.NoError(t, os.WriteFile(dead, []byte("half"), 0o644))
	removed := RemoveLeftovers(cache, nil)
	assert.Contains(t, removed, dead)
	assert.NoFileExists(t, dead)
	assert.FileExists(t, live.Name(), "a live download is left alone")
}
