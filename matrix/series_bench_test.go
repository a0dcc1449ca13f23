package matrix

import (
	"os"
	"testing"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// BenchmarkSeriesMatrix is BenchmarkMatrix on the series lane: one kernel
// per upstream series (kernels/series.yaml, 11 today), warm. Target: total
// ≤ 30 s on 2 cores. Kernels without headers in the archive skip their
// module checks, so they cost one payload less. It needs the 11 kernels
// (about 400 MB cold), so it runs only with KMATRIX_SERIES=1.
func BenchmarkSeriesMatrix(b *testing.B) {
	if os.Getenv("KMATRIX_SERIES") == "" {
		b.Skip("needs the 11 series kernels: set KMATRIX_SERIES=1 (make series)")
	}
	cat, err := kernels.DefaultSeriesCatalog()
	if err != nil {
		b.Fatal(err)
	}
	var ks []*kernels.Kernel
	for _, e := range cat.Kernels {
		ks = append(ks, kernelstest.Series(b, e.Name))
	}
	benchMatrix(b, ks)
}
