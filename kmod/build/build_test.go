package build

import (
	"context"
	"errors"
	"fmt"
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
)

// TestBuildAll builds the real module for every default kernel, each with
// the gcc major version its kernel was built with, and checks that the
// module is stamped for that kernel.
func TestBuildAll(t *testing.T) {
	hostOnly(t)
	ks := kernelstest.Default(t)
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))

	start := time.Now()
	results, err := All(context.Background(), ks, src, Options{OutDir: t.TempDir()})
	require.NoError(t, err)
	t.Logf("build_all_seconds=%.2f", time.Since(start).Seconds())
	require.Len(t, results, len(ks))
	for i, r := range results {
		k := ks[i]
		t.Run(k.Name, func(t *testing.T) {
			require.Equal(t, outcome.Pass, r.Outcome, "build log:\n%s", r.Log)
			assert.Equal(t, k.Name, r.Kernel)
			assert.Contains(t, r.Compiler, fmt.Sprintf("gcc-%d ", k.Compiler.Major))
			info, err := kmod.ModInfo(r.Ko)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(info["vermagic"], k.Release+" "), "vermagic %q is not for %s", info["vermagic"], k.Release)
			assert.Equal(t, "GPL", info["license"])
			t.Logf("%s compiler=%q setup=%s make=%s build_root_created=%v",
				k.Name, r.Compiler, r.Setup.Round(time.Millisecond), r.Duration.Round(time.Millisecond), r.BuildRootCreated)
		})
	}
}

// TestBuildErrorOnOneKernel builds a fixture with a syntax error that only
// kernels before 5.14 see: those must report build-error at the fixture's
// file and line, the others must build it, and one failure must not stop
// the other builds.
func TestBuildErrorOnOneKernel(t *testing.T) {
	hostOnly(t)
	ks := kernelstest.Default(t)
	results, err := All(context.Background(), ks, "../testdata/versionerror", Options{OutDir: t.TempDir()})
	require.NoError(t, err)
	sawError := false
	for i, r := range results {
		k := ks[i]
		if k.Version.AtLeast(5, 14) {
			assert.Equal(t, outcome.Pass, r.Outcome, "%s (%s) should build the fixture:\n%s", k.Name, k.Version, r.Log)
			continue
		}
		sawError = true
		require.Equal(t, outcome.BuildError, r.Outcome, "%s (%s) should fail to build the fixture:\n%s", k.Name, k.Version, r.Log)
		require.NotNil(t, r.FirstError)
		assert.Equal(t, "versionerror.c", r.FirstError.File)
		assert.Equal(t, 15, r.FirstError.Line)
		assert.Contains(t, r.FirstError.Message, "expected expression")
		assert.Empty(t, r.Ko)
		assert.Contains(t, r.Log, "versionerror.c:15")
		t.Logf("%s first_error=%q", k.Name, r.FirstError.String())
	}
	if !sawError {
		t.Logf("no kernel older than 5.14 in the catalog: only the passing half was checked")
	}
}

