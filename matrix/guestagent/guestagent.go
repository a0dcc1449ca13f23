// Package guestagent carries what kmatrix runs inside its guests as static
// binaries embedded in whatever links it: kmatrix-guest, the program that
// loads a user's BPF object or module (matrix/cmd/kmatrix-guest), and the
// guest test binaries of the built-in payloads (the tests of packages bpf
// and kmod). An installed kmatrix far from a checkout, or a user's own
// `go test` binary calling the matrix API, has them without a Go toolchain
// or kmatrix's source.
//
// The binaries are committed, built by `make generate` with fixed flags; such
// Go builds are reproducible, and TestCommittedAgentUpToDate rebuilds it
// and compares, so a change to its source without regenerating fails.
//
// Why an agent of its own and not the kmatrix binary re-executed in the
// guest: the kmatrix binary is 21 MB and links the Debian archive client,
// whose package initialisers run on every exec. Measured under TCG on
// debian-bookworm (3 runs each in one guest, vmtest CommandResult.Duration,
// GODEBUG=inittrace=1): `kmatrix version` 537, 208, 325 ms (its package
// inits end at 473 ms on the first exec), `kmatrix-guest -h` (5.6 MB) 223,
// 159, 79 ms (inits end at 156 ms), kmatrix-child 39, 7, 14 ms; and every
// kernel's initramfs would carry the 21 MB. A re-exec would also not exist
// in a user's `go test` binary, which is not kmatrix.
package guestagent

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go build -trimpath "-ldflags=-s -w" -o kmatrix-guest ../cmd/kmatrix-guest
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go test -c -trimpath "-ldflags=-s -w" -o bpf.test ../../bpf
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go test -c -trimpath "-ldflags=-s -w" -o kmod.test ../../kmod
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go build -trimpath "-ldflags=-s -w" -o kmatrix-guest-arm64 ../cmd/kmatrix-guest
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go test -c -trimpath "-ldflags=-s -w" -o bpf.test-arm64 ../../bpf
//go:generate env CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.0 GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local go test -c -trimpath "-ldflags=-s -w" -o kmod.test-arm64 ../../kmod
//go:generate sh -c "go env GOVERSION > agent.sha256 && sha256sum kmatrix-guest bpf.test kmod.test kmatrix-guest-arm64 bpf.test-arm64 kmod.test-arm64 >> agent.sha256"

var (
	//go:embed kmatrix-guest
	agent []byte
	//go:embed bpf.test
	bpfTests []byte
	//go:embed kmod.test
	kmodTests []byte
	// The same for arm64 guests (Debian's arm64 kernels, kernels/arm64.yaml).
	//go:embed kmatrix-guest-arm64
	agentArm64 []byte
	//go:embed bpf.test-arm64
	bpfTestsArm64 []byte
	//go:embed kmod.test-arm64
	kmodTestsArm64 []byte
)

// The binaries' file names, as Write takes them.
const (
	Agent     = "kmatrix-guest"
	BPFTests  = "bpf.test"  // the tests of package bpf
	KmodTests = "kmod.test" // the tests of package kmod
)

// binary is one embedded binary: its data, the package it is built from
// (relative to this directory), whether it is a test binary, and the
// guest arch it is built for.
type binary struct {
	data []byte
	pkg  string
	test bool
	arch string
}

// binaries are the embedded binaries by file name (the arm64 builds are
// "<name>-arm64").
var binaries = map[string]binary{
	Agent:                {agent, "../cmd/kmatrix-guest", false, "amd64"},
	BPFTests:             {bpfTests, "../../bpf", true, "amd64"},
	KmodTests:            {kmodTests, "../../kmod", true, "amd64"},
	Agent + "-arm64":     {agentArm64, "../cmd/kmatrix-guest", false, "arm64"},
	BPFTests + "-arm64":  {bpfTestsArm64, "../../bpf", true, "arm64"},
	KmodTests + "-arm64": {kmodTestsArm64, "../../kmod", true, "arm64"},
}

// Write writes the amd64 binary name into dir and returns its path.
func Write(dir, name string) (string, error) { return WriteFor(dir, name, "amd64") }

// WriteFor writes the binary name built for guests of arch ("amd64",
// "arm64") into dir/<arch> and returns its path (its base name is name,
// whatever the arch).
func WriteFor(dir, name, arch string) (string, error) {
	file := name
	if arch != "amd64" {
		file = name + "-" + arch
	}
	b, ok := binaries[file]
	if !ok {
		return "", fmt.Errorf("guestagent: no binary %q for %s guests", name, arch)
	}
	if arch != "amd64" {
		dir = filepath.Join(dir, arch)
	}
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	if err := os.WriteFile(p, b.data, 0o755); err != nil {
		return "", fmt.Errorf("writing %s: %w", name, err)
	}
	return p, nil
}
