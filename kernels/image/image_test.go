package image

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/kernels/version"
)

// fakeArm64 is an arm64 Image header (booting.rst: magic "ARM\x64" at 0x38)
// followed by a linux_banner, as init/version.c prints it.
func fakeArm64() []byte {
	b := make([]byte, 0x40)
	binary.LittleEndian.PutUint32(b[0x38:], version.Arm64Magic)
	b = append(b, "\x00Linux version %s (%s)\n\x00"...)
	b = append(b, "Linux version 6.1.0-57-cloud-arm64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP Debian 6.1.192-3 (2026-11-20)\n\x00"...)
	return b
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// zboot wraps payload in an EFI zboot header (zboot-header.S): "MZ",
// "zimg", payload offset and size, the compression's name at 24.
func zboot(payload []byte, comp string) []byte {
	b := make([]byte, 0x200)
	copy(b, "MZ")
	copy(b[4:], "zimg")
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(payload)))
	copy(b[24:], comp)
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40) // the PE header, machine arm64
	copy(b[0x40:], "PE\x00\x00\x64\xaa")
	return append(b, payload...)
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	want := "6.1.0-57-cloud-arm64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP Debian 6.1.192-3 (2026-11-20)"
	for name, body := range map[string][]byte{
		"raw":        fakeArm64(),
		"gzip":       gz(fakeArm64()),
		"zboot-gzip": zboot(gz(fakeArm64()), "gzip"),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			require.NoError(t, os.WriteFile(p, body, 0o644))
			arch, err := Arch(p)
			require.NoError(t, err)
			assert.Equal(t, ARM64, arch)
			info, err := Read(p)
			require.NoError(t, err)
			assert.Equal(t, Info{Arch: ARM64, Banner: want}, info)
		})
	}
	t.Run("not a kernel", func(t *testing.T) {
		p := filepath.Join(dir, "text")
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte("hello "), 200), 0o644))
		_, err := Read(p)
		assert.ErrorIs(t, err, ErrNotKernel)
		assert.ErrorContains(t, err, "no HdrS boot-protocol magic at 0x202 (bzImage)")
	})
	t.Run("gzip of something else", func(t *testing.T) {
		p := filepath.Join(dir, "gz")
		require.NoError(t, os.WriteFile(p, gz(bytes.Repeat([]byte("x"), 4096)), 0o644))
		_, err := Arch(p)
		assert.ErrorIs(t, err, ErrNotKernel)
	})
	t.Run("zboot lzo", func(t *testing.T) {
		p := filepath.Join(dir, "lzo")
		require.NoError(t, os.WriteFile(p, zboot([]byte("x"), "lzo"), 0o644))
		arch, err := Arch(p)
		require.NoError(t, err, "the PE header says arm64")
		assert.Equal(t, ARM64, arch)
		_, err = Read(p)
		assert.ErrorContains(t, err, `compressed with "lzo"`)
	})
}
