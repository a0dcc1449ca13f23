package vmtest

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// EnvArm64 turns on the arm64 VM tests (make arm64): arm64 guests run
// under TCG on an x86 host, several times slower than amd64 ones.
const envArm64 = "KMATRIX_ARM64"

// arm64Kernels are the kernels of the shipped arm64 catalog, or a skip
// saying how to run them.
func arm64Kernels(t testing.TB) []*kernels.Kernel {
	t.Helper()
	if os.Getenv(envArm64) == "" {
		t.Skipf("arm64 guests under TCG are slow: run them with %s=1 (make arm64)", envArm64)
	}
	return []*kernels.Kernel{kernelstest.Arm64(t, "debian-bookworm-arm64"), kernelstest.Arm64(t, "debian-sid-arm64")}
}

var guestprogArm64 struct {
	sync.Once
	path string
	err  error
}

// gpArm64 is a guestprog command built for arm64.
func gpArm64(t *testing.T, name string, args ...string) Command {
	guestprogArm64.Do(func() {
		guestprogArm64.path, guestprogArm64.err = BuildBinaryFor(context.Background(), archARM64, "./internal/guestprog")
	})
	require.NoError(t, guestprogArm64.err)
	return Command{Name: name, Host: guestprogArm64.path, Path: "/usr/local/bin/guestprog", Args: args}
}

// TestBootArm64: Debian's arm64 cloud kernels boot on QEMU's virt board
// under TCG with the arm64 init; the console is the PL011, the events
// come over the PCI 16550; a run restores the machine's snapshot, its
// files read by the arm64 init from fw_cfg's memory-mapped registers.
func TestBootArm64(t *testing.T) {
	noQEMULeft(t)
	for _, k := range arm64Kernels(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Spec{
				Kernel: k.Vmlinuz,
				Files:  []File{{Data: []byte("hello\n"), Guest: "/data/greeting"}},
				Commands: []Command{
					gpArm64(t, "release", "release"),
					gpArm64(t, "mounts", "mounts"),
					gpArm64(t, "stat", "stat", "/data/greeting", "/dev/ttyS0", "/dev/ttyAMA0"),
				},
			})
			require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
			assert.Equal(t, "tcg", res.Accel)
			assert.Contains(t, res.AccelReason, "an arm64 guest on an amd64 host")
			require.NotEmpty(t, res.Snapshot, "an arm64 run restores its machine's snapshot too (cold because: %s)", res.ColdReason)
			assert.Equal(t, k.Release+"\n", string(res.Commands[0].Stdout))
			mounts := string(res.Commands[1].Stdout)
			for _, m := range []string{" /sys/kernel/tracing tracefs ", " /sys/fs/bpf bpf ", " /sys/fs/cgroup cgroup2 "} {
				assert.Contains(t, mounts, m)
			}
			assert.Equal(t, "/data/greeting exists=true\n/dev/ttyS0 exists=true\n/dev/ttyAMA0 exists=true\n", string(res.Commands[2].Stdout))
			checkTimings(t, res)
		})
	}
}

// TestGuestThatPanicsArm64: a sysrq crash on arm64 is a kernel panic with
// arm64's report (lower-case "Call trace:", "Hardware name: linux,dummy-virt
// (DT)"), found on the PL011 console. KMATRIX_CAPTURE=1 writes the console
// to testdata/console/panic-sysrq-arm64-<series>.txt, the captures the
// scanner's unit tests read.
func TestGuestThatPanicsArm64(t *testing.T) {
	noQEMULeft(t)
	for _, k := range arm64Kernels(t) {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Spec{
				Kernel:   k.Vmlinuz,
				Commands: []Command{gpArm64(t, "crash", "sysrq", "c"), gpArm64(t, "never", "exit", "0")},
			})
			if os.Getenv("KMATRIX_CAPTURE") != "" {
				name := fmt.Sprintf("testdata/console/panic-sysrq-arm64-%d.%d.txt", k.Version.Major, k.Version.Minor)
				require.NoError(t, os.WriteFile(name, res.Console, 0o644))
			}
			assert.Equal(t, outcome.KernelPanic, res.Outcome)
			assert.Contains(t, res.Excerpt, "Kernel panic - not syncing: sysrq triggered crash")
			assert.Contains(t, res.Excerpt, "Call trace:")
			assert.Contains(t, res.Excerpt, "__handle_sysrq+", "the trace")
			assert.Equal(t, "the kernel panicked", res.Commands[0].Err)
			assert.Equal(t, "not run: the kernel panicked", res.Commands[1].Err)
			assert.Equal(t, "command crash", res.Phase)
			assert.NotEmpty(t, res.Snapshot, "a restored guest's console is scanned as a booted one's")
		})
	}
}

