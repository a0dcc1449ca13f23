package matrix

import (
	"context"
	"sync"
	"testing"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// Test runs the matrix inside a Go test, through Run, and replays every
// cell as a subtest <kernel>/<payload>/<check>: a pass passes, a skip skips
// with its reason, anything else fails with its evidence. So a project's own
//
//	go test ./matrix/...
//
// is its kernel matrix, `go test -run 'TestMatrix/debian-sid'` runs one
// kernel (the kernel subtests are selected before anything boots), and
// `go test -json` carries every cell. Set opts.OutDir to keep the report.
// Infra errors and regressions (with opts.Baseline) fail t; the report is
// returned for further checks.
func Test(t *testing.T, opts Options) *report.Report {
	t.Helper()
	if testing.Short() {
		t.Skip("the kernel matrix boots every catalog kernel in QEMU; run without -short")
	}
	names, err := kernelNames(opts)
	if err != nil {
		t.Fatalf("kmatrix: %v", err)
	}
	// Each kernel's subtest registers itself and pauses (t.Parallel) until
	// this function returns: the ones `go test -run` filters out never
	// run, so only the selected kernels boot.
	var (
		mu       sync.Mutex
		selected []string
		rep      *report.Report
		byKernel = map[string][]report.Cell{}
	)
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			mu.Lock()
			selected = append(selected, n)
			mu.Unlock()
			t.Parallel()
			replayKernel(t, byKernel[n])
		})
	}
	if len(selected) == 0 {
		return nil
	}
	opts.Kernels = selected
	opts.Shard = Shard{} // the shard was applied to names already
	rep, err = Run(context.Background(), opts)
	if rep == nil {
		t.Fatalf("kmatrix: %v", err)
	}
	if err != nil {
		t.Errorf("kmatrix: %v", err)
	}
	for _, c := range rep.Cells {
		byKernel[c.Kernel] = append(byKernel[c.Kernel], c)
	}
	return rep
}

// kernelNames are the catalog's kernels that opts select, in catalog order.
func kernelNames(opts Options) ([]string, error) {
	cat, err := loadCatalogFor(opts.Catalog, opts.Arch)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range cat.Kernels {
		if len(opts.Kernels) == 0 || contains(opts.Kernels, e.Name) {
			names = append(names, e.Name)
		}
	}
	var out []string
	for i, n := range names {
		if opts.Shard.Has(i) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Replay reports rep's cells as subtests of t, <kernel>/<payload>/<check>.
func Replay(t *testing.T, rep *report.Report) {
	t.Helper()
	byKernel := map[string][]report.Cell{}
	for _, c := range rep.Cells {
		byKernel[c.Kernel] = append(byKernel[c.Kernel], c)
	}
	for _, k := range rep.Kernels {
		t.Run(k.Name, func(t *testing.T) { replayKernel(t, byKernel[k.Name]) })
	}
}

func replayKernel(t *testing.T, cells []report.Cell) {
	var payloads []string
	by := map[string][]report.Cell{}
	for _, c := range cells {
		if _, ok := by[c.Payload]; !ok {
			payloads = append(payloads, c.Payload)
		}
		by[c.Payload] = append(by[c.Payload], c)
	}
	for _, p := range payloads {
		t.Run(p, func(t *testing.T) {
			for _, c := range by[p] {
				t.Run(c.Check, func(t *testing.T) {
					for k, v := range c.Evidence.Facts {
						t.Logf("%s=%s", k, v)
					}
					switch c.Outcome {
					case outcome.Pass:
					case outcome.Skip:
						t.Skip(c.Evidence.Message)
					default:
						t.Errorf("%s (stage %s): %s\n%s", c.Outcome, c.Stage, c.Evidence.Message, c.Evidence.Log)
					}
				})
			}
		})
	}
}
