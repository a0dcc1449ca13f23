// Package guestagent carries kmatrix-guest, the program that loads a user's
// BPF object or module inside a guest (matrix/cmd/kmatrix-guest), as a
// static binary embedded in whatever links it: an installed kmatrix far
// from a checkout, or a user's own `go test` binary calling the matrix
// API, has it without a Go toolchain or kmatrix's source.
//
// The binary is committed, built by `make generate` with fixed flags; such
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
//go:generate sh -c "go env GOVERSION > agent.sha256 && sha256sum kmatrix-guest >> agent.sha256"
//go:embed kmatrix-guest
var binary []byte

// Name is the agent's file name.
const Name = "kmatrix-guest"

// Write writes the agent into dir and returns its path.
func Write(dir string) (string, error) {
	p := filepath.Join(dir, Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing %s: %w", Name, err)
	}
	if err := os.WriteFile(p, binary, 0o755); err != nil {
		return "", fmt.Errorf("writing %s: %w", Name, err)
	}
	return p, nil
}
