package bpf

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTracerSpecIsACopy: Load sets filter_tgid on the spec it gets, which
// must not leak into the next Load through the parsed-once original.
func TestTracerSpecIsACopy(t *testing.T) {
	a, err := tracerSpec()
	require.NoError(t, err)
	require.NoError(t, a.Variables["filter_tgid"].Set(uint32(42)))
	b, err := tracerSpec()
	require.NoError(t, err)
	var got uint32
	require.NoError(t, b.Variables["filter_tgid"].Get(&got))
	assert.Zero(t, got, "filter_tgid of a fresh spec after another copy was changed")
}
