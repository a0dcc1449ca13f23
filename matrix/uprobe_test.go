package matrix

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/vmtest"
)

// The binary a uprobe section names goes into the guest at its own path,
// with its loader and libraries; a binary already shipped is not shipped
// twice, and one the host lacks is left to the guest to report.
func TestUprobeFiles(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("the host has no /bin/bash")
	}
	const obj = "../bpf/testdata/bash_uprobe_bpfel.o"
	files := uprobeFiles(obj, nil)
	guest := map[string]bool{}
	for _, f := range files {
		guest[f.Guest] = true
	}
	require.True(t, guest["/bin/bash"], "%v", files)
	assert.Greater(t, len(files), 2, "bash is dynamic: its interpreter and libraries come too: %v", files)

	assert.Empty(t, uprobeFiles(obj, []vmtest.File{{Host: "/bin/bash", Guest: "/bin/bash"}}), "already shipped (say, as the check)")
	assert.Empty(t, uprobeFiles("../bpf/testdata/kconfig_bpfel.o", nil), "no uprobes")
	assert.Empty(t, uprobeFiles("no-such.o", nil), "an unusable object is the guest's to report")
}
