package version

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	v, err := Parse("6.12.118+deb13-cloud-amd64")
	require.NoError(t, err)
	assert.Equal(t, Version{6, 12, 118}, v)
	assert.Equal(t, 6<<16|12<<8|118, v.Code())
	assert.True(t, v.AtLeast(5, 14))
	assert.False(t, Version{5, 10, 262}.AtLeast(5, 14))
	assert.Equal(t, 255, Version{5, 10, 262}.Code()&0xff, "patch saturates at 255")
	_, err = Parse("vmlinuz")
	assert.ErrorContains(t, err, `kernel version "vmlinuz"`)
}

func TestRunning(t *testing.T) {
	v, err := Running()
	require.NoError(t, err)
	assert.True(t, v.AtLeast(3, 0), "the running kernel %s: below 3.0?", v)
}

func TestFeatures(t *testing.T) {
	assert.True(t, Version{6, 6, 0}.Has(TCX))
	assert.False(t, Version{6, 1, 192}.Has(TCX))
	assert.True(t, Version{7, 2, 13}.Has(Netkit))
	assert.Equal(t, "tcx needs Linux 6.6", TCX.Needs())
	assert.Equal(t, "5.17", BPFLoop.SinceString())
}
