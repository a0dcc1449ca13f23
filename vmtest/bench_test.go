package vmtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// bootFloor is the bare-boot floor: the same QEMU and kernel with an init
// that powers off before doing anything.
func bootFloor(b *testing.B, k *kernels.Kernel) time.Duration {
	d, err := BootFloor(context.Background(), k.Vmlinuz)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// trivialRun is a full Run of a trivial command.
func trivialRun(b *testing.B, k *kernels.Kernel, gp string) (time.Duration, Timings) {
	start := time.Now()
	res, err := Run(context.Background(), Spec{Kernel: k.Vmlinuz, Commands: []Command{{Host: gp, Path: "/bin/true", Args: []string{"exit", "0"}}}})
	d := time.Since(start)
	if err != nil || res.Outcome != outcome.Pass {
		b.Fatalf("run: %v %+v", err, res)
	}
	return d, res.Timings
}

// BenchmarkRunVsFloor reports, per kernel, the full Run of a trivial
// command against the bare-boot floor, interleaved so that load from
// elsewhere on the machine hits both alike. Target: ratio ≤ 1.2.
func BenchmarkRunVsFloor(b *testing.B) {
	ks := kernelstest.Default(b)
	gp, err := BuildBinary(context.Background(), "./internal/guestprog")
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range ks {
		b.Run(k.Name, func(b *testing.B) {
			trivialRun(b, k, gp) // warm: init build, base archive, accelerator choice, page cache
			var floor, run time.Duration
			var ph Timings
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				floor += bootFloor(b, k)
				r, t := trivialRun(b, k, gp)
				run += r
				ph.Kernel += t.Kernel
				ph.Init += t.Init
				ph.Commands += t.Commands
				ph.Poweroff += t.Poweroff
			}
			n := float64(b.N)
			b.ReportMetric(float64(floor.Milliseconds())/n, "floor-ms")
			b.ReportMetric(float64(run.Milliseconds())/n, "run-ms")
			b.ReportMetric(float64(run)/float64(floor), "ratio")
			b.ReportMetric(float64(ph.Kernel.Milliseconds())/n, "kernel-ms")
			b.ReportMetric(float64(ph.Init.Milliseconds())/n, "init-ms")
			b.ReportMetric(float64(ph.Commands.Milliseconds())/n, "cmd-ms")
			b.ReportMetric(float64(ph.Poweroff.Milliseconds())/n, "poweroff-ms")
		})
	}
}

// BenchmarkFourVMs runs one trivial VM per default kernel (4), one after
// another and then all at once under Run's default parallelism
// (MaxParallel: the number of CPUs).
func BenchmarkFourVMs(b *testing.B) {
	ks := kernelstest.Default(b)
	gp, err := BuildBinary(context.Background(), "./internal/guestprog")
	if err != nil {
		b.Fatal(err)
	}
	trivialRun(b, ks[0], gp)
	b.Run("sequential", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, k := range ks {
				trivialRun(b, k, gp)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "wall-ms")
	})
	b.Run("parallel", func(b *testing.B) {
		n, _ := MaxParallel()
		b.ReportMetric(float64(n), "slots")
		for i := 0; i < b.N; i++ {
			var wg sync.WaitGroup
			for _, k := range ks {
				wg.Add(1)
				go func() {
					defer wg.Done()
					trivialRun(b, k, gp)
				}()
			}
			wg.Wait()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "wall-ms")
	})
}
