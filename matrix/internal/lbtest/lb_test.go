// Package lbtest holds Go tests that matrix's own tests run in a guest as a
// user's Go tests would be run: one whose name starts with "TestLoad" but
// checks behaviour, failing on purpose through testify; one with subtests
// that pass and skip.
package lbtest

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kmatrix/kmatrix/vmtest/evidence"
)

func guestOnly(t *testing.T) {
	if os.Getenv("KMATRIX_LBTEST") != "1" {
		t.Skip("runs in a guest, started by package matrix's TestPayloadKinds")
	}
}

func TestLoadBalancer(t *testing.T) {
	guestOnly(t)
	evidence.Fact(t, "backends", 3)
	assert.Equal(t, 3, 2, "the balancer spread the connections")
}

func TestSpreads(t *testing.T) {
	guestOnly(t)
	t.Run("tcp", func(t *testing.T) {})
	t.Run("udp", func(t *testing.T) { t.Skip("udp spreading needs Linux 99.0") })
}
