package kernels_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
)

// Every default kernel's entry has a kfunc index; those with nf_conntrack's
// kfuncs (5.18+) find them in nf_conntrack, after its dependencies; the
// entry keeps only the indexed modules and GuestModules.
func TestKfuncIndexOfDefaultKernels(t *testing.T) {
	for _, k := range kernelstest.Default(t) {
		require.NotEmpty(t, k.KfuncIndex, k.Name)
		ix, err := kernels.ReadKfuncIndex(k.KfuncIndex)
		require.NoError(t, err, k.Name)
		assert.NotEmpty(t, ix.Packages, k.Name)
		mods, missing := ix.Providers([]string{"bpf_xdp_ct_lookup", "bpf_ct_release", "bpf_no_such_kfunc", "bpf_map_lookup_elem"})
		assert.Contains(t, missing, "bpf_no_such_kfunc", k.Name)
		assert.Contains(t, missing, "bpf_map_lookup_elem", "%s: a helper, not a module's kfunc", k.Name)
		if !k.Version.AtLeast(5, 18) {
			assert.Empty(t, mods, "%s: conntrack's kfuncs came in 5.18", k.Name)
			assert.Contains(t, missing, "bpf_xdp_ct_lookup", k.Name)
		} else {
			assert.NotContains(t, missing, "bpf_xdp_ct_lookup", k.Name)
			require.NotEmpty(t, mods, k.Name)
			loaded := map[string]bool{}
			for _, m := range mods {
				for _, d := range m.Depends {
					assert.True(t, loaded[d], "%s: %s comes after its dependency %s", k.Name, m.Name, d)
				}
				loaded[m.Name] = true
				assert.FileExists(t, m.Path, k.Name)
			}
			assert.Equal(t, "nf_conntrack", mods[len(mods)-1].Name, k.Name)
			assert.Contains(t, mods[len(mods)-1].Kfuncs, "bpf_ct_release", k.Name)
		}
		// The rest of the module tree is left out.
		want := map[string]bool{}
		for _, m := range ix.Modules {
			want[m.Path] = true
		}
		for _, m := range k.Modules {
			want[m] = true
		}
		var have []string
		entry := filepath.Dir(k.KfuncIndex)
		require.NoError(t, filepath.WalkDir(entry, func(p string, d fs.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), ".ko") {
				have = append(have, p)
				assert.True(t, want[p], "%s: %s is neither a kfunc provider, a dependency of one, nor a GuestModule", k.Name, p)
			}
			return err
		}))
		assert.Len(t, have, len(want), k.Name)
	}
}

// A kfunc index that is not JSON is an error naming the file.
func TestReadKfuncIndexBad(t *testing.T) {
	p := filepath.Join(t.TempDir(), kernels.KfuncIndexFile)
	require.NoError(t, os.WriteFile(p, []byte("{"), 0o644))
	_, err := kernels.ReadKfuncIndex(p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), p)
}
