package kernels_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// TestResolveRealArchive floats the default catalog against the real
// Debian archive (signed indexes, newest ABIs) into a scratch lock file.
func TestResolveRealArchive(t *testing.T) {
	cat, err := kernels.DefaultCatalog()
	require.NoError(t, err)
	var log strings.Builder
	rs, err := kernels.Resolve(context.Background(), cat, kernels.Options{Float: true, LockFile: filepath.Join(t.TempDir(), "catalog.lock"), Log: &log})
	var ne net.Error
	if errors.As(err, &ne) {
		t.Skipf("the Debian mirror is unreachable: %v", err)
	}
	require.NoError(t, err)
	t.Log(log.String())
	want := map[string]struct {
		series   string
		compiler string
	}{
		"debian-bullseye": {"5.10.", "gcc-10"},
		"debian-bookworm": {"6.1.", "gcc-12"},
		"debian-trixie":   {"6.12.", "gcc-14"},
		"debian-sid":      {"7.", "gcc-16"},
	}
	require.Len(t, rs, 4)
	for _, r := range rs {
		w := want[r.Name]
		assert.True(t, strings.HasPrefix(r.Version, w.series), "%s: %s is not %sx", r.Name, r.Version, w.series)
		assert.Equal(t, w.compiler, r.Compiler, r.Name)
		assert.Len(t, r.Image().SHA256, 64)
		assert.NotEmpty(t, r.HeadersForTest(), r.Name)
	}
}

// TestHeadersBuildModule builds a real out-of-tree module against the
// fetched bookworm headers tree with the host's gcc-12 (the compiler that
// built 6.1 in bookworm).
func TestHeadersBuildModule(t *testing.T) {
	if _, err := exec.LookPath("gcc-12"); err != nil {
		t.Skip("gcc-12 is not installed: the bookworm 6.1 kernel was built with it")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	k := kernelstest.Get(t, "debian-bookworm")
	require.NotEmpty(t, k.Headers)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.c"), []byte(`#include <linux/module.h>
static int __init hello_init(void) { return 0; }
static void __exit hello_exit(void) {}
module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Kbuild"), []byte("obj-m := hello.o\n"), 0o644))
	out, err := exec.Command("make", "-C", k.Headers, "M="+dir, "modules").CombinedOutput()
	require.NoError(t, err, "%s", out)
	ko, err := os.ReadFile(filepath.Join(dir, "hello.ko"))
	require.NoError(t, err)
	assert.Contains(t, string(ko), "vermagic="+k.Release+" SMP", "built for this kernel")
}

// TestSeriesKernelWithoutConfigOrHeaders fetches trixie-backports' 7.0, for
// which the archive still lists the signed image but neither the headers
// nor linux-base-<abi> (which holds the config from 6.19 on): it must
// fetch, with the reason the headers are missing, and with the compiler
// and BTF read from the vmlinux.
func TestSeriesKernelWithoutConfigOrHeaders(t *testing.T) {
	k := kernelstest.Series(t, "linux-7.0")
	assert.Empty(t, k.Headers)
	assert.Contains(t, k.HeadersMissing, "the archive lists no headers for 7.0.13-1~bpo13+1")
	assert.Equal(t, "gcc-14", k.Compiler.String())
	assert.True(t, k.BTF)
	assert.FileExists(t, k.BTFPath)
	cfg, err := os.ReadFile(k.Config)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "# Not the kernel's .config")
}
