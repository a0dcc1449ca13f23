package build

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/kmod"
	"github.com/kmatrix/kmatrix/vmtest"
)

// arm64Kernels are the shipped arm64 catalog's kernels (bookworm 6.1, sid
// 7.x), fetched with their headers, in the arm64 lane only.
func arm64Kernels(tb testing.TB) []*kernels.Kernel {
	tb.Helper()
	hostOnly(tb)
	arm64Lane(tb)
	return []*kernels.Kernel{kernelstest.Arm64(tb, "debian-bookworm-arm64"), kernelstest.Arm64(tb, "debian-sid-arm64")}
}

// arm64Fixtures are the modules cross-built in the arm64 lane: kmatrix's
// own and the console fixtures that WARN and oops at load.
var arm64Fixtures = []string{"", "warnonload", "oopsonload"}

func fixtureSource(t testing.TB, name string) string {
	if name != "" {
		return filepath.Join("..", "testdata", name)
	}
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	return src
}

// TestCrossBuildArm64 cross-builds kmatrix's module and the WARN and oops
// fixtures for each arm64 kernel with Debian's cross compiler of the
// kernel's gcc major (on the host when it has it, else in a cross build
// root of the kernel's suite), and checks each .ko is an aarch64 object
// whose vermagic is the kernel's release.
func TestCrossBuildArm64(t *testing.T) {
	ks := arm64Kernels(t)
	out := t.TempDir()
	for _, k := range ks {
		t.Run(k.Name, func(t *testing.T) {
			tg, err := TargetOf(k)
			require.NoError(t, err)
			assert.Equal(t, "arm64", tg.Arch)
			assert.Equal(t, k.Arch, tg.Arch, "the config and the image agree")
			for _, fx := range arm64Fixtures {
				name := fx
				if name == "" {
					name = "kmatrix"
				}
				r, err := Module(context.Background(), k, fixtureSource(t, fx), Options{OutDir: filepath.Join(out, name)})
				require.NoError(t, err)
				require.Equal(t, outcome.Pass, r.Outcome, "%s for %s: %v\n%s", name, k.Name, r.FirstError, r.Log)
				assert.Equal(t, "arm64", r.Arch)
				assert.Contains(t, r.Compiler, fmt.Sprintf("aarch64-linux-gnu-gcc-%d ", k.Compiler.Major))
				m, err := elfMachine(r.Ko)
				require.NoError(t, err)
				assert.Equal(t, elf.EM_AARCH64, m)
				info, err := kmod.ModInfo(r.Ko)
				require.NoError(t, err)
				assert.True(t, strings.HasPrefix(info["vermagic"], k.Release+" "), "vermagic %q is not for %s", info["vermagic"], k.Release)
				t.Logf("kmatrix-evidence %s %s ko=%s compiler=%q vermagic=%q setup=%s make=%s root_created=%v",
					k.Name, name, r.Ko, r.Compiler, info["vermagic"], r.Setup.Round(time.Millisecond), r.Duration.Round(time.Millisecond), r.BuildRootCreated)
			}
		})
	}
}

// TestCrossBuildErrorArm64: a module that does not compile is the
// module's build-error on arm64 too, with the cross compiler's first
// error at the module's file and line.
func TestCrossBuildErrorArm64(t *testing.T) {
	ks := arm64Kernels(t)
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "Kbuild"), []byte("obj-m := broken.o\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "broken.c"), []byte("#include <linux/module.h>\n\nstatic int broken = undeclared_thing;\nMODULE_LICENSE(\"GPL\");\n"), 0o644))
	results, err := All(context.Background(), ks, src, Options{OutDir: t.TempDir()})
	require.NoError(t, err, "a compile error is not kmatrix's error")
	for i, r := range results {
		require.Equal(t, outcome.BuildError, r.Outcome, "%s:\n%s", ks[i].Name, r.Log)
		require.NotNil(t, r.FirstError)
		assert.Equal(t, "broken.c", r.FirstError.File)
		assert.Equal(t, 3, r.FirstError.Line)
		assert.Contains(t, r.FirstError.Message, "undeclared_thing")
		assert.Contains(t, r.Compiler, "aarch64-linux-gnu-gcc-")
		t.Logf("kmatrix-evidence %s first_error=%q", ks[i].Name, r.FirstError.String())
	}
}

