package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/kernels"
)

// cacheVersion changes when what a cached build means changes, so old
// entries are ignored rather than trusted (v2: a tool missing from the
// host is no longer a build error, and first errors name tool errors).
const cacheVersion = "kmatrix-kmod-build-v2"

// Cached is Module with a content-addressed cache of results under
// <CacheDir>/modules: a module whose source, kernel (image SHA-256, release,
// compiler) and make arguments are unchanged is not compiled again. Passes
// and build errors are cached (both are deterministic); infra errors and
// timeouts are not. A warm matrix run thus spends no time in make.
func Cached(ctx context.Context, k *kernels.Kernel, srcDir string, opts Options) (*Result, error) {
	if k == nil {
		return Module(ctx, k, srcDir, opts)
	}
	key, err := buildKey(k, srcDir, opts.MakeArgs)
	if err != nil {
		return Module(ctx, k, srcDir, opts) // Module reports the bad source dir
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		if cacheDir, err = kernels.CacheDir(); err != nil {
			return nil, err
		}
	}
	entry := filepath.Join(cacheDir, "modules", key)
	unlock, err := kernels.LockFile(entry + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if res, ok := readCached(entry); ok {
		return res, nil
	}
	res, err := Module(ctx, k, srcDir, opts)
	if err != nil || (res.Outcome != outcome.Pass && res.Outcome != outcome.BuildError) {
		return res, err
	}
	if err := writeCached(entry, res); err != nil {
		// A cache that cannot be written costs speed, not correctness.
		fmt.Fprintf(os.Stderr, "kmod/build: not caching the build for %s: %v\n", k.Name, err)
	}
	return res, nil
}

func buildKey(k *kernels.Kernel, srcDir string, makeArgs []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", cacheVersion, k.SHA256, k.Release, k.Compiler.Text, strings.Join(makeArgs, "\x01"))
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(srcDir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00", rel)
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

func readCached(entry string) (*Result, bool) {
	b, err := os.ReadFile(filepath.Join(entry, "result.json"))
	if err != nil {
		return nil, false
	}
	var res Result
	if json.Unmarshal(b, &res) != nil {
		return nil, false
	}
	if res.Outcome == outcome.Pass {
		res.Ko = filepath.Join(entry, filepath.Base(res.Ko))
		if _, err := os.Stat(res.Ko); err != nil {
			return nil, false
		}
	}
	res.Dir, res.Cached, res.Setup, res.BuildRootCreated = entry, true, 0, false
	return &res, true
}

// writeCached stores res in entry: the .ko first, result.json last, so an
// entry with a result.json is always complete.
func writeCached(entry string, res *Result) error {
	if err := os.MkdirAll(entry, 0o755); err != nil {
		return err
	}
	if res.Outcome == outcome.Pass {
		ko, err := os.ReadFile(res.Ko)
		if err != nil {
			return err
		}
		if err := kernels.WriteFileAtomic(filepath.Join(entry, filepath.Base(res.Ko)), ko, 0o644); err != nil {
			return err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return kernels.WriteFileAtomic(filepath.Join(entry, "result.json"), b, 0o644)
}
