package main

import (
	"fmt"
	"io"

	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/matrix/expect"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// warnUnused names the expectations of a whole run (every kernel, no
// shard) that selected no cell: after a renamed payload or check they
// would silently never apply again.
func warnUnused(w io.Writer, opts matrix.Options, rep *report.Report) {
	if opts.Expect == "" || len(opts.Kernels) > 0 || opts.Shard.Count > 0 {
		return
	}
	set, err := expect.Load(opts.Expect)
	if err != nil {
		return
	}
	for _, e := range set.Unused(rep) {
		fmt.Fprintf(w, "kmatrix run: %s: this expectation selects no cell of the run (a renamed payload or check?)\n", e.Source())
	}
}
