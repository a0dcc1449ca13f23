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
	files := uprobeFiles(obj, "amd64", nil)
	guest := map[string]bool{}
	for _, f := range files {
		guest[f.Guest] = true
	}
	require.True(t, guest["/bin/bash"], "%v", files)
	assert.Greater(t, len(files), 2, "bash is dynamic: its interpreter and libraries come too: %v", files)

	assert.Empty(t, uprobeFiles(obj, "amd64", []vmtest.File{{Host: "/bin/bash", Guest: "/bin/bash"}}), "already shipped (say, as the check)")
	assert.Empty(t, uprobeFiles("../bpf/testdata/kconfig_bpfel.o", "amd64", nil), "no uprobes")
	assert.Empty(t, uprobeFiles("no-such.o", "amd64", nil), "an unusable object is the guest's to report")
}

// TestUprobeFilesArm64: an arm64 guest gets no x86 binary of the host's
// for a uprobe; the guest then says the binary is missing (not-attached).
func TestUprobeFilesArm64(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("the host has no /bin/bash")
	}
	assert.NotEmpty(t, uprobeFiles("../bpf/testdata/bash_uprobe_bpfel.o", "amd64", nil))
	assert.Empty(t, uprobeFiles("../bpf/testdata/bash_uprobe_bpfel.o", "arm64", nil))
}
