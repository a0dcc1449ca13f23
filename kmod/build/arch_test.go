package build

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kmod"
)

func writeConfig(t *testing.T, lines string) string {
	p := filepath.Join(t.TempDir(), "config")
	require.NoError(t, os.WriteFile(p, []byte(lines), 0o644))
	return p
}

func TestTargetOf(t *testing.T) {
	arm := &kernels.Kernel{Name: "a", Config: writeConfig(t, "CONFIG_ARM64=y\nCONFIG_64BIT=y\n")}
	tg, err := TargetOf(arm)
	require.NoError(t, err)
	assert.Equal(t, "arm64", tg.Arch)
	assert.Equal(t, elf.EM_AARCH64, tg.Machine)
	x86 := &kernels.Kernel{Name: "x", Config: writeConfig(t, "CONFIG_X86_64=y\n")}
	tx, err := TargetOf(x86)
	require.NoError(t, err)
	assert.Equal(t, "amd64", tx.Arch)

	// On an x86 host (this project's), arm64 is a cross build with
	// Debian's cross compiler names; amd64 is native.
	if h, _ := hostTarget(); h.Arch == "amd64" {
		assert.True(t, tg.Cross())
		assert.Equal(t, "aarch64-linux-gnu-gcc-16", tg.CC(16))
		assert.Equal(t, "gcc-16-aarch64-linux-gnu", tg.CCPackage(16))
		assert.Equal(t, []string{"ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-", "CC=aarch64-linux-gnu-gcc-12"}, tg.makeArgs(12))
		assert.False(t, tx.Cross())
		assert.Equal(t, "gcc-12", tx.CC(12))
		assert.Nil(t, tx.makeArgs(12))

		arm.Compiler = kernels.Compiler{Name: "gcc", Major: 12, Text: "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"}
		needs := Needs(arm)
		require.Len(t, needs, 2)
		assert.Equal(t, Tool{Name: "aarch64-linux-gnu-gcc-12", Package: "gcc-12-aarch64-linux-gnu", Why: "the kernel was built with gcc-12 for arm64"}, needs[0])
		assert.Equal(t, "binutils-aarch64-linux-gnu", needs[1].Package)
	}

	// Debian's package names spell x86_64 as x86-64 (an arm64 host's view).
	amd := targets[0].t
	assert.Equal(t, "x86-64-linux-gnu", amd.pkgTriplet())
	assert.Equal(t, "binutils-x86-64-linux-gnu", amd.BinutilsPackage())
	assert.Equal(t, "binutils-aarch64-linux-gnu", tg.BinutilsPackage())

	_, err = TargetOf(&kernels.Kernel{Name: "riscv", Config: writeConfig(t, "CONFIG_RISCV=y\n")})
	require.ErrorIs(t, err, ErrInput)
	assert.Contains(t, err.Error(), "neither CONFIG_X86_64 nor CONFIG_ARM64")
}

// elfHeader is the 64-byte header of an ELF64 little-endian file of
// machine m with no sections: enough for debug/elf, and for kmatrix's
// check of which machine a headers tree's kbuild programs are for.
func elfHeader(m elf.Machine) []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	binary.LittleEndian.PutUint16(b[16:], uint16(elf.ET_DYN))
	binary.LittleEndian.PutUint16(b[18:], uint16(m))
	binary.LittleEndian.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	binary.LittleEndian.PutUint16(b[52:], 64) // e_ehsize
	return b
}

