package kernels

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheDirEnv(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	t.Setenv(EnvCacheDir, dir)
	got, err := CacheDir()
	require.NoError(t, err)
	assert.Equal(t, dir, got)
	assert.DirExists(t, dir)
}

func TestCacheDirUnwritable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	t.Setenv(EnvCacheDir, filepath.Join(f, "sub"))
	_, err := CacheDir()
	assert.ErrorContains(t, err, EnvCacheDir)
}

func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	var mu sync.Mutex
	inside, maxInside := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := LockFile(path)
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // hold it while the others try
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, maxInside, "two holders of the same flock at once")
}

func TestWriteAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	require.NoError(t, WriteFileAtomic(path, []byte("old"), 0o644))
	err := WriteAtomic(path, 0o644, func(f *os.File) error {
		f.WriteString("half")
		return os.ErrClosed
	})
	require.Error(t, err)
	b, _ := os.ReadFile(path)
	assert.Equal(t, "old", string(b))
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 1, "temporary file left behind")
}

func TestWriteAtomicReadOnlyDir(t *testing.T) {
	// A path whose parent is a regular file cannot be written by anyone, root included.
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	err := WriteFileAtomic(filepath.Join(f, "x"), []byte("x"), 0o644)
	assert.ErrorContains(t, err, "write "+filepath.Join(f, "x"))
}