// TestBuildBadInput feeds Module arguments it must refuse with an error
// that says what is wrong.
func TestBuildBadInput(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	cfg := writeConfig(t, "CONFIG_X86_64=y\n")
	gcc12 := &kernels.Kernel{Name: "k", Release: "6.1.0-1-amd64", Config: cfg, Compiler: kernels.Compiler{Name: "gcc", Major: 12}}

	for _, tc := range []struct {
		name string
		k    *kernels.Kernel
		src  string
		opts Options
		want string
	}{
		{"nil kernel", nil, src, Options{}, "no kernel given"},
		{"missing source", gcc12, filepath.Join(src, "nope"), Options{}, "source directory: stat"},
		{"empty source", gcc12, "", Options{}, "no source directory given"},
		{"source without Kbuild", gcc12, t.TempDir(), Options{}, "neither a Kbuild nor a Makefile"},
		{"source is a file", gcc12, filepath.Join(src, "Kbuild"), Options{}, "is not a directory"},
		{"clang kernel", &kernels.Kernel{Name: "k", Release: "r", Compiler: kernels.Compiler{Name: "clang", Major: 17, Text: "clang version 17.0.6"}}, src, Options{}, "only for gcc-built kernels"},
		{"bad name", &kernels.Kernel{Name: "../x", Release: "r", Compiler: gcc12.Compiler}, src, Options{}, "cannot name a build directory"},
		{"no release", &kernels.Kernel{Name: "k", Compiler: gcc12.Compiler}, src, Options{}, "has no release"},
		{"no compiler anywhere", &kernels.Kernel{Name: "k", Release: "r", Config: cfg, Compiler: kernels.Compiler{Name: "gcc", Major: 3}}, src, Options{OutDir: t.TempDir()}, "no Debian suite is known to ship gcc-3"},
		{"host only", &kernels.Kernel{Name: "k", Release: "r", Config: cfg, Compiler: kernels.Compiler{Name: "gcc", Major: 3}}, src, Options{OutDir: t.TempDir(), HostOnly: true}, "HostOnly forbids a build root"},
		{"no config", &kernels.Kernel{Name: "k", Release: "r", Compiler: gcc12.Compiler}, src, Options{OutDir: t.TempDir()}, "kernel config"},
		{"image and config disagree", &kernels.Kernel{Name: "k", Release: "r", Arch: "arm64", Config: cfg, Compiler: gcc12.Compiler}, src, Options{OutDir: t.TempDir()}, "its image is arm64 but its config"},
		{"riscv kernel", &kernels.Kernel{Name: "k", Release: "r", Config: writeConfig(t, "CONFIG_RISCV=y\n"), Compiler: gcc12.Compiler}, src, Options{OutDir: t.TempDir()}, "amd64 and arm64 kernels only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Module(ctx, tc.k, tc.src, tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if r != nil {
				assert.Equal(t, outcome.InfraError, r.Outcome)
			}
		})
	}

	t.Run("no headers", func(t *testing.T) {
		if !hostHasGCC("gcc-12", 12) {
			t.Skip("needs the host's gcc-12 to reach the headers check")
		}
		_, err := Module(ctx, gcc12, src, Options{OutDir: t.TempDir()})
		require.Error(t, err)
		assert.True(t, errors.Is(err, ErrInput))
		assert.Contains(t, err.Error(), "has no headers tree")
	})
}

func TestEnsureRootBadInput(t *testing.T) {
	for _, tc := range []struct{ suite, release, want string }{
		{"", "6.1.0-1-amd64", `suite ""`},
		{"../etc", "6.1.0-1-amd64", `suite "../etc"`},
		{"trixie", "", `kernel release ""`},
		{"trixie", "a/b", `kernel release "a/b"`},
	} {
		_, err := EnsureRoot(context.Background(), t.TempDir(), tc.suite, tc.release, nil, RootOptions{})
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrRoot)
		assert.Contains(t, err.Error(), tc.want)
	}
}

// BenchmarkBuildWarm rebuilds the module for every default kernel with
// build roots already in the cache: the per-run cost of the kmod column.
func BenchmarkBuildWarm(b *testing.B) {
	hostOnly(b)
	ks := kernelstest.Default(b)
	src := b.TempDir()
	require.NoError(b, kmod.WriteSource(src))
	out := b.TempDir()
	// Warm up: make any missing build root outside the timed loop.
	if _, err := All(context.Background(), ks, src, Options{OutDir: out}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		results, err := All(context.Background(), ks, src, Options{OutDir: out})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r.Outcome != outcome.Pass {
				b.Fatalf("%s: %s\n%s", r.Kernel, r.Outcome, r.Log)
			}
		}
	}
}

// TestObjtoolFirstError builds a fixture whose entry points are named
// init_module()/cleanup_module(): objtool of the 7.x kernels rejects the
// object, and the first error must be objtool's line (the object, and
// objtool's reason), not the make lines that follow it. 6.x kernels build
// it.
func TestObjtoolFirstError(t *testing.T) {
	hostOnly(t)
	ks := kernelstest.Default(t)
	results, err := All(context.Background(), ks, "../testdata/objtoolerror", Options{OutDir: t.TempDir()})
	require.NoError(t, err)
	saw7 := false
	for i, r := range results {
		k := ks[i]
		if !k.Version.AtLeast(7, 0) {
			assert.Equal(t, outcome.Pass, r.Outcome, "%s (%s) should build the fixture:\n%s", k.Name, k.Version, r.Log)
			continue
		}
		saw7 = true
		require.Equal(t, outcome.BuildError, r.Outcome, "%s (%s): objtool should reject the fixture:\n%s", k.Name, k.Version, r.Log)
		require.NotNil(t, r.FirstError)
		assert.Equal(t, "objtoolerror.o", r.FirstError.File)
		assert.Contains(t, r.FirstError.Message, "objtool: init_module(): Magic init_module() function name is deprecated")
		t.Logf("kmatrix-evidence %s first_error=%q", k.Name, r.FirstError.String())
	}
	if !saw7 {
		t.Fatal("no 7.x kernel in the default catalog: nothing showed objtool's error")
	}
}
