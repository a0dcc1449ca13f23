package matrix

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// TestMatrix is the matrix as a Go test: one subtest per kernel (run in
// parallel, up to -parallel), and below it one per payload and check, so
//
//	go test ./matrix -run 'TestMatrix/debian-sid'
//
// tests one kernel and `go test -json` shows every cell. A cell's evidence
// (verifier log, compiler error, console excerpt) is in its subtest's output.
// The report is written to $KMATRIX_REPORT_DIR when it is set.
func TestMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("TestMatrix boots every catalog kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	ctx := context.Background()
	r, err := NewRunner(ctx, Options{Progress: os.Stderr})
	require.NoError(t, err, "building the guest test binaries")
	t.Cleanup(func() { r.Close() })

	rep := &report.Report{Schema: report.Schema, Host: hostFacts()}
	var mu sync.Mutex
	t.Cleanup(func() {
		dir := os.Getenv("KMATRIX_REPORT_DIR")
		if dir == "" {
			return
		}
		rep.GeneratedAt = time.Now().UTC()
		rep.Finalize()
		require.NoError(t, rep.Write(dir))
		t.Logf("report written to %s", dir)
	})

	for _, k := range ks {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			cells, row, err := r.Kernel(ctx, k)
			mu.Lock()
			rep.Cells = append(rep.Cells, cells...)
			rep.Kernels = append(rep.Kernels, row)
			mu.Unlock()
			if err != nil {
				t.Errorf("infra error: %v", err)
			}
			replayCells(t, cells)
		})
	}
}

// replayCells turns cells into subtests <payload>/<check>: a pass passes,
// a skip skips with its reason, anything else fails with its evidence.
func replayCells(t *testing.T, cells []report.Cell) {
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
