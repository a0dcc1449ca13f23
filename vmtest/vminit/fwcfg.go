package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// QEMU's fw_cfg device, read from user space: the Debian kernels build
// their fw_cfg driver as a module (5.10 to 7.2), and a restored guest must
// read its run without loading anything. Its registers are x86 I/O ports
// (fwcfg_amd64.go) or, on arm64's virt board, memory-mapped
// (fwcfg_arm64.go); the rest is the same. The DMA interface needs
// guest-physical addresses, which /proc/self/pagemap gives PID 1
// (CAP_SYS_ADMIN). Byte-wise reads of the data register would cost a VM
// exit per byte; DMA moves a page run per exit. See QEMU's
// docs/specs/fw_cfg.rst.
const (
	fwCfgSignature = 0x00
	fwCfgID        = 0x01
	fwCfgFileDir   = 0x19

	dmaCtlError  = 0x01
	dmaCtlRead   = 0x02
	dmaCtlSelect = 0x08

	fwCfgBounce = 2 << 20 // one huge page when the kernel gives one: one DMA per refill
	pageSize    = 4096
)

// fwCfgDevice is the arch's way to the device's registers.
type fwCfgDevice interface {
	// selectItem selects an item; read4 reads the next 4 bytes of it
	// through the data register.
	selectItem(sel uint16)
	read4() [4]byte
	// startDMA writes the guest-physical address of a DMA descriptor to
	// the DMA register, which runs the transfer.
	startDMA(desc uint64)
}

type physRun struct {
	off, n int
	phys   uint64
}

type fwCfg struct {
	dev      fwCfgDevice
	desc     []byte // one locked page: the FWCfgDmaAccess
	descPhys uint64
	buf      []byte // locked bounce buffer
	runs     []physRun
}

// newFWCfg sets up reading fw_cfg: access to its registers, the DMA
// descriptor and the bounce buffer, locked, and their physical addresses.
// The calling goroutine must do all the reading (on amd64 it stays locked
// to its OS thread: ioperm is per thread). A parked guest does this before
// it is saved: a 2 MiB huge page zeroed and 513 pagemap lookups, under
// TCG, are paid once for the snapshot instead of by every restore
// (physical addresses do not move: the restored guest's memory is the
// saved one; on arm64 the registers' mapping is saved with it).
func newFWCfg() (*fwCfg, error) {
	dev, err := openFWCfgDevice()
	if err != nil {
		return nil, err
	}
	dev.selectItem(fwCfgSignature)
	if sig := dev.read4(); string(sig[:]) != "QEMU" {
		return nil, fmt.Errorf("fw_cfg: no QEMU fw_cfg device (signature %q)", sig[:])
	}
	dev.selectItem(fwCfgID)
	if id := dev.read4(); id[0]&2 == 0 {
		return nil, errors.New("fw_cfg: this QEMU has no fw_cfg DMA")
	}
	f := &fwCfg{dev: dev}
	if f.desc, err = lockedMem(pageSize); err != nil {
		return nil, err
	}
	if f.buf, err = hugeLockedMem(fwCfgBounce); err != nil {
		return nil, err
	}
	// Compaction may move even locked pages unless told not to (Linux
	// 4.1): a page moved between the pagemap lookup and a DMA would take
	// the data elsewhere.
	os.WriteFile("/proc/sys/vm/compact_unevictable_allowed", []byte("0"), 0)
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil, fmt.Errorf("fw_cfg: %w", err)
	}
	defer pm.Close()
	descRuns, err := physRuns(pm, f.desc)
	if err != nil {
		return nil, err
	}
	f.descPhys = descRuns[0].phys
	if f.runs, err = physRuns(pm, f.buf); err != nil {
		return nil, err
	}
	return f, nil
}

// open returns a reader of the fw_cfg file name.
func (f *fwCfg) open(name string) (io.Reader, error) {
	// The file directory: a big-endian count, then 64-byte entries.
	b, err := f.read(fwCfgFileDir, 4)
	if err != nil {
		return nil, err
	}
	count := int(binary.BigEndian.Uint32(b))
	if count*64 > len(f.buf) {
		return nil, fmt.Errorf("fw_cfg: %d files in the directory: too many", count)
	}
	if b, err = f.read(-1, count*64); err != nil {
		return nil, err
	}
	for i := 0; i < count; i++ {
		e := b[i*64 : (i+1)*64]
		if strings.TrimRight(string(e[8:]), "\x00") == name {
			return &fwCfgReader{f: f, sel: int(binary.BigEndian.Uint16(e[4:])), left: int64(binary.BigEndian.Uint32(e[0:]))}, nil
		}
	}
	return nil, fmt.Errorf("fw_cfg: no file %s: the host gave this guest no run", name)
}

