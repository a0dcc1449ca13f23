package kernels

import (
	"archive/tar"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testCatalog = "kernels:\n  - name: t\n    suite: testing\n    flavour: test-amd64\n"

// standard publishes "testing" with ABI 1.2.3-1 and "testing-security" with the newer 1.2.3-2.
func standard(t *testing.T) *archive {
	a := newArchive(t)
	a.addSuite("testing", time.Time{}, nil, kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")...)
	a.addSuite("testing-security", time.Time{}, nil, kernelPkgs("1.2.3-2", "1.2.3", "1.2.3-2")...)
	return a
}

func TestResolveAndFetchFixture(t *testing.T) {
	a := standard(t)
	cat := writeCatalog(t, testCatalog)
	rs, err := Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err)
	require.Len(t, rs, 1)
	r := rs[0]
	assert.Equal(t, "1.2.3-2-test-amd64", r.Release, "the newest ABI, found in the -security pocket")
	assert.Equal(t, "testing-security", r.Image().Pocket)
	assert.Equal(t, "gcc-12", r.Compiler)
	var names []string
	for _, p := range r.Packages {
		names = append(names, p.Name)
		assert.Len(t, p.SHA256, 64)
	}
	assert.Equal(t, []string{"linux-image-1.2.3-2-test-amd64", "linux-headers-1.2.3-2-test-amd64", "linux-headers-1.2.3-2-common", "linux-kbuild-1.2"}, names,
		"follows Depends of the same build; never linux-base, initramfs-tools or linux-compiler-*")
	assert.FileExists(t, cat.LockPath, "the lock file is written")

	opts := a.opts()
	opts.Headers = true
	k, err := Fetch(context.Background(), r, opts)
	require.NoError(t, err)
	assert.Equal(t, "1.2.3-2-test-amd64", k.Release)
	assert.Equal(t, Version{Major: 1, Minor: 2, Patch: 3}, k.Version)
	assert.Equal(t, 12, k.Compiler.Major)
	assert.Equal(t, "testing", k.BuildRootSuite)
	assert.Equal(t, "testing-security", k.Suite)
	assert.Equal(t, "linux-image-1.2.3-2-test-amd64", k.Package)
	assert.False(t, k.BTF)
	entry := filepath.Dir(filepath.Dir(filepath.Dir(k.Vmlinuz)))
	assert.NoFileExists(t, filepath.Join(entry, "root/lib/modules/1.2.3-2-test-amd64/kernel/fs/big.ko"), "modules are not cached")
	assert.NoFileExists(t, filepath.Join(entry, "root/lib/modules/1.2.3-2-test-amd64/kernel/net/sched/cls_bpf_not.ko"), "modules are not cached")
	assert.Equal(t, []string{filepath.Join(entry, "root/lib/modules/1.2.3-2-test-amd64/kernel/net/sched/cls_bpf.ko")}, k.Modules,
		"but the guest modules are (kernels.GuestModules)")
	assert.FileExists(t, filepath.Join(entry, "root/lib/modules/1.2.3-2-test-amd64/modules.builtin"))
	link, err := os.Readlink(filepath.Join(entry, "root/lib/modules/1.2.3-2-test-amd64/build"))
	require.NoError(t, err)
	assert.Equal(t, "../../../usr/src/linux-headers-1.2.3-2-test-amd64", link, "absolute symlinks are kept inside the entry")

	mk, err := os.ReadFile(filepath.Join(k.Headers, "Makefile"))
	require.NoError(t, err)
	common := filepath.Join(filepath.Dir(k.Headers), "linux-headers-1.2.3-2-common", "Makefile")
	assert.Equal(t, "kmatrix_usr := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/../..)\ninclude $(kmatrix_usr)/src/linux-headers-1.2.3-2-common/Makefile\n", string(mk),
		"the include is relative to the Makefile, resolved by make: no absolute cache path")
	assert.NotContains(t, string(mk), a.cache)
	assert.FileExists(t, common)
	assert.NotEmpty(t, k.HeadersDigest)
	assert.FileExists(t, filepath.Join(k.Headers, "scripts", "Makefile.build"), "relative symlinks resolve in the one root")
	assert.True(t, Cached(r, opts))
	assert.NoDirExists(t, filepath.Join(a.cache, "downloads", "x"), "")
	ents, _ := os.ReadDir(filepath.Join(a.cache, "downloads"))
	assert.Empty(t, ents, "downloads are removed once unpacked")

	// Warm: no network at all.
	a.srv.Close()
	rs2, err := Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err, "the lock file resolves offline")
	k2, err := Fetch(context.Background(), rs2[0], opts)
	require.NoError(t, err, "a cached kernel fetches offline")
	assert.Equal(t, k.Vmlinuz, k2.Vmlinuz)
}

