package report

import (
	"bytes"
	"testing"
)

// FuzzParse: a report.json is outside input (a baseline downloaded from an
// earlier CI run, shards from other jobs). Parse never panics, and what it
// accepts writes out and reads back with the same cells. Seeds:
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatalf("an accepted report does not write: %v", err)
		}
		r2, err := Parse(b.Bytes())
		if err != nil {
			t.Fatalf("a written report does not read back: %v\n%s", err, b.Bytes())
		}
		if len(r2.Cells) != len(r.Cells) || len(r2.Kernels) != len(r.Kernels) {
			t.Fatalf("round trip: %d cells, %d kernels → %d, %d", len(r.Cells), len(r.Kernels), len(r2.Cells), len(r2.Kernels))
		}
		// Every renderer takes what Parse accepts.
		r.Markdown()
		r.WriteHTML(&bytes.Buffer{})
		r.WriteJUnit(&bytes.Buffer{})
	})
}
