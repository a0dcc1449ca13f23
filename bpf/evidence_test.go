package bpf

import (
	vmevidence "github.com/kmatrix/kmatrix/vmtest/evidence"

	"testing"
)

// evidence records a fact for this check's cell in the matrix report.
func evidence(t *testing.T, key string, value any) {
	t.Helper()
	vmevidence.Fact(t, key, value)
}
