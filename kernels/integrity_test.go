package kernels

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fetched(t *testing.T, a *archive) (Resolved, Options, *Kernel, *syncBuffer) {
	r := resolved(t, a)
	opts := a.opts()
	opts.Headers = true
	log := &syncBuffer{}
	opts.Log = log
	k, err := Fetch(context.Background(), r, opts)
	require.NoError(t, err)
	return r, opts, k, log
}

// A vmlinuz changed in place (same size) is found by the cheap check every
// fetch makes, and the entry is made again from its packages, saying so.
func TestDamagedVmlinuzRepaired(t *testing.T) {
	a := standard(t)
	r, opts, k, log := fetched(t, a)
	b, err := os.ReadFile(k.Vmlinuz)
	require.NoError(t, err)
	good := append([]byte(nil), b...)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(k.Vmlinuz, b, 0o644))

	k2, err := Fetch(context.Background(), r, opts)
	require.NoError(t, err, "repaired")
	assert.Contains(t, log.String(), "is damaged: root/boot/vmlinuz-1.2.3-2-test-amd64")
	assert.Contains(t, log.String(), "does not have the SHA-256 it was unpacked with; fetching it again")
	after, err := os.ReadFile(k2.Vmlinuz)
	require.NoError(t, err)
	assert.Equal(t, good, after)
	assert.Empty(t, entries(t, a.cache, "downloads"))
	for _, e := range entries(t, a.cache, "kernels") {
		assert.False(t, strings.HasPrefix(e, ".tmp-"), "no debris of the repair: %s", e)
	}
}

// A headers tree missing a file: the next fetch makes it again; when it
// cannot (the mirror is gone), the fetch fails naming the file, and
// nothing is half-repaired.
func TestHeadersMissingFile(t *testing.T) {
	a := standard(t)
	r, opts, k, log := fetched(t, a)
	victim := filepath.Join(k.Headers, "Module.symvers")
	require.NoError(t, os.Remove(victim))

	k2, err := Fetch(context.Background(), r, opts)
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(k2.Headers, "Module.symvers"))
	assert.Contains(t, log.String(), "Module.symvers is missing; fetching it again")
	assert.NotEqual(t, k.HeadersDigest, k2.HeadersDigest, "a repaired tree is a new identity: nothing built against the damaged one is reused")

	require.NoError(t, os.Remove(victim))
	a.srv.Close()
	_, err = Fetch(context.Background(), r, opts)
	require.Error(t, err, "offline, the damage cannot be repaired")
	assert.ErrorContains(t, err, "linux-headers-1.2.3-2-test-amd64")
	assert.Contains(t, log.String(), "Module.symvers is missing")
}

// `kmatrix cache verify` re-hashes everything: a same-size change to a
// header, which the cheap check lets through, is found.
func TestVerifyCache(t *testing.T) {
	a := standard(t)
	_, _, k, _ := fetched(t, a)
	checked, problems := VerifyCache(a.cache)
	assert.Len(t, checked, 2)
	assert.Empty(t, problems)

	h := filepath.Join(k.Headers, "include/generated/autoconf.h")
	b, err := os.ReadFile(h)
	require.NoError(t, err)
	b[0] ^= 0x20
	require.NoError(t, os.WriteFile(h, b, 0o644))
	_, problems = VerifyCache(a.cache)
	require.Len(t, problems, 1)
	assert.ErrorIs(t, problems[0], ErrDamaged)
	assert.ErrorContains(t, problems[0], "include/generated/autoconf.h does not have the SHA-256")
	assert.ErrorContains(t, problems[0], "removed it: the next fetch downloads it again")
	assert.NoDirExists(t, filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(k.Headers)))))
}

// An entry made by an older kmatrix (no manifest, an absolute cache path
// in its Makefile) is brought up to date by the next fetch, once.
func TestLegacyEntryUpgraded(t *testing.T) {
	a := standard(t)
	r, opts, k, log := fetched(t, a)
	entry := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(k.Headers))))
	require.NoError(t, os.Remove(filepath.Join(entry, manifestFile)))
	abs := "include " + filepath.Join(entry, "root/usr/src/linux-headers-1.2.3-2-common/Makefile") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(k.Headers, "Makefile"), []byte(abs), 0o644))

	a.srv.Close() // no download needed
	k2, err := Fetch(context.Background(), r, opts)
	require.NoError(t, err)
	assert.Contains(t, log.String(), "recorded the manifest of "+entry)
	mk, err := os.ReadFile(filepath.Join(k2.Headers, "Makefile"))
	require.NoError(t, err)
	assert.NotContains(t, string(mk), a.cache, "the absolute cache path is gone")
	assert.Contains(t, string(mk), "include $(kmatrix_usr)/src/linux-headers-1.2.3-2-common/Makefile")
	assert.Equal(t, strings.Split(k.HeadersDigest, "@")[0], strings.Split(k2.HeadersDigest, "@")[0], "the upgraded tree is the tree a new fetch makes")
}
