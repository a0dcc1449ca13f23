package kernels

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFetchKilledMidway runs a fetch in a child process, kills it (SIGKILL)
// while the .deb is half downloaded, and checks that the cache holds no
// entry, then that a rerun succeeds.
func TestFetchKilledMidway(t *testing.T) {
	if os.Getenv("KMATRIX_KILL_CHILD") != "" {
		killChild(t)
		return
	}
	a := standard(t)
	cat := writeCatalog(t, testCatalog)
	rs, err := Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err)

	started := make(chan struct{}, 1)
	release := make(chan struct{})
	a.override = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, ".deb") {
			return false
		}
		body := a.files[r.URL.Path]
		w.Header().Set("Content-Length", itoa(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case started <- struct{}{}:
		default:
		}
		select { // hold the download open until the child is dead
		case <-release:
		case <-r.Context().Done():
		}
		return true
	}
	rj, _ := json.Marshal(rs[0])
	opts := a.opts()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFetchKilledMidway$")
	cmd.Env = append(os.Environ(), "KMATRIX_KILL_CHILD=1", "KMATRIX_KILL_RESOLVED="+string(rj),
		"KMATRIX_KILL_CACHE="+opts.CacheDir, "KMATRIX_KILL_ARCHIVE="+opts.Archive, "KMATRIX_KILL_SECURITY="+opts.Security)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		t.Fatal("the child never started downloading")
	}
	// The child is mid-download: its partial file exists.
	require.Eventually(t, func() bool { return len(entries(t, a.cache, "downloads")) > 0 }, 10*time.Second, 10*time.Millisecond)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	close(release)

	for _, e := range entries(t, a.cache, "kernels") {
		assert.True(t, strings.HasPrefix(e, ".tmp-"), "only temporary debris, no entry: %s", e)
	}
	parts, _ := filepath.Glob(filepath.Join(a.cache, "downloads", "*.part"))
	require.NotEmpty(t, parts, "the killed child left its partial download")
	assert.False(t, Cached(rs[0], a.opts()))

	a.mu.Lock()
	a.override = nil
	a.mu.Unlock()
	k, err := Fetch(context.Background(), rs[0], a.opts())
	require.NoError(t, err, "a rerun after the kill succeeds (the dead process's flock is gone)")
	assert.Equal(t, "1.2.3-2-test-amd64", k.Release)
	for _, e := range entries(t, a.cache, "kernels") {
		assert.False(t, strings.HasPrefix(e, ".tmp-"), "the rerun cleaned the debris: %s", e)
	}
	for _, p := range parts {
		assert.NoFileExists(t, p, "the rerun removed the dead child's partial download")
	}
	assert.Empty(t, entries(t, a.cache, "downloads"))
	assert.FileExists(t, filepath.Join(filepath.Dir(k.Vmlinuz), "config-1.2.3-2-test-amd64"))
}

func killChild(t *testing.T) {
	var r Resolved
	require.NoError(t, json.Unmarshal([]byte(os.Getenv("KMATRIX_KILL_RESOLVED")), &r))
	opts := Options{CacheDir: os.Getenv("KMATRIX_KILL_CACHE"), Retries: 1,
		Mirrors: Mirrors{Archive: os.Getenv("KMATRIX_KILL_ARCHIVE"), Security: os.Getenv("KMATRIX_KILL_SECURITY")}}
	Fetch(context.Background(), r, opts)
	t.Fatal("the fetch was meant to be killed")
}

// TestRunDirKilledOwner: a kmatrix-run-* directory whose process was
// killed is removed by the next RemoveLeftovers (every run and fetch calls
// it); one whose owner is alive is kept.
func TestRunDirKilledOwner(t *testing.T) {
	if os.Getenv("KMATRIX_RUNDIR_CHILD") != "" {
		dir, _, err := OwnedTempDir(RunDirPrefix)
		require.NoError(t, err)
		os.WriteFile(filepath.Join(dir, "work"), []byte("x"), 0o644)
		os.Stdout.WriteString("DIR " + dir + "\n")
		time.Sleep(time.Minute)
		t.Fatal("the child was meant to be killed")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the children's and this process's temporary directory
	live, release, err := OwnedTempDir(RunDirPrefix)
	require.NoError(t, err)
	defer release()

	cmd := exec.Command(os.Args[0], "-test.run=^TestRunDirKilledOwner$", "-test.v")
	cmd.Env = append(os.Environ(), "KMATRIX_RUNDIR_CHILD=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 4096)
	var dir string
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for dir == "" && time.Now().Before(deadline) {
		n, err := out.Read(buf)
		got += string(buf[:n])
		for _, l := range strings.Split(got, "\n") {
			if d, ok := strings.CutPrefix(l, "DIR "); ok {
				dir = d
			}
		}
		if err != nil {
			break
		}
	}
	require.NotEmpty(t, dir, "the child made its run dir: %s", got)
	assert.Empty(t, RemoveLeftovers(t.TempDir(), nil), "nothing is removed while its owner lives")
	assert.DirExists(t, dir)
	cmd.Process.Kill()
	cmd.Wait()
	removed := RemoveLeftovers(t.TempDir(), nil)
	assert.Equal(t, []string{dir}, removed)
	assert.NoDirExists(t, dir)
	assert.DirExists(t, live, "this process's own run dir stays")

	// A run dir from a kmatrix without owner locks counts only when old.
	legacy := filepath.Join(tmp, RunDirPrefix+"legacy")
	require.NoError(t, os.Mkdir(legacy, 0o755))
	assert.Empty(t, RemoveLeftovers(t.TempDir(), nil))
	old := time.Now().Add(-legacyAge - time.Hour)
	require.NoError(t, os.Chtimes(legacy, old, old))
	assert.Equal(t, []string{legacy}, RemoveLeftovers(t.TempDir(), nil))
}
