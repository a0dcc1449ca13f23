package kernels

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// backports publishes a "testing-backports" suite the way Debian keeps
// one: several upstream series, headers only for the newest version.
func backports(t *testing.T) *archive {
	a := newArchive(t)
	var pkgs []fpkg
	for _, k := range []struct{ abi, up, ver string }{
		{"1.9.6", "1.9.6", "1.9.6-1~bpo1"}, {"1.9.10", "1.9.10", "1.9.10-1~bpo1"},
		{"1.10.2", "1.10.2", "1.10.2-1~bpo1"}, {"2.0.1", "2.0.1", "2.0.1-1~bpo1"},
	} {
		p := kernelPkgs(k.abi, k.up, k.ver)
		if k.abi != "2.0.1" {
			p = p[:1] // the image alone: the index dropped its headers
		}
		pkgs = append(pkgs, p...)
	}
	a.addSuite("testing-backports", time.Time{}, nil, pkgs...)
	return a
}

func TestResolveWithoutHeaders(t *testing.T) {
	a := backports(t)
	cat := writeCatalog(t, "kernels:\n  - name: old\n    suite: testing-backports\n    flavour: test-amd64\n    series: \"1.9\"\n"+
		"  - name: new\n    suite: testing-backports\n    flavour: test-amd64\n")
	rs, err := Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err, "an image without headers still resolves")
	require.Len(t, rs, 2)
	old, nw := rs[0], rs[1]
	assert.Equal(t, "1.9.10-1~bpo1", old.Version, "the newest of series 1.9, in Debian order (1.9.10 after 1.9.6)")
	assert.Equal(t, "the archive lists no headers for 1.9.10-1~bpo1 (no linux-headers-1.9.10-test-amd64 1.9.10-1~bpo1 in testing-backports)", old.HeadersMissing)
	assert.Len(t, old.Packages, 1)
	assert.Equal(t, "2.0.1-1~bpo1", nw.Version)
	assert.Empty(t, nw.HeadersMissing)

	opts := a.opts()
	opts.Headers = true
	k, err := Fetch(context.Background(), old, opts)
	require.NoError(t, err, "fetching with headers skips the headers the archive does not have")
	assert.Empty(t, k.Headers)
	assert.Equal(t, old.HeadersMissing, k.HeadersMissing)
	assert.FileExists(t, k.Vmlinuz)
	assert.True(t, Cached(old, opts))

	l, err := ReadLock(cat.LockPath)
	require.NoError(t, err)
	assert.Equal(t, old.HeadersMissing, l.Kernels[0].HeadersMissing, "the lock keeps the reason")
}

func TestSeriesAndVersionOrder(t *testing.T) {
	a := backports(t)
	all, err := List(context.Background(), []string{"testing-backports"}, "test-amd64", a.opts())
	require.NoError(t, err)
	var vs []string
	for _, v := range all {
		vs = append(vs, v.Version)
	}
	assert.Equal(t, []string{"1.9.6-1~bpo1", "1.9.10-1~bpo1", "1.10.2-1~bpo1", "2.0.1-1~bpo1"}, vs)
	var series []string
	for _, n := range NewestPerSeries(all) {
		series = append(series, n.Series+"="+n.Version)
	}
	assert.Equal(t, []string{"1.9=1.9.10-1~bpo1", "1.10=1.10.2-1~bpo1", "2.0=2.0.1-1~bpo1"}, series)

	_, err = Resolve(context.Background(), writeCatalog(t, "kernels:\n  - name: t\n    suite: testing-backports\n    flavour: test-amd64\n    version: 1.9.7-1\n"), a.opts())
	assert.ErrorIs(t, err, ErrPackageNotFound)
	assert.ErrorContains(t, err, "versions there: 1.9.6-1~bpo1, 1.9.10-1~bpo1, 1.10.2-1~bpo1, 2.0.1-1~bpo1")
	_, err = Resolve(context.Background(), writeCatalog(t, "kernels:\n  - name: t\n    suite: testing-backports\n    flavour: test-amd64\n    series: \"1.11\"\n"), a.opts())
	assert.ErrorContains(t, err, "series there: 1.9, 1.10, 2.0")

	between, err := VersionsBetween(context.Background(), Entry{Suite: "testing-backports", Flavour: "test-amd64", Source: DefaultSource},
		"1.9.10-1~bpo1", "2.0.1-1~bpo1", a.opts())
	require.NoError(t, err)
	require.Len(t, between, 3)
	assert.Equal(t, "1.10.2-1~bpo1", between[1].Version)

	rs, err := Resolve(context.Background(), writeCatalog(t, "kernels:\n  - name: t\n    suite: testing-backports\n    flavour: test-amd64\n    version: 1.9.6-1~bpo1\n"), a.opts())
	require.NoError(t, err)
	old, err := FindOutdated(context.Background(), rs, a.opts())
	require.NoError(t, err)
	require.Len(t, old, 1)
	assert.Equal(t, "1.9.10-1~bpo1", old[0].Newer.Version, "the newest of the same series, not 2.0")
}