func lockedMem(n int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_POPULATE|syscall.MAP_LOCKED)
	if err != nil {
		return nil, fmt.Errorf("fw_cfg: mmap %d bytes: %w", n, err)
	}
	return b, nil
}

// hugeLockedMem returns n bytes (a multiple of 2 MiB) of locked memory
// aligned to 2 MiB, so that the kernel can back them with huge pages:
// physically contiguous, so that one DMA transfer fills them.
func hugeLockedMem(n int) ([]byte, error) {
	const huge = 2 << 20
	b, err := syscall.Mmap(-1, 0, n+huge, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("fw_cfg: mmap %d bytes: %w", n+huge, err)
	}
	off := int((huge - uintptr(unsafe.Pointer(&b[0]))%huge) % huge)
	b = b[off : off+n]
	syscall.Madvise(b, 14) // MADV_HUGEPAGE
	if err := syscall.Mlock(b); err != nil {
		return nil, fmt.Errorf("fw_cfg: mlock: %w", err)
	}
	return b, nil
}

// physRuns maps b's pages to physical addresses, merging neighbours.
func physRuns(pm *os.File, b []byte) ([]physRun, error) {
	base := uintptr(unsafe.Pointer(&b[0]))
	var runs []physRun
	var e [8]byte
	for off := 0; off < len(b); off += pageSize {
		if _, err := pm.ReadAt(e[:], int64((base+uintptr(off))/pageSize*8)); err != nil {
			return nil, fmt.Errorf("fw_cfg: pagemap: %w", err)
		}
		v := binary.LittleEndian.Uint64(e[:])
		pfn := v & (1<<55 - 1)
		if v>>63 == 0 || pfn == 0 {
			return nil, errors.New("fw_cfg: pagemap shows no physical address (not present, or no CAP_SYS_ADMIN)")
		}
		phys := pfn * pageSize
		if n := len(runs); n > 0 && runs[n-1].phys+uint64(runs[n-1].n) == phys {
			runs[n-1].n += pageSize
			continue
		}
		runs = append(runs, physRun{off: off, n: pageSize, phys: phys})
	}
	return runs, nil
}

// dma runs one DMA transfer; QEMU completes it before the register write
// that starts it returns.
func (f *fwCfg) dma(control uint32, n int, phys uint64) error {
	binary.BigEndian.PutUint32(f.desc[0:], control)
	binary.BigEndian.PutUint32(f.desc[4:], uint32(n))
	binary.BigEndian.PutUint64(f.desc[8:], phys)
	f.dev.startDMA(f.descPhys)
	ctl := bits.ReverseBytes32(atomic.LoadUint32((*uint32)(unsafe.Pointer(&f.desc[0]))))
	if ctl&dmaCtlError != 0 {
		return errors.New("fw_cfg: DMA transfer failed")
	}
	return nil
}

// read reads the next n bytes (n ≤ the bounce buffer) of the selected
// item into the bounce buffer, first selecting sel if it is not -1.
func (f *fwCfg) read(sel, n int) ([]byte, error) {
	done := 0
	for _, r := range f.runs {
		if done >= n {
			break
		}
		l := min(r.n, n-done)
		ctl := uint32(dmaCtlRead)
		if sel >= 0 {
			ctl |= dmaCtlSelect | uint32(sel)<<16
			sel = -1
		}
		if err := f.dma(ctl, l, r.phys); err != nil {
			return nil, err
		}
		done += l
	}
	return f.buf[:n], nil
}

type fwCfgReader struct {
	f       *fwCfg
	sel     int
	left    int64
	pending []byte
}

func (r *fwCfgReader) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		n := int(min(r.left, int64(len(r.f.buf))))
		b, err := r.f.read(r.sel, n)
		if err != nil {
			return 0, err
		}
		r.sel, r.left, r.pending = -1, r.left-int64(n), b
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}
