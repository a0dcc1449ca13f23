package kernels

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Options configure Resolve, Fetch and Get. The zero value works: it uses
// CacheDir(), DiscoverMirrors(), DefaultKeyring and the catalog's lock file.
type Options struct {
	// CacheDir holds downloads, indexes and unpacked kernels; default CacheDir().
	CacheDir string
	// Mirrors to download from; default DiscoverMirrors(). Not recorded in
	// the lock file, so a lock works with any mirror.
	Mirrors
	// Keyring verifies InRelease signatures; default DefaultKeyring.
	Keyring string
	// AllowExpired accepts indexes past their Valid-Until (signatures are
	// still checked). Also on when KMATRIX_ALLOW_EXPIRED_INDEX=1 or the
	// host's apt configuration sets Acquire::Check-Valid-Until "false".
	AllowExpired bool
	// Float resolves every kernel against the current indexes even when the
	// lock file pins it, records what changed in Resolved.Change, and
	// rewrites the lock file.
	Float bool
	// LockFile overrides the catalog's lock file (Catalog.LockPath).
	LockFile string
	// Headers also fetches the headers tree (Kernel.Headers).
	Headers bool
	// Progress receives a bytes/total line while downloading, only when it
	// is a terminal; nil or a non-terminal means quiet.
	Progress io.Writer
	// Log receives one-line notices (expired index accepted, offline use of
	// the cache, lock file changes); nil means os.Stderr.
	Log io.Writer
	// HTTPClient downloads; default http.DefaultClient.
	HTTPClient *http.Client
	// Retries is how many times a failed download (cut, stalled, HTTP 5xx)
	// is tried again, after exponential, jittered pauses; default 3.
	Retries int
	// ConnectTimeout, HeaderTimeout and IdleTimeout bound every request:
	// getting a connection, then its response headers, then each read of
	// its body. DownloadTimeout bounds one whole download, retries
	// included. Zero takes $KMATRIX_NET_CONNECT_TIMEOUT,
	// $KMATRIX_NET_HEADER_TIMEOUT, $KMATRIX_NET_IDLE_TIMEOUT and
	// $KMATRIX_DOWNLOAD_TIMEOUT, else 15s, 30s, 30s and 15m.
	ConnectTimeout, HeaderTimeout, IdleTimeout, DownloadTimeout time.Duration
	// Parallel bounds how many kernels Get fetches at once; default 4.
	Parallel int

	// now is the clock for Valid-Until and signatures (tests move it).
	now func() time.Time
	// aptDir is the host apt configuration directory (tests replace it).
	aptDir string
	// retryBackoff is the first pause between attempts; default 1s (tests shorten it).
	retryBackoff time.Duration
}

// session is the state shared by one Resolve or Fetch call.
type session struct {
	opts         Options
	cache        string
	mirrors      Mirrors
	client       *http.Client
	log          io.Writer
	allowExpired bool
	allowReason  string
	expiredOnce  sync.Once
	keyOnce      sync.Once
	keyring      openpgp.EntityList
	keyErr       error
	progress     *progress
	limits       limits
	mu           sync.Mutex
	releases     map[string]*release
	indexes      map[string][]*binPkg
	fetchMus     map[string]*sync.Mutex
}

// fetchMu serializes work on one key (a suite) within the session.
func (s *session) fetchMu(key string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetchMus == nil {
		s.fetchMus = map[string]*sync.Mutex{}
	}
	m, ok := s.fetchMus[key]
	if !ok {
		m = &sync.Mutex{}
		s.fetchMus[key] = m
	}
	return m
}

func isErr(err, target error) bool { return errors.Is(err, target) }

func newSession(opts Options, needMirrors bool) (*session, error) {
	s := &session{opts: opts, releases: map[string]*release{}, indexes: map[string][]*binPkg{}}
	var err error
	if s.limits, err = readLimits(opts); err != nil {
		return nil, err
	}
	s.cache = opts.CacheDir
	if s.cache == "" {
		if s.cache, err = CacheDir(); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(s.cache, 0o755); err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	s.mirrors = opts.Mirrors
	if needMirrors && (s.mirrors.Archive == "" || s.mirrors.Security == "") {
		aptDir := opts.aptDir
		if aptDir == "" {
			aptDir = aptSourcesDir
		}
		m, err := discoverMirrors(aptDir, os.Getenv(EnvMirror), os.Getenv(EnvSecurityMirror))
		if err != nil {
			return nil, err
		}
		if s.mirrors.Archive == "" {
			s.mirrors.Archive = m.Archive
		}
		if s.mirrors.Security == "" {
			s.mirrors.Security = m.Security
		}
	}
	s.client = opts.HTTPClient
	if s.client == nil {
		s.client = http.DefaultClient
	}
	s.log = opts.Log
	if s.log == nil {
		s.log = os.Stderr
	}
	s.allowExpired, s.allowReason = ExpiredIndexPolicy(opts)
	s.progress = newProgress(opts.Progress)
	return s, nil
}

func (s *session) now() time.Time {
	if s.opts.now != nil {
		return s.opts.now()
	}
	return time.Now()
}

func (s *session) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.log, format+"\n", args...)
}

func (s *session) loadKeyring() error {
	s.keyOnce.Do(func() {
		path := s.opts.Keyring
		if path == "" {
			path = DefaultKeyring
		}
		s.keyring, s.keyErr = readKeyring(path)
	})
	return s.keyErr
}

func (s *session) retries() int {
	if s.opts.Retries > 0 {
		return s.opts.Retries
	}
	return 3
}

// ExpiredIndexPolicy says whether archive indexes past their Valid-Until
// are accepted under opts, and why: when the caller asks (opts.AllowExpired),
// when KMATRIX_ALLOW_EXPIRED_INDEX=1, or when the host's own apt
// configuration sets Acquire::Check-Valid-Until "false" (a frozen mirror
// snapshot). Everything that talks to the archive (fetching here, build
// roots in package kmod) follows this one rule. Signatures are checked
// either way.
func ExpiredIndexPolicy(opts Options) (allow bool, reason string) {
	switch {
	case opts.AllowExpired:
		return true, "asked for by the caller"
	case os.Getenv(EnvAllowExpired) == "1":
		return true, EnvAllowExpired + "=1"
	}
	aptDir := opts.aptDir
	if aptDir == "" {
		aptDir = aptSourcesDir
	}
	if f, ok := hostSkipsValidUntil(aptDir); ok {
		return true, `following the host's apt policy: ` + f + ` sets Acquire::Check-Valid-Until "false"`
	}
	return false, ""
}
