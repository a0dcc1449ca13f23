package matrix

import (
	"errors"
	"fmt"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/expect"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// ErrUsage is wrapped by Run's errors about its input (options, the
// expectations file, the mirror configuration) found before anything
// ran: the command line's fault, exit code 2.
var ErrUsage = errors.New("usage")

// usageError wraps err so that errors.Is(err, ErrUsage) holds, keeping
// err's message as it is.
type usageError struct{ err error }

func (e usageError) Error() string   { return e.err.Error() }
func (e usageError) Unwrap() []error { return []error{e.err, ErrUsage} }

// expectations loads Options.Expect and appends Options.Expectations.
func (o Options) expectations() (expect.Set, error) {
	var s expect.Set
	if o.Expect != "" {
		var err error
		if s, err = expect.Load(o.Expect); err != nil {
			return nil, usageError{err}
		}
	}
	return append(s, o.Expectations...), nil
}

// finish applies the run's expectations to rep and finalizes it: the one
// place a run marks expected cells (report merge and diff read the marks).
func finish(rep *report.Report, s expect.Set) {
	s.Apply(rep)
}

// checkMirror stops a run that has something to download before it
// downloads anything, when no Debian mirror is configured (a runner that
// is not Debian, with KMATRIX_DEBIAN_MIRROR unset): the error says which
// variable to set. A warm cache needs no mirror.
func checkMirror(rs []kernels.Resolved, opts kernels.Options) error {
	for _, r := range rs {
		if kernels.Cached(r, opts) {
			continue
		}
		if _, err := kernels.DiscoverMirrors(); err != nil {
			return usageError{fmt.Errorf("kernel %s is not cached and must be downloaded: %w", r.Name, err)}
		}
		return nil
	}
	return nil
}
