package matrix

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// TestRunArm64 runs the built-in BPF payload and a user object with an x86
// kprobe on Debian's arm64 kernels (bookworm 6.1, sid 7.2; Options.Arch,
// which `kmatrix run --arch arm64` sets): the built-in payload's bpfel
// object loads unchanged and passes, the kprobe on __x64_sys_getpid is an
// x86-only attach point (not-attached, not the object's load-error), and
// tcx attaches from 6.6 as on amd64. The rows say arm64.
func TestRunArm64(t *testing.T) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("arm64 guests run under TCG: run them with KMATRIX_ARM64=1 (make arm64)")
	}
	cat, err := kernels.DefaultArm64Catalog()
	require.NoError(t, err)
	rep, err := Run(context.Background(), Options{
		Arch: "arm64", Payloads: []string{PayloadBPF},
		BPFObjects: []string{"../bpf/testdata/tcx_kprobe_x86_bpfel.o"},
		OutDir:     t.TempDir(),
	})
	require.NoError(t, err)
	require.Len(t, rep.Kernels, len(cat.Kernels))
	for _, k := range rep.Kernels {
		assert.Equal(t, "arm64", k.Arch, k.Name)
		assert.True(t, strings.HasSuffix(k.Release, "-cloud-arm64"), k.Release)
		assert.Equal(t, "tcg", k.Accel)
		builtin := cellsOf(rep, k.Name, PayloadBPF, "")
		require.Len(t, builtin, len(builtinChecks[PayloadBPF]), k.Name)
		for _, c := range builtin {
			assert.Equal(t, outcome.Pass, c.Outcome, "%s %s: %s %s", k.Name, c.Check, c.Evidence.Message, c.Evidence.Log)
		}
		boot := cellsOf(rep, k.Name, PayloadKernel, "boot")
		require.Len(t, boot, 1)
		assert.Equal(t, outcome.Pass, boot[0].Outcome)
		assert.NotEmpty(t, boot[0].Evidence.Facts["restored_from"], "restored from the kernel's snapshot (cold because: %s)", boot[0].Evidence.Facts["cold_boot"])

		kp := cellsOf(rep, k.Name, "bpf:tcx_kprobe_x86_bpfel", "count_getpid/attach")
		require.Len(t, kp, 1, k.Name)
		assert.Equal(t, outcome.NotAttached, kp[0].Outcome, "%s: %s", k.Name, kp[0].Evidence.Message)
		assert.Equal(t, "arch-attach-point", kp[0].Evidence.Facts["class"])
		assert.Contains(t, kp[0].Evidence.Message, "x86-only attach point: kprobe/__x64_sys_getpid is a function of x86-64 kernels only; this is an arm64 kernel")
		assert.Contains(t, kp[0].Evidence.Message, `SEC("ksyscall/getpid")`)
		load := cellsOf(rep, k.Name, "bpf:tcx_kprobe_x86_bpfel", "count_getpid/load")
		require.Len(t, load, 1)
		assert.Equal(t, outcome.Pass, load[0].Outcome, "a bpfel object loads on arm64 unchanged")

		tcx := cellsOf(rep, k.Name, "bpf:tcx_kprobe_x86_bpfel", "count_ingress/attach")
		require.Len(t, tcx, 1)
		if strings.HasPrefix(k.Version, "6.1.") {
			assert.Equal(t, outcome.AttachError, tcx[0].Outcome, "tcx is 6.6+: %s", tcx[0].Evidence.Message)
		} else {
			assert.Equal(t, outcome.Pass, tcx[0].Outcome, "%s: %s", k.Name, tcx[0].Evidence.Message)
		}
	}
}

// BenchmarkArm64Matrix is BenchmarkMatrix on Debian's arm64 kernels: the
// built-in payloads' row time per kernel against its bare-boot floor,
// under TCG, each row restored from its kernel's snapshot.
func BenchmarkArm64Matrix(b *testing.B) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		b.Skip("arm64 guests run under TCG: run them with KMATRIX_ARM64=1")
	}
	benchMatrix(b, []*kernels.Kernel{kernelstest.Arm64(b, "debian-bookworm-arm64"), kernelstest.Arm64(b, "debian-sid-arm64")})
}

// TestArchSelection: --arch keeps a catalog's kernels of that arch, and
// picks the shipped arm64 catalog for arm64 when no catalog is given (and
// series-arm64 for the series catalog); a
// catalog without kernels of the arch, or an arch kmatrix does not boot,
// is a usage error naming it.
func TestArchSelection(t *testing.T) {
	for _, c := range []struct{ catalog, arch string }{{"", "arm64"}, {"default", "arm64"}, {"arm64", ""}} {
		cat, err := loadCatalogFor(c.catalog, c.arch)
		require.NoError(t, err)
		require.Len(t, cat.Kernels, 2, c)
		assert.Equal(t, "debian-bookworm-arm64", cat.Kernels[0].Name, c)
		assert.Equal(t, "debian-sid-arm64", cat.Kernels[1].Name, c)
	}
	cat, err := loadCatalogFor("", "amd64")
	require.NoError(t, err)
	assert.Len(t, cat.Kernels, 4)
	cat, err = loadCatalogFor("series", "arm64")
	require.NoError(t, err)
	assert.Len(t, cat.Kernels, 11, "series means series-arm64 for arm64")
	assert.Equal(t, "linux-5.10-arm64", cat.Kernels[0].Name)
	_, err = loadCatalogFor("series-arm64", "amd64")
	var ue usageError
	require.ErrorAs(t, err, &ue)
	assert.ErrorContains(t, err, "--arch amd64: catalog series-arm64 has no amd64 kernels (it has linux-5.10-arm64 (arm64)")
	assert.ErrorContains(t, err, "or --catalog default or series for the shipped amd64 ones")
	assert.ErrorContains(t, Options{Arch: "sparc"}.validate(), "--arch sparc: kmatrix boots amd64 and arm64 kernels")
}