func TestResolveWarmIndexOffline(t *testing.T) {
	a := standard(t)
	opts := a.opts()
	opts.Float = true
	cat := writeCatalog(t, testCatalog)
	_, err := Resolve(context.Background(), cat, opts)
	require.NoError(t, err)
	a.srv.Close()
	rs, err := Resolve(context.Background(), cat, opts)
	require.NoError(t, err, "floating again uses the cached, re-verified InRelease and index")
	assert.Equal(t, "1.2.3-2-test-amd64", rs[0].Release)
}

func TestFloatReportsChange(t *testing.T) {
	a := newArchive(t)
	a.addSuite("testing", time.Time{}, nil, kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")...)
	cat := writeCatalog(t, testCatalog)
	rs, err := Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err)
	assert.Equal(t, "1.2.3-1-test-amd64", rs[0].Release)

	a.addSuite("testing-security", time.Time{}, nil, kernelPkgs("1.2.4-1", "1.2.4", "1.2.4-1")...)
	rs, err = Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err)
	assert.Equal(t, "1.2.3-1-test-amd64", rs[0].Release, "without Float the lock file wins")

	opts := a.opts()
	opts.Float = true
	rs, err = Resolve(context.Background(), cat, opts)
	require.NoError(t, err)
	assert.Equal(t, "1.2.4-1-test-amd64", rs[0].Release)
	assert.Equal(t, "1.2.3-1-test-amd64 1.2.3-1 → 1.2.4-1-test-amd64 1.2.4-1", rs[0].Change)
	l, err := ReadLock(cat.LockPath)
	require.NoError(t, err)
	assert.Equal(t, "1.2.4-1-test-amd64", l.Kernels[0].Release, "the lock file is rewritten")
}

func TestResolvePinnedVersion(t *testing.T) {
	a := standard(t)
	cat := writeCatalog(t, testCatalog+"    version: 1.2.3-1\n")
	rs, err := Resolve(context.Background(), cat, a.opts())
	require.NoError(t, err)
	assert.Equal(t, "1.2.3-1-test-amd64", rs[0].Release)
	assert.Equal(t, "testing", rs[0].Image().Pocket)
}

func TestResolveErrors(t *testing.T) {
	a := standard(t)
	for _, tc := range []struct {
		name, catalog string
		is            error
		msg           []string
	}{
		{"unknown suite", "kernels:\n  - name: t\n    suite: bookwrom\n", ErrUnknownSuite,
			[]string{`suite "bookwrom"`, "/dists/bookwrom/InRelease does not exist (HTTP 404)", "bullseye, bookworm"}},
		{"unknown flavour", "kernels:\n  - name: t\n    suite: testing\n    flavour: rt-amd64\n", ErrUnknownFlavour,
			[]string{`"rt-amd64"`, "no linux-image-<abi>-rt-amd64 in testing, testing-security", "flavours there: test-amd64"}},
		{"arch the suite lacks", "kernels:\n  - name: t\n    suite: testing\n    arch: arm64\n", nil,
			[]string{"lists no main/binary-arm64/Packages index: is it a Debian suite for arm64?"}},
		{"version not in index", testCatalog + "    version: 9.9.9-1\n", ErrPackageNotFound,
			[]string{"version 9.9.9-1", "versions there: 1.2.3-1, 1.2.3-2"}},
		{"package not in index", testCatalog + "    package: linux-image-7.0.0-1-test-amd64\n", ErrPackageNotFound,
			[]string{"no linux-image-7.0.0-1-test-amd64 built from source \"linux-signed-amd64\""}},
		{"other source", testCatalog + "    source: linux-signed-6.1-amd64\n", ErrPackageNotFound,
			[]string{`source "linux-signed-6.1-amd64"`, "sources with that flavour: linux-signed-amd64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(context.Background(), writeCatalog(t, tc.catalog), a.opts())
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.ErrorContains(t, err, `kernel "t"`)
			for _, m := range tc.msg {
				assert.ErrorContains(t, err, m)
			}
		})
	}
}

