package execchild

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

//go:embed c/child.c
var source []byte

//go:embed child.sha256
var sums string

// TestCommittedChildUpToDate fails when c/child.c changed but kmatrix-child
// was not rebuilt (or either was edited by hand).
func TestCommittedChildUpToDate(t *testing.T) {
	want := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(sums))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		require.Len(t, f, 2, "child.sha256 line %q", sc.Text())
		want[f[1]] = f[0]
	}
	for name, data := range map[string][]byte{"c/child.c": source, file: binary} {
		sum := sha256.Sum256(data)
		assert.Equal(t, want[name], hex.EncodeToString(sum[:]), "%s does not match child.sha256: run go generate ./vmtest/execchild", name)
	}
}

func requireAMD64(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("kmatrix-child is an x86-64 Linux executable; this is %s/%s", runtime.GOOS, runtime.GOARCH)
	}
}

func TestExit(t *testing.T) {
	requireAMD64(t)
	cmd, err := Command(Exit)
	require.NoError(t, err)
	require.NoError(t, cmd.Run())
	assert.Equal(t, Name, filepath.Base(cmd.Path))
}

func TestSpawnPrintsGrandchildPid(t *testing.T) {
	requireAMD64(t)
	cmd, err := Command(Spawn)
	require.NoError(t, err)
	out, err := cmd.Output()
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(out), "\n"), "output %q", out)
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err, "output %q", out)
	assert.Greater(t, pid, cmd.Process.Pid, "the grandchild's pid comes after the child's (pids grow until they wrap)")
}

func TestSleepAndStopStates(t *testing.T) {
	requireAMD64(t)
	for mode, want := range map[string]byte{Sleep: 'S', Stop: 'T'} {
		cmd, err := Command(mode)
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		got := byte(0)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
			require.NoError(t, err)
			s := string(b)
			if got = s[strings.LastIndex(s, ") ")+2]; got == want {
				break
			}
		}
		assert.Equal(t, string(want), string(got), "state of a %s child", mode)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
	}
}

func TestUnknownMode(t *testing.T) {
	requireAMD64(t)
	p, err := Path()
	require.NoError(t, err)
	out, err := exec.Command(p, "nap").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
	assert.Equal(t, "kmatrix-child: unknown mode \"nap\": want exit, spawn, sleep or stop\n", string(out))
}

func TestWriteReusesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	p, err := write(dir)
	require.NoError(t, err)
	// A corrupt copy (a crash mid-write by an older kmatrix) is replaced.
	require.NoError(t, os.WriteFile(p, []byte("junk"), 0o755))
	p2, err := write(dir)
	require.NoError(t, err)
	assert.Equal(t, p, p2)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, binary, b)
	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left beside it")
}
