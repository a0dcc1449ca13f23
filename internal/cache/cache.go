// Package cache is kmatrix's on-disk cache discipline, shared by every
// package that keeps files between runs (kernels, guest binaries, module
// builds, the accelerator answer): where the cache is, exclusive locks that
// die with their process, and writes that readers see whole or not at all.
//
// It is a leaf package (standard library and x/sys only) so that vmtest,
// kmod and the guest-side binaries use the cache without linking the
// archive client of package kernels.
package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// EnvDir names the environment variable that overrides the cache directory.
const EnvDir = "KMATRIX_CACHE_DIR"

// Dir is where kmatrix keeps downloads and unpacked kernels:
// $KMATRIX_CACHE_DIR, else <user cache dir>/kmatrix (~/.cache/kmatrix).
// The directory is created if missing.
func Dir() (string, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("cache directory: %w; set %s", err, EnvDir)
		}
		dir = filepath.Join(base, "kmatrix")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("cache directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory: %w; set %s to a writable directory", err, EnvDir)
	}
	return dir, nil
}

// LockFile takes an exclusive flock(2) on path, creating it (and its
// directory) if needed, and blocks until it gets it. The lock is shared
// between processes and between goroutines of one process (each call opens
// its own file description), and the kernel drops it if the process dies,
// so a killed fetch never leaves a stale lock. Call unlock to release it.
//
// The convention in the cache: the entry <dir>/<key> is guarded by
// <dir>/<key>.lock, taken before checking whether the entry exists.
func LockFile(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// WriteFileAtomic writes data to path so that readers see either the old
// file or the whole new one, never a part: it writes a temporary file in the
// same directory, syncs it, and renames it over path.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return WriteAtomic(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content produced by write. If write
// fails, nothing is left behind and path is untouched.
func WriteAtomic(path string, perm os.FileMode, write func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// FileSHA256 returns the size and hex SHA-256 of the file at path: how
// cache entries identify and verify their files.
func FileSHA256(path string) (size int64, sum string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
