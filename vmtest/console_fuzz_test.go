package vmtest

import (
	"bytes"
	"testing"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// FuzzConsoleScanner: the kernel console is outside input. The scanner
// never panics, keeps its excerpt bounded, and finds the same reports
// however the pipe cuts the stream into reads. Seeds: the real console
// captures (testdata/console) and testdata/fuzz/FuzzConsoleScanner.
func FuzzConsoleScanner(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := newConsoleScanner(nil, nil)
		whole.Write(data)
		whole.flush()
		if len(whole.Excerpt()) > excerptMaxBytes {
			t.Fatalf("excerpt of %d bytes, limit %d", len(whole.Excerpt()), excerptMaxBytes)
		}
		if o := whole.Outcome(); o != outcome.Pass && !o.Failed() {
			t.Fatalf("outcome %q", o)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) > 60<<10 {
				return // very long lines are cut at 64 KiB of the read, so reads matter there
			}
		}
		chunked := newConsoleScanner(nil, nil)
		for i := 0; len(data) > 0; i++ {
			n := min(len(data), 1+i*7%13)
			chunked.Write(data[:n])
			data = data[n:]
		}
		chunked.flush()
		if whole.Outcome() != chunked.Outcome() || whole.Excerpt() != chunked.Excerpt() {
			t.Fatalf("reads changed the result: %s vs %s\n%q\n%q", whole.Outcome(), chunked.Outcome(), whole.Excerpt(), chunked.Excerpt())
		}
	})
}
