package main

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// fwCfgMMIO reaches fw_cfg through its memory-mapped registers, as QEMU's
// arm virt board has them (docs/specs/fw_cfg.rst): data at 0, selector at
// 8 (16 bits, big-endian), DMA address at 16 (64 bits, big-endian; the
// write starts the transfer). They are mapped from /dev/mem: the device
// is not claimed by a driver (Debian's fw_cfg driver is a module), so
// CONFIG_IO_STRICT_DEVMEM lets PID 1 map it.
type fwCfgMMIO struct{ regs []byte }

// fwCfgNode is where the device tree lists the device and its registers.
const fwCfgNode = "/sys/firmware/devicetree/base/fw-cfg@*/reg"

func openFWCfgDevice() (fwCfgDevice, error) {
	m, _ := filepath.Glob(fwCfgNode)
	if len(m) != 1 {
		return nil, fmt.Errorf("fw_cfg: no device tree node %s (found %d)", fwCfgNode, len(m))
	}
	reg, err := os.ReadFile(m[0])
	if err != nil || len(reg) < 16 {
		return nil, fmt.Errorf("fw_cfg: %s: %d bytes, %v", m[0], len(reg), err)
	}
	base, size := binary.BigEndian.Uint64(reg), binary.BigEndian.Uint64(reg[8:])
	if size < 24 || base%pageSize != 0 {
		return nil, fmt.Errorf("fw_cfg: registers at %#x, %#x bytes: want a page-aligned block of 24 or more", base, size)
	}
	f, err := os.OpenFile("/dev/mem", os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return nil, fmt.Errorf("fw_cfg: %w", err)
	}
	defer f.Close()
	regs, err := syscall.Mmap(int(f.Fd()), int64(base), pageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("fw_cfg: mmap /dev/mem at %#x: %w", base, err)
	}
	return &fwCfgMMIO{regs: regs}, nil
}

// Each register access is one load or store of its width (atomics, so
// that the compiler neither merges nor drops them).
func (d *fwCfgMMIO) reg32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&d.regs[off])) }

func (d *fwCfgMMIO) selectItem(sel uint16) {
	// A 16-bit store: the data register is 8 bytes wide, the selector
	// the next 2; a 32-bit store at 8 would write 2 bytes past it.
	*(*uint16)(unsafe.Pointer(&d.regs[8])) = bits.ReverseBytes16(sel)
}

func (d *fwCfgMMIO) read4() [4]byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], atomic.LoadUint32(d.reg32(0))) // bytes in the item's order
	return b
}

func (d *fwCfgMMIO) startDMA(desc uint64) {
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&d.regs[16])), bits.ReverseBytes64(desc))
}
