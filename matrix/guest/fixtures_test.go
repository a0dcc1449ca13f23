package guest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFixturesUpToDate fails when a fixture's C source changed after the
// objects were generated (`make generate`), or an object was replaced by
// hand: testdata/fixtures.sha256, written by go generate, names them all.
func TestFixturesUpToDate(t *testing.T) {
	f, err := os.Open("testdata/fixtures.sha256")
	require.NoError(t, err)
	defer f.Close()
	listed := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		require.True(t, ok, "bad line %q", sc.Text())
		listed[name] = true
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(t, err)
		got := sha256.Sum256(b)
		assert.Equal(t, sum, hex.EncodeToString(got[:]), "testdata/%s changed since the fixtures were generated: run make generate", name)
	}
	require.NoError(t, sc.Err())
	for _, pat := range []string{"testdata/*.c", "testdata/*.o"} {
		m, err := filepath.Glob(pat)
		require.NoError(t, err)
		for _, p := range m {
			assert.True(t, listed[filepath.Base(p)], "%s is not in testdata/fixtures.sha256: run make generate", p)
		}
	}
	for _, fx := range attachFixtures {
		assert.True(t, listed[fx+".c"] && listed[fx+".o"], "fixture %s has its source and object", fx)
	}
}
