package guest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// DecodeBatch keeps each object's last attempt, remembers how the earlier
// ones ended, and reads past a line it cannot decode (vmtest's note where
// it cut an output past its limit).
func TestDecodeBatch(t *testing.T) {
	out := strings.Join([]string{
		`{"object":"/a.o","attempt":1,"begin":{"worker":10}}`,
		`{"object":"/a.o","attempt":1,"result":{"program":"p","stage":"load","outcome":"pass"}}`,
		`{"object":"/a.o","attempt":1,"end":{"duration_ms":3}}`,
		`{"object":"/k.o","attempt":1,"begin":{"worker":10}}`,
		`{"object":"/k.o","attempt":1,"result":{"program":"kill","stage":"load","outcome":"pass"}}`,
		`{"object":"/k.o","attempt":1,"end":{"died":"killed by signal 9 (killed)","rerun":true}}`,
		`[… 1234 bytes left out …]`,
		`{"object":"/b.o","attempt":1,"begin":{"alone":true,"worker":11}}`,
		`{"object":"/b.o","attempt":1,"end":{"unusable":"BPF object /b.o: not an ELF file"}}`,
		`{"object":"/k.o","attempt":2,"begin":{"alone":true,"worker":12}}`,
		`{"object":"/k.o","attempt":2,"result":{"program":"kill","stage":"load","outcome":"load-error"}}`,
		`{"object":"/k.o","attempt":2,"end":{"died":"killed by signal 9 (killed)"}}`,
	}, "\n")
	runs, err := DecodeBatch(strings.NewReader(out))
	require.Error(t, err, "the cut is reported")
	assert.Contains(t, err.Error(), "line 7")
	require.Len(t, runs, 3)

	a := runs["/a.o"]
	assert.Equal(t, 1, a.Attempts)
	assert.Equal(t, 10, a.Begin.Worker)
	require.Len(t, a.Results, 1)
	assert.Equal(t, outcome.Pass, a.Results[0].Outcome)
	require.NotNil(t, a.End)
	assert.Empty(t, a.End.Died)

	k := runs["/k.o"]
	assert.Equal(t, 2, k.Attempts)
	assert.True(t, k.Begin.Alone)
	require.Len(t, k.Results, 1, "the first attempt's results are superseded")
	assert.Equal(t, outcome.LoadError, k.Results[0].Outcome)
	require.Len(t, k.Earlier, 1)
	assert.True(t, k.Earlier[0].Rerun)
	assert.Contains(t, k.End.Died, "signal 9")

	assert.Equal(t, "BPF object /b.o: not an ELF file", runs["/b.o"].End.Unusable)
}
