package vmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/kmatrix/kmatrix/internal/cache"
)

// The guest init is built from its source, embedded here, rather than
// found next to the caller: vmtest runs inside `go test` binaries of any
// package of this module and inside the kmatrix binary, which may be far
// from a checkout. The embedded source always matches the host code it
// talks to, it needs nothing but the standard library (and so builds
// offline, in a throwaway module), and the result is cached by the hash of
// that source, so the go command runs once per change of the init.
//
//go:embed vminit/*.go vminit/*.s internal/wire/*.go
var initSource embed.FS

// EnvInit names a prebuilt static init to use instead of building one (for
// machines without a Go toolchain). It must be built from the same source.
const EnvInit = "KMATRIX_VMTEST_INIT"

// initSourceFiles returns the embedded non-test sources, sorted.
func initSourceFiles() (map[string][]byte, []string, error) {
	files := map[string][]byte{}
	var names []string
	err := fs.WalkDir(initSource, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := initSource.ReadFile(p)
		files[p] = b
		names = append(names, p)
		return err
	})
	sort.Strings(names)
	return files, names, err
}

// initKey is the content hash that names the cached init.
func initKey() (string, error) {
	files, names, err := initSourceFiles()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

// vmtestCacheDir is <kmatrix cache>/vmtest.
func vmtestCacheDir() (string, error) {
	dir, err := cache.Dir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "vmtest")
	return dir, os.MkdirAll(dir, 0o755)
}

var initMemo struct {
	sync.Mutex
	path string
}

// initBinary returns the path of the guest init, building it on first use.
func initBinary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvInit); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvInit, err)
		}
		return p, nil
	}
	initMemo.Lock()
	defer initMemo.Unlock()
	if initMemo.path != "" {
		return initMemo.path, nil
	}
	dir, err := vmtestCacheDir()
	if err != nil {
		return "", err
	}
	key, err := initKey()
	if err != nil {
		return "", err
	}
	target := filepath.Join(dir, "init-"+key)
	unlock, err := cache.LockFile(target + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(target); err == nil {
		initMemo.path = target
		return target, nil
	}
	if err := buildInit(ctx, dir, target); err != nil {
		return "", err
	}
	initMemo.path = target
	return target, nil
}

// buildInit writes the embedded source into a throwaway module that has
// this module's path (so the imports resolve as in the checkout) and builds
// a static binary from it.
func buildInit(ctx context.Context, cacheDir, target string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("%w: the guest init is built from source on first use, and there is no go command: %v: install Go 1.24 or newer, or set %s to a prebuilt init",
			ErrInfra, err, EnvInit)
	}
	src, err := os.MkdirTemp(cacheDir, "init-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	files, _, err := initSourceFiles()
	if err != nil {
		return err
	}
	for name, b := range files {
		p := filepath.Join(src, "vmtest", filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module github.com/kmatrix/kmatrix\n\ngo 1.24\n"), 0o644); err != nil {
		return err
	}
	return cache.WriteAtomic(target, 0o755, func(f *os.File) error {
		out := f.Name() + ".bin"
		defer os.Remove(out)
		if err := goBuild(ctx, goBin, src, out, "./vmtest/vminit"); err != nil {
			return fmt.Errorf("%w: build the guest init: %v", ErrInfra, err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return err
	})
}

// goBuild builds a static linux/amd64 binary of pkg in dir.
func goBuild(ctx context.Context, goBin, dir, out, pkg string, extra ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}, extra...)
	cmd := exec.CommandContext(ctx, goBin, append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
