package matrix

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/vmtest"
)

// BenchmarkMatrix measures the default matrix with a warm cache: the wall
// time of every kernel × payload, kernels in parallel and in the order Run
// uses (total-ms), and each kernel's own time (build + VM + checks) against
// its bare-boot floor: a cold boot of an init that powers off at once.
// Each iteration measures the floors twice, then runs the matrix: once
// through the same queue and parallelism as the matrix's rows
// (<kernel>-floor-ms; <kernel>-ratio is row/floor), so that a row and its
// floor share the machine alike (with 2 VMs at once on 2 cores each has
// a core only when nothing else runs); and once one kernel at a time
// (<kernel>-lone-floor-ms, <kernel>-lone-ratio), the floor as --floor
// measures it. Ratios are of the sums over the iterations.
//
// Targets: total ≤ 15 s on 2 cores, each row below its floor: the guests
// are restored from snapshots (vmtest), so a row does not pay its
// kernel's boot, and the two Go test binaries wait in the snapshot
// started, bpf.test with the tracer loaded once (vmtest.Command.Prestart).
// A restored 5.10 row on a quiet machine, one row at a time: restore
// 0.12–0.16 s, init 0.03 s, bpf.test 0.75–0.8 s (its first test 0.27 s:
// what remains there is mostly TCG translating code the snapshot's QEMU
// had translated, which a restore starts without), kmod.test 0.28–0.3 s;
// 1.26–1.36 s in all against a floor of 1.8–1.9 s. Before the prestart
// the binaries' start-up and the first load's one-time costs added 0.4 s
// and 5.10 and 6.1 rows were at 0.98–1.07 of their floors; with it, 5.10
// 0.81–0.87, 6.1 0.76–0.81, 6.12 and 7.2 0.46–0.56 (2026-12-02).
func BenchmarkMatrix(b *testing.B) { benchMatrix(b, kernelstest.Default(b)) }

// benchMatrix is BenchmarkMatrix on the kernels ks.
func benchMatrix(b *testing.B, ks []*kernels.Kernel) { benchMatrixWith(b, ks, Options{}) }

// benchMatrixWith is benchMatrix with opts.
func benchMatrixWith(b *testing.B, ks []*kernels.Kernel, opts Options) {
	ctx := context.Background()
	r := benchRunner(b, ks, opts)
	floors, lone, per := map[string]time.Duration{}, map[string]time.Duration{}, map[string]time.Duration{}
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		_, fs := scheduled(b, ks, r.opts.Parallel, func(k *kernels.Kernel) {
			if _, err := vmtest.BootFloor(ctx, k.Vmlinuz); err != nil {
				b.Error(err)
			}
		})
		for _, k := range ks {
			floors[k.Name] += fs[k.Name]
			f, err := vmtest.BootFloor(ctx, k.Vmlinuz)
			if err != nil {
				b.Fatal(err)
			}
			lone[k.Name] += f
		}
		b.StartTimer()
		t, rows := matrixOnce(b, r, ks)
		total += t
		for k, d := range rows {
			per[k] += d
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(total.Milliseconds())/n, "total-ms")
	for _, k := range ks {
		b.ReportMetric(float64(per[k.Name].Milliseconds())/n, k.Name+"-ms")
		b.ReportMetric(float64(floors[k.Name].Milliseconds())/n, k.Name+"-floor-ms")
		b.ReportMetric(float64(per[k.Name])/float64(floors[k.Name]), k.Name+"-ratio")
		b.ReportMetric(float64(lone[k.Name].Milliseconds())/n, k.Name+"-lone-floor-ms")
		b.ReportMetric(float64(per[k.Name])/float64(lone[k.Name]), k.Name+"-lone-ratio")
	}
}

// BenchmarkMatrixWarmVsCold runs the default matrix restored from
// snapshots (warm) and booted cold (Options.Cold, as --cold), interleaved
// in one process, alternating which goes first, and reports both wall
// times and warm/cold. Target: warm/cold ≤ 0.5.
func BenchmarkMatrixWarmVsCold(b *testing.B) {
	ks := kernelstest.Default(b)
	warm := benchRunner(b, ks, Options{})
	cold := benchRunner(b, ks, Options{Cold: true})
	var tw, tc time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			d, _ := matrixOnce(b, warm, ks)
			tw += d
			d, _ = matrixOnce(b, cold, ks)
			tc += d
		} else {
			d, _ := matrixOnce(b, cold, ks)
			tc += d
			d, _ = matrixOnce(b, warm, ks)
			tw += d
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(tw.Milliseconds())/n, "warm-ms")
	b.ReportMetric(float64(tc.Milliseconds())/n, "cold-ms")
	b.ReportMetric(float64(tw)/float64(tc), "warm/cold")
}

// benchRunner is a runner of opts, warmed up on ks (module builds, guest
// binaries, snapshots, the page cache), closed when b ends.
func benchRunner(b *testing.B, ks []*kernels.Kernel, opts Options) *Runner {
	ctx := context.Background()
	r, err := NewRunner(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	for _, k := range ks {
		if _, _, err := r.Kernel(ctx, k); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// matrixOnce runs r on ks as Run schedules them and returns the wall
// time and each kernel's. A warm matrix in which a row had to make its
// snapshot again (another process on the machine removed it: a build of
// kmatrix that does not keep superseded snapshots in use) is not a warm
// matrix: it is run again, up to 3 times.
func matrixOnce(b *testing.B, r *Runner, ks []*kernels.Kernel) (time.Duration, map[string]time.Duration) {
	ctx := context.Background()
	for try := 1; ; try++ {
		var mu sync.Mutex
		var remade []string
		d, per := scheduled(b, ks, r.opts.Parallel, func(k *kernels.Kernel) {
			cells, _, err := r.Kernel(ctx, k)
			if err != nil {
				b.Error(err)
			}
			for _, c := range cells {
				if c.Check != "boot" || r.opts.Cold {
					continue
				}
				if c.Evidence.Facts["restored_from"] == "" {
					b.Errorf("%s was not restored from a snapshot: %s", k.Name, c.Evidence.Facts["cold_boot"])
				}
				if c.Evidence.Facts["snapshot_made"] != "" {
					mu.Lock()
					remade = append(remade, k.Name)
					mu.Unlock()
				}
			}
		})
		if len(remade) == 0 {
			return d, per
		}
		if try == 3 {
			b.Fatalf("%v had to make their snapshots again in 3 warm matrices in a row: something removes them", remade)
		}
		b.Logf("%v had to make their snapshots again: running the matrix again", remade)
	}
}

// scheduled runs do on ks as Run schedules kernels (the slowest first,
// parallel at a time) and returns the wall time and each kernel's.
func scheduled(b *testing.B, ks []*kernels.Kernel, parallel int, do func(*kernels.Kernel)) (time.Duration, map[string]time.Duration) {
	start := time.Now()
	per := map[string]time.Duration{}
	var mu sync.Mutex
	q := newReadyQueue()
	for _, k := range ks {
		q.push(k)
	}
	q.close()
	q.drain(parallel, func(k *kernels.Kernel) {
		t0 := time.Now()
		do(k)
		mu.Lock()
		per[k.Name] = time.Since(t0)
		mu.Unlock()
	})
	return time.Since(start), per
}
