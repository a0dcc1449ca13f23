package kernels_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/image"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// task_struct.state became __state in 5.14 (commit 2f064a59a11f, "sched:
// Change task_struct::state"): the BTF of each real kernel must say so.
func TestBTFTaskState(t *testing.T) {
	for _, k := range kernelstest.Default(t) {
		t.Run(k.Name, func(t *testing.T) {
			require.True(t, k.BTF, "Debian cloud kernels are built with CONFIG_DEBUG_INFO_BTF=y")
			spec, err := k.LoadBTF()
			require.NoError(t, err)
			var ts *btf.Struct
			require.NoError(t, spec.TypeByName("task_struct", &ts))
			names := map[string]bool{}
			for _, m := range ts.Members {
				names[m.Name] = true
			}
			if k.Version.Has(version.TaskStateRename) {
				assert.True(t, names["__state"], "%s (%s) has task_struct.__state", k.Name, k.Version)
				assert.False(t, names["state"])
			} else {
				assert.True(t, names["state"], "%s (%s) has task_struct.state", k.Name, k.Version)
				assert.False(t, names["__state"])
			}
			assert.FileExists(t, k.BTFPath, "the raw BTF is cached")
		})
	}
}

func TestExtractBTFNotAKernel(t *testing.T) {
	_, err := kernels.ExtractBTF("btf_test.go")
	assert.ErrorIs(t, err, kernels.ErrNotKernel)
}

// TestArm64Kernels: Debian's arm64 cloud kernels are raw arm64 Images
// (EFI-stub PE files, signed), not bzImages: their arch, release, upstream
// version and BTF come from the Image itself.
func TestArm64Kernels(t *testing.T) {
	if os.Getenv("KMATRIX_ARM64") == "" {
		t.Skip("fetches Debian's arm64 kernels: run it with KMATRIX_ARM64=1 (make arm64)")
	}
	for _, tc := range []struct{ name, release, version string }{
		{"debian-bookworm-arm64", "6.1.0-57-cloud-arm64", "6.1.192"},
		{"debian-sid-arm64", "7.2.13+deb14-cloud-arm64", "7.2.13"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := kernelstest.Arm64(t, tc.name)
			assert.Equal(t, "arm64", k.Arch)
			assert.Equal(t, tc.release, k.Release)
			assert.Equal(t, tc.version, k.Version.String(), "the Debian version at the banner's end, not the compiler's")
			assert.Equal(t, "gcc", k.Compiler.Name)
			info, err := image.Read(k.Vmlinuz)
			require.NoError(t, err)
			assert.Equal(t, image.ARM64, info.Arch)
			raw, err := kernels.ExtractBTF(k.Vmlinuz)
			require.NoError(t, err)
			spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
			require.NoError(t, err)
			var ts *btf.Struct
			require.NoError(t, spec.TypeByName("task_struct", &ts))
			var pt *btf.Struct
			assert.NoError(t, spec.TypeByName("user_pt_regs", &pt), "arm64's pt_regs layout is in its BTF")
		})
	}
}
