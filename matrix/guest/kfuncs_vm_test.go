package guest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kernels/kernelstest"
	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/vmtest"
)

// A module that provides an object's kfunc but does not load (here: the
// index kmatrix ships forgets nf_conntrack's dependencies, so the kernel
// finds unknown symbols) is kmatrix's failure, an infra-error with the
// kernel's reason, never the object's load-error; with the kernel's real
// index the same object loads.
func TestKfuncModuleFailsToLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("boots the bookworm kernel in QEMU; -short skips it")
	}
	k := kernelstest.Get(t, "debian-bookworm")
	require.NotEmpty(t, k.KfuncIndex)
	ix, err := kernels.ReadKfuncIndex(k.KfuncIndex)
	require.NoError(t, err)
	mods, missing := ix.Providers([]string{"bpf_xdp_ct_lookup", "bpf_ct_release"})
	require.Empty(t, missing)
	bin, err := vmtest.BuildBinary(context.Background(), "github.com/kmatrix/kmatrix/matrix/cmd/kmatrix-guest")
	require.NoError(t, err)

	broken := filepath.Join(t.TempDir(), "kfuncs.json")
	var raw map[string]any
	b, err := os.ReadFile(k.KfuncIndex)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &raw))
	for _, m := range raw["modules"].([]any) {
		delete(m.(map[string]any), "depends")
	}
	b, _ = json.Marshal(raw)
	require.NoError(t, os.WriteFile(broken, b, 0o644))

	spec := vmtest.Spec{Kernel: k.Vmlinuz, Timeout: 4 * time.Minute, MemoryMB: 512, CPUs: 1,
		Files: []vmtest.File{{Host: bin, Guest: guestTool, Mode: 0o755},
			{Host: "../../bpf/testdata/conntrack_kfunc_bpfel.o", Guest: "/payload/ct.o"},
			{Host: k.KfuncIndex, Guest: "/kmatrix/modules/kfuncs.json"},
			{Host: broken, Guest: "/kmatrix/broken/kfuncs.json"}}}
	for _, m := range mods {
		spec.Files = append(spec.Files, vmtest.File{Host: m.Path, Guest: "/kmatrix/modules/" + filepath.Base(m.Path)})
		if m.Name == "nf_conntrack" {
			spec.Files = append(spec.Files, vmtest.File{Host: m.Path, Guest: "/kmatrix/broken/" + filepath.Base(m.Path)})
		}
	}
	// The broken directory first: the real one would load the
	// dependencies for it.
	spec.Commands = []vmtest.Command{
		{Name: "broken", Path: guestTool, Args: []string{"-modules", "/kmatrix/broken", "/payload/ct.o"}, Timeout: 2 * time.Minute},
		{Name: "real", Path: guestTool, Args: []string{"-modules", "/kmatrix/modules", "/payload/ct.o"}, Timeout: 2 * time.Minute},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := vmtest.Run(ctx, spec)
	require.NoError(t, err)
	require.Len(t, res.Commands, 2, "VM: %s\n%s", res.Err, res.Excerpt)
	load := func(c vmtest.CommandResult) ProgramResult {
		t.Helper()
		for _, line := range strings.Split(string(c.Stdout), "\n") {
			var r ProgramResult
			if json.Unmarshal([]byte(line), &r) == nil && r.Program == "ct_lookup" && r.Stage == StageLoad {
				return r
			}
		}
		t.Fatalf("%s: no load result: %s %s", c.Name, c.Stdout, c.Stderr)
		return ProgramResult{}
	}
	r := load(res.Commands[0])
	t.Logf("broken index: %s: %s", r.Outcome, r.Message)
	assert.Equal(t, outcome.InfraError, r.Outcome, r.Message)
	assert.Equal(t, ClassKmatrix, r.Facts.Class)
	assert.Contains(t, r.Message, "nf_conntrack")
	assert.Contains(t, r.Message, "Unknown symbol", "the kernel's reason")
	r = load(res.Commands[1])
	assert.Equal(t, outcome.Pass, r.Outcome, r.Message)
}
