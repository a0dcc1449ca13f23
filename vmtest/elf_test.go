package vmtest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExecutableFilesOfADynamicBinary(t *testing.T) {
	uname, err := exec.LookPath("uname")
	require.NoError(t, err)
	files, err := executableFiles(uname, "/bin/uname", archAMD64)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 3, "binary, interpreter, libc: %v", files)
	assert.Equal(t, File{Host: uname, Guest: "/bin/uname", Mode: 0o755}, files[0])
	assert.Equal(t, "/lib64/ld-linux-x86-64.so.2", files[1].Guest, "the interpreter at the path the binary names")
	var libc bool
	for _, f := range files[2:] {
		if filepath.Base(f.Guest) == "libc.so.6" {
			libc = true
			assert.Contains(t, []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}, filepath.Dir(f.Guest))
		}
	}
	assert.True(t, libc, "libc.so.6 among %v", files)
}

func TestExecutableFilesOfAStaticBinary(t *testing.T) {
	files, err := executableFiles(guestprog(t), "/bin/gp", archAMD64)
	require.NoError(t, err)
	assert.Len(t, files, 1, "a static Go binary needs nothing else")
}

func TestExecutableFilesOfAScript(t *testing.T) {
	files, err := executableFiles("testdata/console/warning.txt", "/x", archAMD64)
	require.NoError(t, err)
	assert.Len(t, files, 1)
}
