package kernels

import "github.com/kmatrix/kmatrix/internal/cache"

// EnvCacheDir overrides the cache directory.
const EnvCacheDir = cache.EnvDir

// The cache's helpers, which live in a leaf package so that packages which
// do not need the archive client (vmtest, kmod) do not link it.
var (
	// CacheDir is $KMATRIX_CACHE_DIR, else ~/.cache/kmatrix, created if missing.
	CacheDir = cache.Dir
	// LockFile takes an exclusive flock(2) on a path; see cache.LockFile.
	LockFile = cache.LockFile
	// WriteFileAtomic writes a file that readers see whole or not at all.
	WriteFileAtomic = cache.WriteFileAtomic
	// WriteAtomic is WriteFileAtomic for content produced by a function.
	WriteAtomic = cache.WriteAtomic
)
