package bpf

import "testing"

// evidence records a fact for the matrix report; the lead's driver parses
// exactly this format from the test log.
func evidence(t *testing.T, key string, value any) {
	t.Helper()
	t.Logf("kmatrix-evidence %s=%v", key, value)
}
