package kernels

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCompiler(t *testing.T) {
	for text, want := range map[string]Compiler{
		"gcc-10 (Debian 10.2.1-6) 10.2.1 20210110":          {Name: "gcc", Major: 10},
		"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0":          {Name: "gcc", Major: 12},
		"x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0": {Name: "gcc", Major: 14},
		"x86_64-linux-gnu-gcc-16 (Debian 16.2.0-4) 16.2.0":  {Name: "gcc", Major: 16},
		"Debian clang version 19.1.7 (3+b1)":                {Name: "clang", Major: 19},
	} {
		got, err := ParseCompiler(text)
		require.NoError(t, err, text)
		assert.Equal(t, want.Name, got.Name, text)
		assert.Equal(t, want.Major, got.Major, text)
	}
	_, err := ParseCompiler("tcc")
	assert.ErrorContains(t, err, `compiler "tcc"`)
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig(strings.NewReader("# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_CC_VERSION_TEXT=\"gcc-12 (x) 12.2.0\"\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"CONFIG_A": "y", "CONFIG_CC_VERSION_TEXT": "gcc-12 (x) 12.2.0"}, cfg)
}

func TestLoadLocalErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadLocal("mine", filepath.Join(dir, "nope"))
	assert.ErrorContains(t, err, "is not a directory")

	_, err = LoadLocal("mine", dir)
	assert.ErrorContains(t, err, "no file named vmlinuz")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("#!/bin/sh\necho not a kernel\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config"), []byte("CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian) 12.2.0\"\n"), 0o644))
	_, err = LoadLocal("mine", dir)
	assert.ErrorIs(t, err, ErrNotKernel)
}
