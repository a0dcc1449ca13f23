package matrix

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

func TestObjectKfuncs(t *testing.T) {
	assert.Equal(t, []string{"bpf_ct_release", "bpf_xdp_ct_lookup"}, objectKfuncs("../bpf/testdata/conntrack_kfunc_bpfel.o"))
	assert.Empty(t, objectKfuncs("../bpf/testdata/kconfig_bpfel.o"), "calls no kfunc")
	assert.Empty(t, objectKfuncs("kfuncs_test.go"), "not an object: the guest says so")
}

// An XDP program calling nf_conntrack's kfuncs (Linux 5.18+), as a user
// would run it: kmatrix finds the module that provides them in the
// kernel's package, ships it with its dependencies and loads them before
// the program, so it loads (and runs) wherever the kernel has them; where
// no module has them (5.10) the load fails saying so.
func TestRunModuleKfuncs(t *testing.T) {
	if testing.Short() {
		t.Skip("boots every catalog kernel in QEMU; run without -short")
	}
	ks := kernelstest.Default(t)
	rep, err := Run(context.Background(), Options{
		BPFObjects: []string{"../bpf/testdata/conntrack_kfunc_bpfel.o"},
		OutDir:     t.TempDir(),
	})
	require.NoError(t, err)
	require.Len(t, rep.Kernels, len(ks))
	for _, k := range ks {
		require.NotEmpty(t, k.KfuncIndex, k.Name)
		ix, err := kernels.ReadKfuncIndex(k.KfuncIndex)
		require.NoError(t, err, k.Name)
		mods, missing := ix.Providers([]string{"bpf_xdp_ct_lookup", "bpf_ct_release"})
		// What the kernel really has, checked against when conntrack's
		// kfuncs came (5.18): Debian's 5.10 has none, 6.1 and later have
		// them in nf_conntrack.
		has := len(missing) == 0
		assert.Equal(t, k.Version.AtLeast(5, 18), has, "%s: nf_conntrack's kfuncs came in 5.18; the index finds them in %v", k.Name, mods)
		load := cellsOf(rep, k.Name, "bpf:conntrack_kfunc_bpfel", "ct_lookup/load")
		require.Len(t, load, 1, k.Name)
		if !has {
			assert.Equal(t, outcome.LoadError, load[0].Outcome, "%s: %s", k.Name, load[0].Evidence.Message)
			assert.Contains(t, load[0].Evidence.Message, "this kernel has no kfunc bpf_xdp_ct_lookup: neither its own BTF (vmlinux) nor the BTF of any module", k.Name)
			continue
		}
		require.NotEmpty(t, mods, k.Name)
		assert.Equal(t, "nf_conntrack", mods[len(mods)-1].Name, "%s: the provider comes after its dependencies", k.Name)
		for _, stage := range []string{"load", "attach", "run"} {
			c := cellsOf(rep, k.Name, "bpf:conntrack_kfunc_bpfel", "ct_lookup/"+stage)
			require.Len(t, c, 1, "%s %s", k.Name, stage)
			assert.Equal(t, outcome.Pass, c[0].Outcome, "%s %s: %s", k.Name, stage, c[0].Evidence.Message)
		}
	}
}
