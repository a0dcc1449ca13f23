// Package gobin checks the static Go binaries kmatrix commits and embeds
// (the guest init, the guest agent): they are built by `go generate` with
// fixed flags, and such builds are reproducible, so a test can rebuild one
// and compare it with the committed copy. That makes a change to their
// source without `make generate` fail, as the committed BPF objects do.
package gobin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Env is the build environment of every committed amd64 binary: static,
// for the guests' architecture, and independent of the host's settings.
// The generate lines that make them use the same flags.
var Env = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local"}

// EnvArm64 is Env for the committed arm64 binaries (the "-arm64" files
// beside the amd64 ones), with the baseline arm64 ISA.
var EnvArm64 = []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOARM64=v8.0", "GOWORK=off", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local"}

// Flags are the go build flags of every committed binary.
var Flags = []string{"-trimpath", "-ldflags=-s -w"}

// Sums is a checksum file as `go generate` writes it: the Go version that
// built the binaries on the first line, then sha256sum lines.
type Sums struct {
	GoVersion string
	SHA256    map[string]string // by file name, as sha256sum printed it
}

// ParseSums reads a checksum file.
func ParseSums(data string) (Sums, error) {
	s := Sums{SHA256: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if s.GoVersion == "" {
			if !strings.HasPrefix(line, "go") {
				return s, fmt.Errorf("checksum file: first line %q is not a Go version", line)
			}
			s.GoVersion = line
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return s, fmt.Errorf("checksum file: line %q: want SHA256 NAME", line)
		}
		s.SHA256[f[1]] = f[0]
	}
	return s, sc.Err()
}

// Sum is the hex SHA-256 of data.
func Sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// GoVersion is the version of the go command on PATH ("go1.26.8"), or an
// error when there is none.
func GoVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Build builds package pkg (relative to dir, as go build takes it) as the
// committed binaries are built, and returns the binary: its test binary
// (go test -c) when test is set.
func Build(ctx context.Context, dir, pkg string, test bool) ([]byte, error) {
	return BuildFor(ctx, "amd64", dir, pkg, test)
}

// BuildFor is Build for guests of arch: "amd64" (Env) or "arm64" (EnvArm64).
func BuildFor(ctx context.Context, arch, dir, pkg string, test bool) ([]byte, error) {
	env := Env
	if arch == "arm64" {
		env = EnvArm64
	}
	tmp, err := os.MkdirTemp("", "gobin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	verb := []string{"build"}
	if test {
		verb = []string{"test", "-c"}
	}
	args := append(append(verb, Flags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out)
}