func TestResolveOneBadKernelDoesNotHideOthers(t *testing.T) {
	a := standard(t)
	cat := writeCatalog(t, testCatalog+"  - name: u\n    suite: nosuchsuite\n")
	rs, err := Resolve(context.Background(), cat, a.opts())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnknownSuite)
	require.Len(t, rs, 1)
	assert.Equal(t, "t", rs[0].Name)
}

func TestSignatureErrors(t *testing.T) {
	_, other := testKeys(t)
	t.Run("unknown key", func(t *testing.T) {
		a := newArchive(t)
		a.addSuite("testing", time.Time{}, other, kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")...)
		_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), a.opts())
		assert.ErrorIs(t, err, ErrBadSignature)
		assert.ErrorContains(t, err, "signed by a key that is not in the keyring")
		assert.ErrorContains(t, err, "/dists/testing/InRelease")
	})
	t.Run("tampered", func(t *testing.T) {
		a := newArchive(t)
		a.addSuite("testing", time.Time{}, nil, kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")...)
		p := "/debian/dists/testing/InRelease"
		a.set(p, []byte(strings.Replace(string(a.get(p)), "Origin: Test", "Origin: Evil", 1)))
		_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), a.opts())
		assert.ErrorIs(t, err, ErrBadSignature)
	})
	t.Run("not signed", func(t *testing.T) {
		a := newArchive(t)
		a.addSuite("testing", time.Time{}, nil)
		a.set("/debian/dists/testing/InRelease", []byte("Origin: Test\nSHA256:\n"))
		_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), a.opts())
		assert.ErrorIs(t, err, ErrBadSignature)
		assert.ErrorContains(t, err, "not an OpenPGP clearsigned file")
	})
	t.Run("keyring missing", func(t *testing.T) {
		a := standard(t)
		opts := a.opts()
		opts.Keyring = filepath.Join(t.TempDir(), "none.gpg")
		_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), opts)
		assert.ErrorContains(t, err, "none.gpg")
		assert.ErrorContains(t, err, "Options.Keyring")
	})
}

func TestValidUntil(t *testing.T) {
	a := newArchive(t)
	a.addSuite("testing", time.Now().Add(-48*time.Hour), nil, kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")...)
	cat := writeCatalog(t, testCatalog)
	_, err := Resolve(context.Background(), cat, a.opts())
	assert.ErrorIs(t, err, ErrExpiredIndex)
	assert.ErrorContains(t, err, "--allow-expired")
	assert.ErrorContains(t, err, EnvAllowExpired)

	opts := a.opts()
	opts.AllowExpired = true
	_, err = Resolve(context.Background(), cat, opts)
	assert.NoError(t, err)

	t.Setenv(EnvAllowExpired, "1")
	opts = a.opts()
	opts.Float = true
	_, err = Resolve(context.Background(), cat, opts)
	assert.NoError(t, err)
	t.Setenv(EnvAllowExpired, "")

	// The host's own apt policy turns the check off: follow it, and say so.
	conf := filepath.Join(a.aptDir, "apt.conf.d", "99snapshot")
	writeFile(t, conf, "// frozen snapshot\nAcquire::Check-Valid-Until \"false\";\n")
	var log strings.Builder
	opts = a.opts()
	opts.Float, opts.Log = true, &log
	_, err = Resolve(context.Background(), cat, opts)
	assert.NoError(t, err)
	assert.Contains(t, log.String(), "following the host's apt policy: "+conf)
}

func TestAptConfValue(t *testing.T) {
	for text, want := range map[string]string{
		`Acquire::Check-Valid-Until "false";`:                                  "false",
		"Acquire {\n  Check-Valid-Until \"no\"; // x\n};\n":                    "no",
		"acquire::check-valid-until false;":                                    "false",
		"Acquire::http::Proxy \"x\";\n# Acquire::Check-Valid-Until \"false\";": "",
	} {
		got, _ := aptConfValue(text, "acquire::check-valid-until")
		assert.Equal(t, want, got, text)
	}
}

func TestChecksumMismatch(t *testing.T) {
	a := newArchive(t)
	pk := kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")
	pk[0].badSHA = true
	a.addSuite("testing", time.Time{}, nil, pk...)
	cat := writeCatalog(t, testCatalog)
	_, err := Get(context.Background(), cat, nil, a.opts())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrChecksum)
	var ce *ChecksumError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, strings.Repeat("0", 64), ce.Want)
	assert.ErrorContains(t, err, "linux-image-1.2.3-1-test-amd64")
	assert.Empty(t, entries(t, a.cache, "kernels"), "nothing is cached")
}

