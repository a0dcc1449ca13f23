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

// arm64Archive publishes testing-backports with amd64 and arm64 kernels of
// different series (arm64 lacks 1.10), testing-updates whose arm64 index
// lists no kernel, and testing-old with no binary-arm64 index at all.
func arm64Archive(t *testing.T) *archive {
	a := newArchive(t)
	var pkgs []fpkg
	for _, k := range []struct{ abi, ver, arch string }{
		{"1.9.6", "1.9.6-1~bpo1", "amd64"}, {"1.10.2", "1.10.2-1~bpo1", "amd64"},
		{"1.9.6", "1.9.6-1~bpo1", "arm64"}, {"1.9.10", "1.9.10-1~bpo1", "arm64"}, {"2.0.1", "2.0.1-1~bpo1", "arm64"},
	} {
		pkgs = append(pkgs, fpkg{name: "linux-image-" + k.abi + "-test-" + k.arch, version: k.ver, arch: k.arch, source: "linux-signed-" + k.arch})
		if k.abi == "2.0.1" {
			pkgs = append(pkgs, fpkg{name: "linux-headers-" + k.abi + "-test-arm64", version: k.ver, arch: "arm64", source: "linux"})
		}
	}
	a.addSuite("testing-backports", time.Time{}, nil, pkgs...)
	a.addSuite("testing-updates", time.Time{}, nil, fpkg{name: "busybox", version: "1", arch: "arm64", source: "busybox"})
	a.addSuite("testing-old", time.Time{}, nil, kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")...)
	return a
}

// TestSeriesArm64: List reads the suites' binary-arm64 indexes for an
// arm64 flavour (and only them), NewestPerSeries keeps the arm64 series,
// and the rendered catalog declares each entry arch: arm64. A suite with
// no arm64 kernels, or no arm64 index, is an error naming it; the other
// suites are still listed.
func TestSeriesArm64(t *testing.T) {
	a := arm64Archive(t)
	all, err := List(context.Background(), []string{"testing-backports"}, "test-arm64", a.opts())
	require.NoError(t, err)
	var got []string
	for _, v := range all {
		got = append(got, v.Package+"="+v.Version)
		assert.Equal(t, "arm64", v.Arch)
		assert.Equal(t, "linux-signed-arm64", v.Source)
	}
	assert.Equal(t, []string{"linux-image-1.9.6-test-arm64=1.9.6-1~bpo1", "linux-image-1.9.10-test-arm64=1.9.10-1~bpo1", "linux-image-2.0.1-test-arm64=2.0.1-1~bpo1"}, got,
		"the arm64 images only, in Debian version order")
	newest := NewestPerSeries(all)
	require.Len(t, newest, 2)
	assert.Equal(t, "1.9.10-1~bpo1", newest[0].Version)
	assert.False(t, newest[0].Headers)
	assert.Equal(t, "2.0.1-1~bpo1", newest[1].Version)
	assert.True(t, newest[1].Headers, "linux-headers-2.0.1-test-arm64 is in the arm64 index")

	text := RenderSeriesCatalog(newest, "arm64", "kernels/series-arm64.yaml")
	assert.Contains(t, text, `"kmatrix run --catalog kernels/series-arm64.yaml"`)
	assert.Contains(t, text, "pinned in series-arm64.lock")
	c, err := ParseCatalog("series-arm64.yaml", []byte(text))
	require.NoError(t, err)
	require.Len(t, c.Kernels, 2)
	for i, sr := range []string{"1.9", "2.0"} {
		e := c.Kernels[i]
		assert.Equal(t, Entry{Name: "linux-" + sr + "-arm64", Suite: "testing-backports", Arch: "arm64", Flavour: "cloud-arm64", Source: "linux-signed-arm64", Series: sr, Line: e.Line}, e)
	}
	amd, err := List(context.Background(), []string{"testing-backports"}, "test-amd64", a.opts())
	require.NoError(t, err)
	text = RenderSeriesCatalog(NewestPerSeries(amd), "", "kernels/series.yaml")
	assert.NotContains(t, text, "arch:", "amd64 is the default arch: series.yaml does not say it")
	assert.Contains(t, text, "  - name: linux-1.10\n    suite: testing-backports\n    source: linux-signed-amd64\n")

	all, err = List(context.Background(), []string{"testing-backports", "testing-updates", "testing-old"}, "test-arm64", a.opts())
	assert.ErrorIs(t, err, ErrUnknownFlavour)
	assert.ErrorContains(t, err, "suite testing-updates (testing-updates) lists no signed linux-image-<abi>-test-arm64: no arm64 kernels of that flavour there")
	assert.ErrorContains(t, err, "suite testing-old: ")
	assert.ErrorContains(t, err, "lists no main/binary-arm64/Packages index")
	assert.Len(t, all, 3, "testing-backports is still listed")

	between, err := VersionsBetween(context.Background(), Entry{Suite: "testing-backports", Flavour: "test-arm64", Source: "linux-signed-arm64"},
		"2.0.1-1~bpo1", "1.9.6-1~bpo1", a.opts())
	require.NoError(t, err)
	require.Len(t, between, 3, "bisect's range: the arm64 versions only")
	_, err = VersionsBetween(context.Background(), Entry{Suite: "testing-backports", Flavour: "test-arm64", Source: "linux-signed-arm64"},
		"1.10.2-1~bpo1", "2.0.1-1~bpo1", a.opts())
	assert.ErrorContains(t, err, "no linux-image-<abi>-test-arm64 version 1.10.2-1~bpo1 from linux-signed-arm64 in testing-backports; versions there: 1.9.6-1~bpo1, 1.9.10-1~bpo1, 2.0.1-1~bpo1",
		"1.10 is an amd64 kernel only")
}

// TestShippedSeriesCatalogs: series.yaml and series-arm64.yaml are what
// kmatrix kernels --series (--arch arm64) --write renders from the kernels
// their locks pin, and series-arm64's are all arm64.
func TestShippedSeriesCatalogs(t *testing.T) {
	for _, c := range []struct {
		arch, file string
		load       func() (*Catalog, error)
		text       []byte
	}{{"amd64", "kernels/series.yaml", DefaultSeriesCatalog, seriesCatalog}, {"arm64", "kernels/series-arm64.yaml", DefaultSeriesArm64Catalog, seriesArm64Catalog}} {
		cat, err := c.load()
		require.NoError(t, err)
		l, err := parseLock("embedded", cat.lock)
		require.NoError(t, err)
		var newest []Available
		for _, e := range cat.Kernels {
			r := l.find(e.Name)
			require.True(t, r.matches(e), "%s.lock pins %s; run `kmatrix kernels --series --arch %s --write %s`", c.file, e.Name, c.arch, c.file)
			assert.Equal(t, c.arch, r.GetArch(), e.Name)
			assert.Equal(t, e.Series, seriesOf(r.Version), e.Name)
			newest = append(newest, Available{Suite: r.Suite, Source: r.Source, Series: e.Series})
		}
		assert.Equal(t, string(c.text), RenderSeriesCatalog(newest, c.arch, c.file))
	}
}
