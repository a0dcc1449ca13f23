package version

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotKernel is wrapped by errors about files that are not kernel
// images: an x86 bzImage here, or an arm64 Image (see kernels/image).
var ErrNotKernel = errors.New("not a kernel image (an x86 bzImage or an arm64 Image)")

// BzImage reads the version string that the x86 boot protocol
// (2.00+) stores in the setup header, without decompressing the kernel:
// "6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ... Debian 6.1.192-2".
func BzImage(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", fmt.Errorf("%s: %w (file too short: %v)", path, ErrNotKernel, err)
	}
	// "HdrS" at 0x202 marks the setup header; kernel_version at 0x20e is an
	// offset relative to 0x200.
	if !bytes.Equal(hdr[0x202:0x206], []byte("HdrS")) {
		return "", fmt.Errorf("%s: %w (no HdrS boot-protocol magic at 0x202)", path, ErrNotKernel)
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	buf := make([]byte, 256)
	n, err := f.ReadAt(buf, off)
	if n == 0 {
		return "", fmt.Errorf("%s: %w (version string offset %#x: %v)", path, ErrNotKernel, off, err)
	}
	s, _, _ := bytes.Cut(buf[:n], []byte{0})
	if len(s) == 0 {
		return "", fmt.Errorf("%s: %w (empty version string)", path, ErrNotKernel)
	}
	return string(s), nil
}
