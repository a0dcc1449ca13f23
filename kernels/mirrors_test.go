package kernels

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestDiscoverMirrorsDeb822(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sources.list.d", "debian.sources"), `Types: deb
# http://old.example/debian (a comment inside the stanza)
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
`)
	writeFile(t, filepath.Join(dir, "sources.list.d", "other.sources"), "Types: deb\nURIs: http://thirdparty.example/apt\nSuites: stable-custom\n")
	m, err := discoverMirrors(dir, "", "")
	require.NoError(t, err)
	assert.Equal(t, Mirrors{Archive: "http://mirror.example/debian", Security: "http://security.example/debian-security"}, m)
	assert.Equal(t, m.Security, m.For("trixie-security"))
	assert.Equal(t, m.Archive, m.For("sid"))
}

func TestDiscoverMirrorsOneLine(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sources.list"), `# a comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian bookworm main
deb http://thirdparty.example/repo focal main
`)
	m, err := discoverMirrors(dir, "", "")
	require.NoError(t, err)
	// No -security line: the sibling tree is assumed, as on every Debian mirror.
	assert.Equal(t, Mirrors{Archive: "http://mirror.example/debian", Security: "http://mirror.example/debian-security"}, m)
}

func TestDiscoverMirrorsEnvOverrides(t *testing.T) {
	m, err := discoverMirrors(t.TempDir(), "http://env.example/debian/", "http://env.example/sec")
	require.NoError(t, err)
	assert.Equal(t, Mirrors{Archive: "http://env.example/debian", Security: "http://env.example/sec"}, m)
}

func TestDiscoverMirrorsNone(t *testing.T) {
	dir := t.TempDir()
	_, err := discoverMirrors(dir, "", "")
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrNoMirror))
	assert.ErrorContains(t, err, "no apt source files found under "+dir)
	assert.ErrorContains(t, err, EnvMirror)
	assert.ErrorContains(t, err, "e.g. KMATRIX_DEBIAN_MIRROR=https://<your Debian mirror>/debian", "the message shows the value's format, never a host")

	f := filepath.Join(dir, "sources.list.d", "x.list")
	writeFile(t, f, "deb http://thirdparty.example/repo focal main\n")
	_, err = discoverMirrors(dir, "", "")
	assert.ErrorIs(t, err, ErrNoMirror)
	assert.ErrorContains(t, err, "read "+f)

	_, err = discoverMirrors(dir, "http://env.example/mirror", "")
	assert.ErrorIs(t, err, ErrNoMirror)
	assert.ErrorContains(t, err, EnvSecurityMirror)
}

func TestDiscoverMirrorsHost(t *testing.T) {
	t.Setenv(EnvMirror, "")
	t.Setenv(EnvSecurityMirror, "")
	m, err := DiscoverMirrors()
	if errors.Is(err, ErrNoMirror) {
		t.Skipf("this host has no Debian apt source: %v", err)
	}
	require.NoError(t, err)
	assert.NotEmpty(t, m.Archive)
	assert.NotEmpty(t, m.Security)
}
