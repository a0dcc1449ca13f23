package build

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kmod"
	"github.com/kmatrix/kmatrix/vmtest"
)

// guestTests are package kmod's checks that run inside each kernel, in
// order: the kmod columns of the matrix.
var guestTests = []string{"TestLoad", "TestExecRecords", "TestWritePath", "TestTaskState", "TestUnload", "TestTaint", "TestKernelLog", "TestVermagicMismatch"}

// guestCommand is the vmtest command that runs package kmod's guest tests
// from testBinary (built with vmtest.BuildTestBinary), with the module at
// /kmatrix.ko and, when foreign is set, a module built for another kernel
// at /foreign.ko.
func guestCommand(testBinary string, foreign bool) vmtest.Command {
	env := []string{kmod.EnvKo + "=/kmatrix.ko"}
	if foreign {
		env = append(env, kmod.EnvKoForeign+"=/foreign.ko")
	}
	return vmtest.Command{
		Name: "kmod",
		Path: "/kmod.test",
		Host: testBinary,
		Args: append(append([]string{}, vmtest.TestFlags...), "-test.run", "^("+strings.Join(guestTests, "|")+")$"),
		Env:  env,
	}
}

// TestGuest is the kmod row of the matrix for every default kernel: build
// the module with the kernel's compiler, boot the kernel, and run the
// guest tests in it, with the module built for the next kernel as the
// foreign one that must be refused.
func TestGuest(t *testing.T) {
	hostOnly(t)
	if testing.Short() {
		t.Skip("boots every default kernel in QEMU; not in -short mode")
	}
	ks := kernelstest.Default(t)
	ctx := context.Background()
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	builds, err := All(ctx, ks, src, Options{OutDir: t.TempDir()})
	require.NoError(t, err)
	testBinary, err := vmtest.BuildTestBinary(ctx, "github.com/kmatrix/kmatrix/kmod")
	require.NoError(t, err)

	type row struct {
		kernel, compiler, load, behave, unload string
		build, cell                            time.Duration
	}
	rows := make([]row, len(ks))
	t.Cleanup(func() {
		t.Logf("kernel | compiler | build | load | behaviour | unload | cell")
		for _, r := range rows {
			if r.kernel != "" {
				t.Logf("%s | %s | %s | %s | %s | %s | %s", r.kernel, r.compiler, r.build.Round(10*time.Millisecond), r.load, r.behave, r.unload, r.cell.Round(10*time.Millisecond))
			}
		}
	})
	for i, k := range ks {
		b := builds[i]
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()
			rows[i] = row{kernel: k.Name, compiler: b.Compiler, build: b.Duration}
			require.Equal(t, outcome.Pass, b.Outcome, "build for %s: %v\n%s", k.Name, b.FirstError, b.Log)
			files := []vmtest.File{{Host: b.Ko, Guest: "/kmatrix.ko"}}
			foreign := builds[(i+1)%len(builds)]
			hasForeign := len(builds) > 1 && foreign.Outcome == outcome.Pass
			if hasForeign {
				files = append(files, vmtest.File{Host: foreign.Ko, Guest: "/foreign.ko"})
			}
			res, err := vmtest.Run(ctx, vmtest.Spec{
				Kernel:   k.Vmlinuz,
				Files:    files,
				Commands: []vmtest.Command{guestCommand(testBinary, hasForeign)},
				Timeout:  3 * time.Minute,
			})
			require.NoError(t, err)
			rows[i].cell = res.Timings.Total
			require.NotEmpty(t, res.Commands, "%s: %s\n%s", res.Outcome, res.Err, res.Console)
			results := vmtest.ParseGoTest(res.Commands[0].Stdout, res.Commands[0].Stderr)
			byName := map[string]outcome.Outcome{}
			for _, r := range results {
				byName[r.Name] = r.Outcome
			}
			rows[i].load = string(byName["TestLoad"])
			rows[i].behave = string(outcome.Worst(byName["TestExecRecords"], byName["TestWritePath"], byName["TestTaskState"]))
			rows[i].unload = string(byName["TestUnload"])
			vmtest.Replay(t, results)
			for _, name := range guestTests {
				if _, ok := byName[name]; !ok {
					t.Errorf("guest test %s did not report: %s %s\n%s", name, res.Outcome, res.Err, res.Console)
				}
			}
			require.Equal(t, outcome.Pass, res.Outcome, "VM: %s %s\n%s\n%s", res.Err, res.Excerpt, res.Console, res.Commands[0].Stderr)
			t.Logf("%s cell=%s accel=%s", k.Name, fmt.Sprint(res.Timings.Total.Round(time.Millisecond)), res.Accel)
		})
	}
}
