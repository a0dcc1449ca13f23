package wire

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// RunFile is the fw_cfg file that carries a restored guest's run: a
// RunHeader, then a tar stream of the run's files, /vmtest/spec.json first.
// fw_cfg, not a disk: the files must reach a guest restored from a snapshot,
// and QEMU 7.2 cannot migrate the one block device built into every default
// kernel (NVMe is "unmigratable"; virtio-blk is a module in 5.10 and 6.1).
// fw_cfg holds no guest state, so each restore's QEMU gets its own file.
const RunFile = "opt/kmatrix/run"

// RunHeaderSize is the size of the header before the tar stream.
const RunHeaderSize = 24

var runMagic = [8]byte{'K', 'M', 'X', 'R', 'U', 'N', '1', 0}

// RunHeader says how long the tar stream is, so that the guest tells a cut
// copy from a run, and its CRC-32C, for tools on the host (the guest does
// not check it: 0.2 s per 20 MB under TCG).
type RunHeader struct {
	Size  uint64
	CRC32 uint32
}

// Encode returns the header's bytes.
func (h RunHeader) Encode() []byte {
	b := make([]byte, RunHeaderSize)
	copy(b, runMagic[:])
	binary.LittleEndian.PutUint64(b[8:], h.Size)
	binary.LittleEndian.PutUint32(b[16:], h.CRC32)
	return b
}

// ReadRunHeader reads and checks a header.
func ReadRunHeader(r io.Reader) (RunHeader, error) {
	b := make([]byte, RunHeaderSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return RunHeader{}, fmt.Errorf("run file header: %w", err)
	}
	if [8]byte(b[:8]) != runMagic {
		return RunHeader{}, errors.New("run file header: bad magic")
	}
	return RunHeader{Size: binary.LittleEndian.Uint64(b[8:]), CRC32: binary.LittleEndian.Uint32(b[16:])}, nil
}

// CRC32 is the checksum of RunHeader.
func CRC32(b []byte, crc uint32) uint32 { return crc32.Update(crc, castagnoli, b) }

// RunWriter writes a run file: the tar stream after room for the header,
// then the header, once the stream's length and CRC are known.
type RunWriter struct {
	f  io.WriterAt
	cw *crcWriter
	tw *tar.Writer
}

// NewRunWriter starts a run file at offset 0 of f.
func NewRunWriter(f io.WriterAt) *RunWriter {
	cw := &crcWriter{w: io.NewOffsetWriter(f, RunHeaderSize)}
	return &RunWriter{f: f, cw: cw, tw: tar.NewWriter(cw)}
}

// File adds a regular file at the absolute guest path name.
func (w *RunWriter) File(name string, mode os.FileMode, size int64, r io.Reader) error {
	if err := w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name[1:], Mode: int64(mode.Perm()), Size: size, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(w.tw, r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%s: copied %d bytes, want %d (did it change while being copied?)", name, n, size)
	}
	return nil
}

// Dir adds a directory at the absolute guest path name.
func (w *RunWriter) Dir(name string, mode os.FileMode) error {
	return w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name[1:] + "/", Mode: int64(mode.Perm()), Format: tar.FormatPAX})
}

// Close ends the stream and writes the header.
func (w *RunWriter) Close() error {
	if err := w.tw.Close(); err != nil {
		return err
	}
	_, err := w.f.WriteAt(RunHeader{Size: uint64(w.cw.n), CRC32: w.cw.crc}.Encode(), 0)
	return err
}

type crcWriter struct {
	w   io.Writer
	n   int64
	crc uint32
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.crc = CRC32(p[:n], c.crc)
	return n, err
}
