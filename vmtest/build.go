package vmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/kmatrix/kmatrix/internal/cache"
)

// BuildTestBinary compiles the tests of pkg (an import path, or a
// directory relative to the working directory as the go command takes it)
// into a static binary (CGO_ENABLED=0) for a guest, and returns its path.
func BuildTestBinary(ctx context.Context, pkg string) (string, error) {
	return buildCached(ctx, "BuildTestBinary", pkg, ".test", archAMD64, "test", "-c")
}

// BuildBinary compiles the main package pkg into a static binary for a
// guest, and returns its path.
func BuildBinary(ctx context.Context, pkg string) (string, error) {
	return buildCached(ctx, "BuildBinary", pkg, "", archAMD64, "build")
}

// BuildTestBinaryFor is BuildTestBinary for guests of arch ("amd64", "arm64").
func BuildTestBinaryFor(ctx context.Context, arch, pkg string) (string, error) {
	return buildCached(ctx, "BuildTestBinary", pkg, ".test", arch, "test", "-c")
}

// BuildBinaryFor is BuildBinary for guests of arch ("amd64", "arm64").
func BuildBinaryFor(ctx context.Context, arch, pkg string) (string, error) {
	return buildCached(ctx, "BuildBinary", pkg, "", arch, "build")
}

// buildCached runs `go <verb...> -o <cache path> pkg`. The binary lives in
// the cache under a name derived from pkg and the working directory, so a
// rebuild writes over it; the go command skips the link when the binary
// there is already up to date, and its build cache makes the rest cheap.
func buildCached(ctx context.Context, what, pkg, suffix, arch string, verb ...string) (string, error) {
	if _, ok := qemuFor[arch]; !ok {
		return "", fmt.Errorf("%w: %s: arch %q: want amd64 or arm64", ErrInvalidSpec, what, arch)
	}
	if pkg == "" {
		return "", fmt.Errorf("%w: %s: empty package: want an import path or a ./relative directory", ErrInvalidSpec, what)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: install Go", what, pkg, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir, err := vmtestCacheDir()
	if err != nil {
		return "", err
	}
	key := what + "\x00" + wd + "\x00" + pkg
	if arch != archAMD64 {
		key += "\x00" + arch // amd64 keeps the names it had before arches
	}
	sum := sha256.Sum256([]byte(key))
	base := path.Base(filepath.ToSlash(filepath.Clean(pkg)))
	if base == "." || base == "/" || base == "" || base == ".." {
		base = filepath.Base(wd)
	}
	target := filepath.Join(dir, "bin", hex.EncodeToString(sum[:8]), base+suffix)
	unlock, err := cache.LockFile(target + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	args := append(append([]string{}, verb...), "-o", target, pkg)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: go %s %s: %v\n%s", what, strings.Join(verb, " "), pkg, err, strings.TrimSpace(out.String()))
	}
	if _, err := os.Stat(target); err != nil {
		// go test -c writes nothing for a package without test files.
		return "", fmt.Errorf("%s: %s: no binary was written (a package without _test.go files?): %s", what, pkg, strings.TrimSpace(out.String()))
	}
	return target, nil
}
