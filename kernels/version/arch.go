package version

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// The architectures, named as Debian does.
const (
	AMD64 = "amd64"
	ARM64 = "arm64"
)

// Arm64Magic is "ARM\x64", little-endian, at offset 0x38 of an arm64 Image
// header (Documentation/arch/arm64/booting.rst).
const Arm64Magic = 0x644d5241

// IsArm64Image reports whether b starts with an arm64 Image header.
func IsArm64Image(b []byte) bool {
	return len(b) >= 0x40 && binary.LittleEndian.Uint32(b[0x38:]) == Arm64Magic
}

// IsZboot reports whether b starts with an EFI zboot header
// (CONFIG_EFI_ZBOOT, drivers/firmware/efi/libstub/zboot-header.S): "MZ",
// then "zimg".
func IsZboot(b []byte) bool {
	return len(b) >= 32 && bytes.HasPrefix(b, []byte("MZ")) && bytes.Equal(b[4:8], []byte("zimg"))
}

// Arch says which architecture the kernel image at path is for, from its
// first bytes: an x86 bzImage is amd64; an arm64 Image, raw (as Debian's
// signed arm64 kernels are) or gzip-compressed (Image.gz), is arm64, and
// so is an EFI zboot image whose PE header says arm64 (machine 0xaa64).
// It uses only the standard library, so that vmtest can call it.
func Arch(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	n, _ := io.ReadFull(f, hdr)
	hdr = hdr[:n]
	switch {
	case len(hdr) >= 0x206 && bytes.Equal(hdr[0x202:0x206], []byte("HdrS")):
		return AMD64, nil
	case IsArm64Image(hdr):
		return ARM64, nil
	case IsZboot(hdr) && len(hdr) >= 0x40:
		pe := int64(binary.LittleEndian.Uint32(hdr[0x3c:]))
		var m [6]byte
		if _, err := f.ReadAt(m[:], pe); err == nil && bytes.Equal(m[:4], []byte("PE\x00\x00")) && binary.LittleEndian.Uint16(m[4:]) == 0xaa64 {
			return ARM64, nil
		}
		return "", fmt.Errorf("%s: %w: an EFI zboot image, but not of an arm64 kernel", path, ErrNotKernel)
	case bytes.HasPrefix(hdr, []byte{0x1f, 0x8b}):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", fmt.Errorf("%s: %w: gzip: %v", path, ErrNotKernel, err)
		}
		head := make([]byte, 0x40)
		if _, err := io.ReadFull(zr, head); err != nil || !IsArm64Image(head) {
			return "", fmt.Errorf("%s: %w: gzip-compressed, but not an arm64 Image", path, ErrNotKernel)
		}
		return ARM64, nil
	}
	return "", fmt.Errorf("%s: %w: no HdrS boot-protocol magic at 0x202 (bzImage), no ARM\\x64 magic at 0x38 (arm64 Image), neither gzip nor EFI zboot", path, ErrNotKernel)
}