// TestGuestArm64 is the kmod row of the matrix on the arm64 kernels:
// the cross-built module loads and behaves in a real arm64 guest (QEMU
// virt under TCG here), and the other arm64 kernel's module is refused
// for its vermagic.
func TestGuestArm64(t *testing.T) {
	ks := arm64Kernels(t)
	ctx := context.Background()
	src := fixtureSource(t, "")
	builds, err := All(ctx, ks, src, Options{OutDir: t.TempDir()})
	require.NoError(t, err)
	testBinary, err := vmtest.BuildTestBinaryFor(ctx, "arm64", "github.com/kmatrix/kmatrix/kmod")
	require.NoError(t, err)
	for i, k := range ks {
		b := builds[i]
		t.Run(k.Name, func(t *testing.T) {
			require.Equal(t, outcome.Pass, b.Outcome, "build for %s: %v\n%s", k.Name, b.FirstError, b.Log)
			foreign := builds[(i+1)%len(builds)]
			require.Equal(t, outcome.Pass, foreign.Outcome)
			res, err := vmtest.Run(ctx, vmtest.Spec{
				Kernel:   k.Vmlinuz,
				Files:    []vmtest.File{{Host: b.Ko, Guest: "/kmatrix.ko"}, {Host: foreign.Ko, Guest: "/foreign.ko"}},
				Commands: []vmtest.Command{guestCommand(testBinary, true)},
				Timeout:  6 * time.Minute,
			})
			require.NoError(t, err)
			require.NotEmpty(t, res.Commands, "%s: %s\n%s", res.Outcome, res.Err, res.Console)
			results := vmtest.ParseGoTest(res.Commands[0].Stdout, res.Commands[0].Stderr)
			vmtest.Replay(t, results)
			seen := map[string]bool{}
			for _, r := range results {
				seen[r.Name] = true
			}
			for _, name := range guestTests {
				assert.True(t, seen[name], "guest test %s did not report: %s %s\n%s", name, res.Outcome, res.Err, res.Console)
			}
			require.Equal(t, outcome.Pass, res.Outcome, "VM: %s %s\n%s", res.Err, res.Excerpt, res.Console)
			t.Logf("kmatrix-evidence %s compiler=%q make=%s cell=%s accel=%s", k.Name, b.Compiler, b.Duration.Round(time.Millisecond),
				res.Timings.Total.Round(time.Millisecond), res.Accel)
		})
	}
}

// BenchmarkCrossBuildArm64 measures a cross build of kmatrix's module per
// arm64 kernel: cold (a new cache, so the cross build root of the
// kernel's suite is made first, unless the host has the cross compiler)
// and warm (the root exists: only make runs). Run it with
// KMATRIX_ARM64=1 go test -run '^$' -bench CrossBuildArm64 -benchtime 1x ./kmod/build/.
func BenchmarkCrossBuildArm64(b *testing.B) {
	ks := arm64Kernels(b)
	src := fixtureSource(b, "")
	for _, k := range ks {
		for _, mode := range []string{"cold", "warm"} {
			b.Run(k.Name+"/"+mode, func(b *testing.B) {
				opts := Options{OutDir: b.TempDir()}
				if mode == "warm" {
					if r, err := Module(context.Background(), k, src, opts); err != nil || r.Outcome != outcome.Pass {
						b.Fatalf("warm-up: %v %v", err, r)
					}
				}
				b.ResetTimer()
				for b.Loop() {
					if mode == "cold" {
						b.StopTimer()
						opts.CacheDir = b.TempDir()
						b.StartTimer()
					}
					r, err := Module(context.Background(), k, src, opts)
					if err != nil || r.Outcome != outcome.Pass {
						b.Fatalf("%s: %v %v", k.Name, err, r)
					}
					b.ReportMetric(r.Setup.Seconds(), "setup-s")
					b.ReportMetric(r.Duration.Seconds(), "make-s")
				}
			})
		}
	}
}
