// Package image reads what kmatrix needs from a bootable kernel image
// without booting it: its architecture, its version banner, and (for BTF)
// the uncompressed arm64 Image. An x86 vmlinuz is a bzImage, whose setup
// header names the version; an arm64 vmlinuz is the kernel's Image
// (Documentation/arch/arm64/booting.rst), as Debian ships it gzip-compressed
// (Image.gz), raw, or as an EFI zboot image (CONFIG_EFI_ZBOOT, 6.1+): its
// version is only in the linux_banner inside, so reading it decompresses
// the kernel. It is a package of its own, not part of kernels/version,
// because guest test binaries link that one and must stay small.
package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/kmatrix/kmatrix/kernels/version"
)

// ErrNotKernel is wrapped by errors about files that are neither an x86
// bzImage nor an arm64 Image.
var ErrNotKernel = version.ErrNotKernel

// The architectures, named as Debian does.
const (
	AMD64 = version.AMD64
	ARM64 = version.ARM64
)

// Arch says which architecture the kernel at path is for (version.Arch).
func Arch(path string) (string, error) { return version.Arch(path) }

func isArm64(b []byte) bool { return version.IsArm64Image(b) }

// payload returns a decompressing reader of a compressed arm64 Image
// (gzip, or an EFI zboot image's payload); ErrNotKernel when it is neither.
func payload(f *os.File, hdr []byte) (io.Reader, error) {
	switch {
	case bytes.HasPrefix(hdr, []byte{0x1f, 0x8b}):
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		zr, err := kgzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false)
		return zr, nil
	case version.IsZboot(hdr):
		// The EFI zboot header (drivers/firmware/efi/libstub/zboot-header.S):
		// payload offset and size at 8 and 12, the compression's name at 24.
		off, size := int64(binary.LittleEndian.Uint32(hdr[8:])), int64(binary.LittleEndian.Uint32(hdr[12:]))
		comp, _, _ := bytes.Cut(hdr[24:32], []byte{0})
		sr := io.NewSectionReader(f, off, size)
		switch string(comp) {
		case "gzip":
			zr, err := kgzip.NewReader(sr)
			if err != nil {
				return nil, fmt.Errorf("zboot gzip payload: %w", err)
			}
			zr.Multistream(false)
			return zr, nil
		case "zstd", "zstd22":
			zr, err := zstd.NewReader(sr, zstd.WithDecoderMaxWindow(1<<31), zstd.WithDecoderConcurrency(1))
			if err != nil {
				return nil, fmt.Errorf("zboot zstd payload: %w", err)
			}
			return zr.IOReadCloser(), nil
		case "xzkern", "xz":
			xr, err := xz.NewReader(sr)
			if err != nil {
				return nil, fmt.Errorf("zboot xz payload: %w", err)
			}
			return xr, nil
		default:
			return nil, fmt.Errorf("%w: an EFI zboot image compressed with %q: kmatrix reads gzip, zstd and xz", ErrNotKernel, comp)
		}
	}
	return nil, fmt.Errorf("%w: not a compressed arm64 Image (neither gzip nor EFI zboot)", ErrNotKernel)
}

// Arm64Image returns the uncompressed arm64 Image at path (which may be
// raw, gzip or EFI zboot).
func Arm64Image(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := make([]byte, 64)
	n, _ := io.ReadFull(f, hdr)
	if isArm64(hdr[:n]) {
		return os.ReadFile(path)
	}
	r, err := payload(f, hdr[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return nil, fmt.Errorf("%s: decompress: %w", path, err)
	}
	if !isArm64(buf.Bytes()) {
		return nil, fmt.Errorf("%s: %w: its payload is not an arm64 Image", path, ErrNotKernel)
	}
	return buf.Bytes(), nil
}

// Info is what Read found.
type Info struct {
	// Arch is AMD64 or ARM64.
	Arch string
	// Banner starts with the release: for a bzImage the setup header's
	// version string ("6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)
	// #1 SMP ... Debian 6.1.192-2"), for an arm64 Image its linux_banner
	// without "Linux version " ("6.1.0-57-cloud-arm64 (debian-kernel@...)
	// (gcc-12 ...) #1 SMP Debian 6.1.192-3 (...)").
	Banner string
}

// Read returns the arch and version banner of the kernel at path.
func Read(path string) (Info, error) {
	arch, err := Arch(path)
	if err != nil {
		return Info{}, err
	}
	if arch == AMD64 {
		b, err := version.BzImage(path)
		return Info{Arch: arch, Banner: b}, err
	}
	img, err := Arm64Image(path)
	if err != nil {
		return Info{}, err
	}
	b, err := Banner(img)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return Info{Arch: arch, Banner: b}, nil
}

// bannerRE is init/version.c's linux_banner; a '%' is the printf format
// of the same words elsewhere in the image.
var bannerRE = regexp.MustCompile(`Linux version ([^\s%]+ \([^\n%]*)\n`)

// Banner finds the linux_banner in an uncompressed kernel and returns it
// without the "Linux version " prefix and the newline.
func Banner(vmlinux []byte) (string, error) {
	m := bannerRE.FindSubmatch(vmlinux)
	if m == nil {
		return "", errors.New(`no "Linux version <release> (...)" banner in the kernel image`)
	}
	return string(m[1]), nil
}
