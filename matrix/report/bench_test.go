package report

import (
	"io"
	"testing"
)

// BenchmarkWrite renders all four files of a large matrix (20 kernels × 40
// checks, every cell an oops with a 60-line log) to a temporary directory.
func BenchmarkWrite(b *testing.B) {
	r := withLogs(big(20, 40), 60)
	dir := b.TempDir()
	for b.Loop() {
		if err := r.Write(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarkdownFitting measures the worst case of the 64 KiB fitting:
// every level re-rendered before the table alone fits.
func BenchmarkMarkdownFitting(b *testing.B) {
	r := withLogs(big(60, 200), 10)
	for b.Loop() {
		io.WriteString(io.Discard, r.Markdown())
	}
}

func BenchmarkMerge(b *testing.B) {
	whole := withLogs(big(20, 40), 60)
	var shards []*Report
	for i := 1; i <= 4; i++ {
		shards = append(shards, shard(whole, i, 4))
	}
	for b.Loop() {
		if _, err := Merge(shards...); err != nil {
			b.Fatal(err)
		}
	}
}