// TestKbuildForAnotherMachine gives Module a headers tree whose kbuild
// programs are aarch64 binaries (what unpacking the arm64 linux-kbuild
// package gives): that is kmatrix's infra-error naming the programs'
// machine, never a build-error of the module, and make never runs.
func TestKbuildForAnotherMachine(t *testing.T) {
	host, ok := hostTarget()
	if !ok {
		t.Skip("the host is neither amd64 nor arm64")
	}
	other := elf.EM_AARCH64
	if host.Machine == other {
		other = elf.EM_X86_64
	}
	hdr := filepath.Join(t.TempDir(), "usr", "src", "linux-headers-6.1.0-1-cloud-x")
	require.NoError(t, os.MkdirAll(filepath.Join(hdr, "scripts", "mod"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(hdr, "Makefile"), []byte("all:\n\tfalse\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(hdr, "scripts", "mod", "modpost"), elfHeader(other), 0o755))
	cfg := "CONFIG_X86_64=y\n"
	if host.Arch == "arm64" {
		cfg = "CONFIG_ARM64=y\n"
	}
	k := &kernels.Kernel{Name: "k", Release: "6.1.0-1-cloud-x", Config: writeConfig(t, cfg), Headers: hdr,
		Compiler: kernels.Compiler{Name: "gcc", Major: 12}}
	if len(HostMissing(k)) > 0 {
		t.Skipf("needs the host's %s to reach the kbuild check", toolList(HostMissing(k)))
	}
	src := t.TempDir()
	require.NoError(t, kmod.WriteSource(src))
	r, err := Module(context.Background(), k, src, Options{OutDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kbuild programs")
	assert.Contains(t, err.Error(), other.String())
	assert.Equal(t, outcome.InfraError, r.Outcome)
	assert.Empty(t, r.Log, "make must not run")
}

// TestCrossCompilerNotInSuite asks for a cross build root of bookworm with
// gcc-16 for aarch64, which bookworm does not have: the error names the
// package and the suite (the kernel's cell is kmatrix's infra-error), and
// nothing is left in the cache. It runs mmdebstrap up to apt's package
// resolution (some 30 s here), so it is in the arm64 lane (make arm64).
func TestCrossCompilerNotInSuite(t *testing.T) {
	hostOnly(t)
	arm64Lane(t)
	if _, err := kernels.DiscoverMirrors(); err != nil {
		t.Skipf("no Debian mirror known to this host's apt: %v", err)
	}
	cache := t.TempDir()
	arm64 := targets[1].t
	start := time.Now()
	_, err := EnsureCrossRoot(context.Background(), cache, "bookworm", arm64, 16, nil, RootOptions{})
	t.Logf("failed after %s", time.Since(start).Round(time.Millisecond))
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrRoot)
	assert.Contains(t, err.Error(), "the suite has no package gcc-16-aarch64-linux-gnu")
	ents, _ := os.ReadDir(filepath.Join(cache, "buildroots"))
	for _, e := range ents {
		assert.Contains(t, e.Name(), ".lock", "left in the cache: %s", e.Name())
	}
}

func TestUnrunnableTool(t *testing.T) {
	assert.Equal(t, "scripts/mod/modpost (it needs libelf.so.1)", missingTool("  MODPOST Module.symvers\nscripts/mod/modpost: error while loading shared libraries: libelf.so.1: cannot open shared object file: No such file or directory\n"))
	assert.Equal(t, "scripts/basic/fixdep (a program for another machine)", missingTool("/bin/sh: 1: scripts/basic/fixdep: cannot execute binary file: Exec format error\n"))
	assert.Equal(t, "gcc-16-aarch64-linux-gnu", unknownPackage("I: running apt-get update...\nE: Unable to locate package gcc-16-aarch64-linux-gnu\n"))
	assert.Equal(t, "gcc-9", unknownPackage("E: Package 'gcc-9' has no installation candidate\n"))
	assert.Equal(t, "", unknownPackage("E: Sub-process /usr/bin/dpkg returned an error code (1)\n"))
}

// arm64Lane skips tests of the arm64 lane unless KMATRIX_ARM64 is set
// (make arm64): cold, they make a cross build root per suite (30-40 s
// each) and fetch the arm64 kernels.
func arm64Lane(tb testing.TB) {
	tb.Helper()
	if os.Getenv("KMATRIX_ARM64") == "" {
		tb.Skip("arm64 lane: makes cross build roots and fetches arm64 kernels; set KMATRIX_ARM64=1 (make arm64) to run it")
	}
}
