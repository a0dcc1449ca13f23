package build

import (
	"os"
	"os/exec"
	"testing"

	"github.com/kmatrix/kmatrix/kmod"
)

// hostOnly skips tests that build modules on the host when they run inside
// a guest (where KMATRIX_KO is set and there is no make or kernel headers).
func hostOnly(tb testing.TB) {
	tb.Helper()
	if os.Getenv(kmod.EnvKo) != "" {
		tb.Skip("host test: skipped inside a guest (KMATRIX_KO is set)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		tb.Skip("host test: needs make to build modules; none in PATH")
	}
}