func TestIndexChecksumMismatch(t *testing.T) {
	a := standard(t)
	a.set("/debian/dists/testing/main/binary-amd64/Packages.gz", []byte("not the signed index, but as long as it....."))
	_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), a.opts())
	assert.ErrorIs(t, err, ErrChecksum)
	assert.ErrorContains(t, err, "Packages.gz")
}

// entries lists an area of the cache, ignoring lock files.
func entries(t *testing.T, cache, area string) []string {
	ents, _ := os.ReadDir(filepath.Join(cache, area))
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			out = append(out, e.Name())
		}
	}
	return out
}

// truncate makes the server send half of every .deb (announcing the full
// length) for the first n requests of it.
func truncate(a *archive, n int) {
	count := 0
	a.override = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, ".deb") || count >= n {
			return false
		}
		count++
		body := a.files[r.URL.Path]
		w.Header().Set("Content-Length", itoa(len(body)))
		w.Write(body[:len(body)/2])
		// Returning with fewer bytes than announced makes the server cut the connection.
		return true
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestTruncatedDownload(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		a := standard(t)
		truncate(a, 1)
		ks, err := Get(context.Background(), writeCatalog(t, testCatalog), nil, a.opts())
		require.NoError(t, err, "one truncated answer is retried")
		require.Len(t, ks, 1)
	})
	t.Run("always", func(t *testing.T) {
		a := standard(t)
		truncate(a, 1000)
		_, err := Get(context.Background(), writeCatalog(t, testCatalog), nil, a.opts())
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrTruncated)
		assert.ErrorContains(t, err, "gave up after 3 attempts, nothing was cached")
		assert.Empty(t, entries(t, a.cache, "kernels"))
		assert.Empty(t, entries(t, a.cache, "downloads"), "no partial file is left")
	})
}

func TestUnsafeDebEntries(t *testing.T) {
	for name, e := range map[string]tentry{
		"dotdot":           {name: "./boot/../../escape", body: []byte("x")},
		"absolute":         {name: "/etc/passwd", body: []byte("x")},
		"symlink outside":  {name: "./boot/evil", typ: tar.TypeSymlink, link: "../../../../etc"},
		"hardlink outside": {name: "./boot/evil", typ: tar.TypeLink, link: "../../etc/shadow"},
	} {
		t.Run(name, func(t *testing.T) {
			a := newArchive(t)
			pk := kernelPkgs("1.2.3-1", "1.2.3", "1.2.3-1")
			pk[0].entries = append([]tentry{e}, pk[0].entries...)
			a.addSuite("testing", time.Time{}, nil, pk...)
			_, err := Get(context.Background(), writeCatalog(t, testCatalog), nil, a.opts())
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUnsafeArchive)
			assert.ErrorContains(t, err, e.name)
			assert.Empty(t, entries(t, a.cache, "kernels"))
			assert.NoFileExists(t, filepath.Join(a.cache, "escape"))
			assert.NoFileExists(t, filepath.Join(a.cache, "kernels", "escape"))
		})
	}
}

func TestDiskWriteFailure(t *testing.T) {
	a := standard(t)
	require.NoError(t, os.MkdirAll(a.cache, 0o755))
	// A regular file where the cache wants a directory fails for every user, root included.
	require.NoError(t, os.WriteFile(filepath.Join(a.cache, "kernels"), []byte("in the way"), 0o644))
	_, err := Get(context.Background(), writeCatalog(t, testCatalog), nil, a.opts())
	require.Error(t, err)
	assert.ErrorContains(t, err, filepath.Join(a.cache, "kernels"))
}

func TestNoMirrorConfigured(t *testing.T) {
	a := standard(t)
	t.Setenv(EnvMirror, "")
	t.Setenv(EnvSecurityMirror, "")
	opts := a.opts()
	opts.Mirrors = Mirrors{}
	_, err := Resolve(context.Background(), writeCatalog(t, testCatalog), opts)
	assert.ErrorIs(t, err, ErrNoMirror)
	assert.ErrorContains(t, err, EnvMirror)
}

func TestResolveCanceled(t *testing.T) {
	a := standard(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Resolve(ctx, writeCatalog(t, testCatalog), a.opts())
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}
