package kmod

import (
	"os"
	"os/exec"
	"testing"
)

// hostOnly skips tests that build modules on the host when they run inside
// a guest (where KMATRIX_KO is set and there is no make or kernel headers).
func hostOnly(tb testing.TB) {
	tb.Helper()
	if os.Getenv(EnvKo) != "" {
		tb.Skip("host test: skipped inside a guest (KMATRIX_KO is set)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		tb.Skip("host test: needs make to build modules; none in PATH")
	}
}
