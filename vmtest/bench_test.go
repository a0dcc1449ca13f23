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

// trivialRun is a full Run of a trivial command, booted cold.
func trivialRun(b *testing.B, k *kernels.Kernel, gp string) (time.Duration, Timings) {
	d, t, _ := trivialRunFrom(b, k, gp, true)
	return d, t
}

// trivialRunFrom is a full Run of a trivial command, cold or restored.
func trivialRunFrom(b *testing.B, k *kernels.Kernel, gp string, cold bool) (time.Duration, Timings, string) {
	start := time.Now()
	res, err := Run(context.Background(), Spec{Kernel: k.Vmlinuz, Cold: cold, Commands: []Command{{Host: gp, Path: "/bin/true", Args: []string{"exit", "0"}}}})
	d := time.Since(start)
	if err != nil || res.Outcome != outcome.Pass {
		b.Fatalf("run: %v %+v", err, res)
	}
	if !cold && res.Snapshot == "" {
		b.Fatalf("not restored: %s", res.ColdReason)
	}
	return d, res.Timings, res.Snapshot
}

// BenchmarkRestore reports, per kernel, a full Run of a trivial command
// restored from its machine's snapshot against the bare-boot floor (a
// cold boot) and against the same Run booted cold, interleaved. The
// snapshot is made before the timer starts; snapshot-mib is its size on
// disk (RAM file allocation and device state).
func BenchmarkRestore(b *testing.B) {
	ks := kernelstest.Default(b)
	gp, err := BuildBinary(context.Background(), "./internal/guestprog")
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range ks {
		b.Run(k.Name, func(b *testing.B) {
			trivialRunFrom(b, k, gp, true)
			_, _, key := trivialRunFrom(b, k, gp, false) // makes the snapshot
			var floor, cold, warm, restore time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				floor += bootFloor(b, k)
				c, _, _ := trivialRunFrom(b, k, gp, true)
				cold += c
				w, t, _ := trivialRunFrom(b, k, gp, false)
				warm += w
				restore += t.Restore
			}
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(floor.Milliseconds())/n, "floor-ms")
			b.ReportMetric(float64(cold.Milliseconds())/n, "cold-ms")
			b.ReportMetric(float64(warm.Milliseconds())/n, "warm-ms")
			b.ReportMetric(float64(restore.Milliseconds())/n, "restore-ms")
			b.ReportMetric(float64(warm)/float64(floor), "warm/floor")
			if dir, err := SnapshotDir(); err == nil {
				if s, err := readSnapshot(dir, key); err == nil {
					b.ReportMetric(float64(s.Bytes())/(1<<20), "snapshot-mib")
				}
			}
		})
	}
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
