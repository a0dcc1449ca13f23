package kernels

import (
	"bytes"
	"compress/bzip2"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf/btf"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"

	"github.com/kmatrix/kmatrix/kernels/image"
)

// LoadBTF returns the kernel's own BTF (vmlinux types), as a CO-RE loader
// needs it to relocate a program for this kernel. The raw BTF is extracted
// from the vmlinuz once and kept next to it (Kernel.BTFPath); when that
// directory is not writable it is extracted on every call.
func (k *Kernel) LoadBTF() (*btf.Spec, error) {
	if k.BTFPath != "" {
		if spec, err := btf.LoadSpec(k.BTFPath); err == nil {
			return spec, nil
		}
	}
	if !k.BTF {
		return nil, fmt.Errorf("kernel %s: %w: its config lacks CONFIG_DEBUG_INFO_BTF=y (BTF needs 5.2 or newer built with it)", k.Name, ErrNoBTF)
	}
	raw, err := ExtractBTF(k.Vmlinuz)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("kernel %s: BTF from %s: %w", k.Name, k.Vmlinuz, err)
	}
	path := k.Vmlinuz + ".btf"
	if WriteFileAtomic(path, raw, 0o644) == nil {
		k.BTFPath = path
	}
	return spec, nil
}

// ExtractBTF returns the raw .BTF section of the vmlinux inside a bzImage:
// it decompresses the payload (gzip, xz, bzip2, LZ4 legacy frames as Debian
// uses up to 6.1, ZSTD as it uses since 6.12) and reads the ELF section.
func ExtractBTF(vmlinuz string) ([]byte, error) {
	vmlinux, err := decompressVmlinux(vmlinuz)
	if err != nil {
		return nil, err
	}
	if ef, err := elf.NewFile(bytes.NewReader(vmlinux)); err == nil {
		sec := ef.Section(".BTF")
		if sec == nil {
			return nil, fmt.Errorf("%s: %w: its vmlinux has no .BTF section", vmlinuz, ErrNoBTF)
		}
		return sec.Data()
	}
	// Not ELF (some arches ship a raw image): look for the BTF header magic.
	if raw := scanBTF(vmlinux); raw != nil {
		return raw, nil
	}
	return nil, fmt.Errorf("%s: %w: the decompressed image is neither ELF nor holds a BTF header", vmlinuz, ErrNoBTF)
}

// scanBTF finds a little-endian BTF blob: magic 0xeB9F, version 1, a
// 24-byte header, and type and string sections that fit.
func scanBTF(b []byte) []byte {
	magic := []byte{0x9f, 0xeb, 0x01}
	for off := 0; ; {
		i := bytes.Index(b[off:], magic)
		if i < 0 {
			return nil
		}
		p := off + i
		off = p + 1
		if p+24 > len(b) || binary.LittleEndian.Uint32(b[p+4:]) != 24 {
			continue
		}
		le := binary.LittleEndian
		typeOff, typeLen := le.Uint32(b[p+8:]), le.Uint32(b[p+12:])
		strOff, strLen := le.Uint32(b[p+16:]), le.Uint32(b[p+20:])
		end := uint64(24) + max(uint64(typeOff)+uint64(typeLen), uint64(strOff)+uint64(strLen))
		if uint64(p)+end <= uint64(len(b)) && typeLen > 0 && strLen > 0 {
			return b[p : p+int(end)]
		}
	}
}

// decompressVmlinux returns the uncompressed kernel inside a bzImage, or
// the uncompressed arm64 Image (a raw image, not ELF: ExtractBTF finds its
// BTF by the header magic).
func decompressVmlinux(path string) ([]byte, error) {
	arch, err := image.Arch(path)
	if err != nil {
		return nil, err
	}
	if arch == image.ARM64 {
		return image.Arm64Image(path)
	}
	img, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(img) < 0x250 || !bytes.Equal(img[0x202:0x206], []byte("HdrS")) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotKernel)
	}
	// Boot protocol 2.08+ (Linux 2.6.26) records where the compressed
	// payload sits in the protected-mode part.
	setupSects := int(img[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	pm := (setupSects + 1) * 512
	off := pm + int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24c:]))
	if off <= pm || n < 8 || off+n > len(img) {
		return nil, fmt.Errorf("%s: %w: payload offset %#x length %#x out of range (boot protocol older than 2.08?)", path, ErrNotKernel, off, n)
	}
	payload := img[off : off+n]
	// The kernel build appends the uncompressed size (le32) to every payload.
	size := int(binary.LittleEndian.Uint32(payload[len(payload)-4:]))
	stream := payload[:len(payload)-4]
	var r io.Reader
	switch {
	case bytes.HasPrefix(stream, []byte{0x1f, 0x8b}):
		zr, err := kgzip.NewReader(bytes.NewReader(stream))
		if err != nil {
			return nil, fmt.Errorf("%s: gzip payload: %w", path, err)
		}
		zr.Multistream(false)
		r = zr
	case bytes.HasPrefix(stream, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(bytes.NewReader(stream))
		if err != nil {
			return nil, fmt.Errorf("%s: xz payload: %w", path, err)
		}
		r = xr
	case bytes.HasPrefix(stream, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(bytes.NewReader(stream), zstd.WithDecoderMaxWindow(1<<31), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%s: zstd payload: %w", path, err)
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(stream, []byte{0x02, 0x21, 0x4c, 0x18}): // LZ4 legacy frame
		r = lz4.NewReader(bytes.NewReader(stream))
	case bytes.HasPrefix(stream, []byte("BZh")):
		r = bzip2.NewReader(bytes.NewReader(stream))
	default:
		return nil, fmt.Errorf("%s: unsupported payload compression (magic % x): want gzip, xz, zstd, lz4 or bzip2", path, stream[:min(6, len(stream))])
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := io.Copy(buf, r); err != nil && !(errors.Is(err, io.ErrUnexpectedEOF) && buf.Len() == size) {
		return nil, fmt.Errorf("%s: decompress payload: %w", path, err)
	}
	if buf.Len() != size {
		return nil, fmt.Errorf("%s: payload decompressed to %d bytes, its trailer says %d", path, buf.Len(), size)
	}
	return buf.Bytes(), nil
}