// BenchmarkArm64Floor reports, per arm64 kernel, its bare-boot floor and a
// full Run of a trivial command under TCG, booted cold and restored from
// the machine's snapshot (restore-ms: QEMU's start to the guest taking up
// its run), interleaved with the floor and cold run of the amd64 kernel of
// the same suite (debian-bookworm, debian-sid), so that arm64/amd64
// compares like with like on a loaded machine.
func BenchmarkArm64Floor(b *testing.B) {
	amd := map[string]*kernels.Kernel{}
	for _, k := range kernelstest.Default(b) {
		amd[k.Name] = k
	}
	gp, err := BuildBinary(context.Background(), "./internal/guestprog")
	if err != nil {
		b.Fatal(err)
	}
	gpa, err := BuildBinaryFor(context.Background(), archARM64, "./internal/guestprog")
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range arm64Kernels(b) {
		twin := amd[strings.TrimSuffix(k.Name, "-arm64")]
		if twin == nil {
			b.Fatalf("no amd64 kernel of %s's suite", k.Name)
		}
		b.Run(k.Name, func(b *testing.B) {
			trivialRun(b, k, gpa)
			trivialRun(b, twin, gp)
			trivialRunFrom(b, k, gpa, false) // makes the snapshot
			var floor, run, warm, restore, floorAMD, runAMD time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				floor += bootFloor(b, k)
				d, _ := trivialRun(b, k, gpa)
				run += d
				d, t, _ := trivialRunFrom(b, k, gpa, false)
				warm += d
				restore += t.Restore
				floorAMD += bootFloor(b, twin)
				d, _ = trivialRun(b, twin, gp)
				runAMD += d
			}
			n := float64(b.N)
			b.ReportMetric(float64(floor.Milliseconds())/n, "floor-ms")
			b.ReportMetric(float64(run.Milliseconds())/n, "cold-run-ms")
			b.ReportMetric(float64(warm.Milliseconds())/n, "warm-run-ms")
			b.ReportMetric(float64(restore.Milliseconds())/n, "restore-ms")
			b.ReportMetric(float64(floorAMD.Milliseconds())/n, "amd64-floor-ms")
			b.ReportMetric(float64(runAMD.Milliseconds())/n, "amd64-cold-run-ms")
			b.ReportMetric(float64(floor)/float64(floorAMD), "arm64/amd64-floor")
		})
	}
}

// TestBootArm64Gzip: an arm64 Image compressed with gzip (Image.gz, as
// other distributions ship it) is recognised and boots: QEMU decompresses
// it. Cold, so that a temporary kernel leaves no snapshot behind.
func TestBootArm64Gzip(t *testing.T) {
	noQEMULeft(t)
	k := arm64Kernels(t)[0]
	raw, err := os.ReadFile(k.Vmlinuz)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "Image.gz")
	f, err := os.Create(p)
	require.NoError(t, err)
	zw := gzip.NewWriter(f)
	_, err = zw.Write(raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	res := run(t, Spec{Kernel: p, Cold: true, Commands: []Command{gpArm64(t, "release", "release")}})
	require.Equal(t, outcome.Pass, res.Outcome, "%s\n%s", res.Err, res.Console)
	assert.Equal(t, archARM64, res.Arch)
	assert.Equal(t, k.Release+"\n", string(res.Commands[0].Stdout))
}
