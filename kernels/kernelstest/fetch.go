package kernelstest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/kmatrix/kmatrix/kernels"
)

var (
	once     sync.Once
	fetched  []*kernels.Kernel
	fetchErr error
	skipWhy  string
	fetchLog bytes.Buffer
)

// fetchDefault resolves the default catalog through its committed lock file
// (embedded in the kernels package, so no network is needed to resolve)
// and fetches every kernel with headers into the shared cache
// (kernels.CacheDir). It runs once per test process. When the cache is cold
// and the mirror cannot be reached, the test is skipped, saying so.
func fetchDefault(tb testing.TB) []*kernels.Kernel {
	tb.Helper()
	once.Do(func() {
		cat, err := kernels.DefaultCatalog()
		if err != nil {
			fetchErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		fetched, fetchErr = kernels.Get(ctx, cat, nil, kernels.Options{Headers: true, Log: &fetchLog, Progress: os.Stderr})
		if fetchErr != nil && isOffline(fetchErr) {
			var names []string
			for _, e := range cat.Kernels {
				if !haveKernel(e.Name) {
					names = append(names, e.Name)
				}
			}
			skipWhy = "kernel " + strings.Join(names, ", ") + " not cached and the Debian mirror is unreachable: " + fetchErr.Error()
		}
	})
	if fetchLog.Len() > 0 {
		tb.Log(strings.TrimSpace(fetchLog.String()))
	}
	if skipWhy != "" {
		tb.Skip(skipWhy)
	}
	if fetchErr != nil {
		tb.Fatalf("kernels: %v", fetchErr)
	}
	return fetched
}

func haveKernel(name string) bool {
	for _, k := range fetched {
		if k.Name == name {
			return true
		}
	}
	return false
}

// isOffline reports whether every failure is the network's (DNS, refused
// connection, timeout), as opposed to a bad file or a bug.
func isOffline(err error) bool {
	errs := []error{err}
	var me *multierror.Error
	if errors.As(err, &me) {
		errs = me.Errors
	}
	for _, e := range errs {
		var ne net.Error
		var ue *url.Error
		var oe *net.OpError
		var de *net.DNSError
		if !(errors.As(e, &de) || errors.As(e, &oe) || errors.As(e, &ue) || errors.As(e, &ne)) {
			return false
		}
	}
	return true
}

var (
	seriesMu  sync.Mutex
	seriesGot = map[string]*kernels.Kernel{}
)

// Series fetches one kernel of the shipped one-kernel-per-series catalog
// (kernels/series.yaml, through its embedded lock) by name ("linux-7.3"),
// with headers when the archive has them. When it is not cached and the
// mirror cannot be reached, the test is skipped, saying so.
func Series(tb testing.TB, name string) *kernels.Kernel {
	tb.Helper()
	cat, err := kernels.DefaultSeriesCatalog()
	if err != nil {
		tb.Fatalf("kernels: %v", err)
	}
	return FromCatalog(tb, cat, name)
}

// FromCatalog fetches the kernel named from cat, with headers when the
// archive has them, once per test process; like Series, it skips when the
// mirror is needed and unreachable.
func FromCatalog(tb testing.TB, cat *kernels.Catalog, name string) *kernels.Kernel {
	tb.Helper()
	seriesMu.Lock()
	defer seriesMu.Unlock()
	key := cat.Path + "\x00" + name
	if k := seriesGot[key]; k != nil {
		return k
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var log bytes.Buffer
	ks, err := kernels.Get(ctx, cat, []string{name}, kernels.Options{Headers: true, Log: &log, Progress: os.Stderr})
	if log.Len() > 0 {
		tb.Log(strings.TrimSpace(log.String()))
	}
	if err != nil && isOffline(err) {
		tb.Skipf("kernel %s is not cached and the Debian mirror is unreachable: %v", name, err)
	}
	if err != nil {
		tb.Fatalf("kernels: %v", err)
	}
	seriesGot[key] = ks[0]
	return ks[0]
}

// Arm64 fetches one kernel of the shipped arm64 catalog
// (kernels/arm64.yaml, through its embedded lock) by name
// ("debian-sid-arm64"); like Series, it skips when the mirror is needed
// and unreachable.
func Arm64(tb testing.TB, name string) *kernels.Kernel {
	tb.Helper()
	cat, err := kernels.DefaultArm64Catalog()
	if err != nil {
		tb.Fatalf("kernels: %v", err)
	}
	return FromCatalog(tb, cat, name)
}
