package kernels_test

import (
	"testing"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf/btf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
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
