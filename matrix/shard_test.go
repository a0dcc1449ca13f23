package matrix

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShardCoversEveryKernelOnce(t *testing.T) {
	const kernels = 7
	seen := make([]int, kernels)
	for i := 1; i <= 3; i++ {
		s, err := ParseShard(fmtShard(i, 3))
		require.NoError(t, err)
		for pos := range kernels {
			if s.Has(pos) {
				seen[pos]++
			}
		}
	}
	assert.Equal(t, []int{1, 1, 1, 1, 1, 1, 1}, seen)
}

func TestParseShardErrors(t *testing.T) {
	for _, bad := range []string{"3", "0/2", "3/2", "a/b", "1/0", "-1/2"} {
		_, err := ParseShard(bad)
		assert.ErrorContains(t, err, "want i/n with 1 ≤ i ≤ n", bad)
	}
	s, err := ParseShard("")
	require.NoError(t, err)
	assert.True(t, s.Has(5))
}

func fmtShard(i, n int) string { return Shard{Index: i, Count: n}.String() }
