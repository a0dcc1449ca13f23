package kernels

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// One result per entry: the broken one carries its error, the others resolve.
func TestResolveEach(t *testing.T) {
	a := standard(t)
	cat := writeCatalog(t, testCatalog+"  - name: u\n    suite: nosuchsuite\n  - name: v\n    suite: testing\n    flavour: test-amd64\n    version: 1.2.3-1\n")
	res, err := ResolveEach(context.Background(), cat, a.opts())
	require.NoError(t, err)
	require.Len(t, res, 3)
	assert.NoError(t, res[0].Err)
	assert.Equal(t, "1.2.3-2-test-amd64", res[0].Resolved.Release)
	assert.ErrorIs(t, res[1].Err, ErrUnknownSuite)
	assert.ErrorContains(t, res[1].Err, `kernel "u"`)
	assert.Equal(t, "u", res[1].Entry.Name)
	assert.NoError(t, res[2].Err)
	assert.Equal(t, "1.2.3-1-test-amd64", res[2].Resolved.Release)
}

// Entries that are not selected are not resolved at all (a broken one
// costs nothing), and resolving a selection keeps the others' pins.
func TestResolveSelection(t *testing.T) {
	a := standard(t)
	cat := writeCatalog(t, testCatalog+"  - name: u\n    suite: nosuchsuite\n  - name: v\n    suite: testing\n    flavour: test-amd64\n    version: 1.2.3-1\n")
	sel, err := cat.Select([]string{"t"})
	require.NoError(t, err)
	res, err := ResolveEach(context.Background(), sel, a.opts())
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.NoError(t, res[0].Err)
	a.mu.Lock()
	assert.Zero(t, a.hits["/debian/dists/nosuchsuite/InRelease"], "the unselected broken entry was never looked up")
	a.mu.Unlock()

	sel, err = cat.Select([]string{"v"})
	require.NoError(t, err)
	res, err = ResolveEach(context.Background(), sel, a.opts())
	require.NoError(t, err)
	require.NoError(t, res[0].Err)
	l, err := ReadLock(cat.LockPath)
	require.NoError(t, err)
	var names []string
	for _, k := range l.Kernels {
		names = append(names, k.Name)
	}
	assert.Equal(t, []string{"t", "v"}, names, "the lock keeps t's pin, in catalog order")
}
