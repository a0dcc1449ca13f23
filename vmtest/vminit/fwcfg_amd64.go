package main

import (
	"fmt"
	"math/bits"
	"runtime"
	"syscall"
)

// fw_cfg's I/O ports on x86 (QEMU's docs/specs/fw_cfg.rst).
const (
	fwCfgPortSelector = 0x510
	fwCfgPortData     = 0x511
	fwCfgPortDMA      = 0x514 // high half at 0x514, low half at 0x518 (starts the transfer)
)

func outl(port uint16, val uint32)
func outw(port uint16, val uint16)
func inb(port uint16) uint8

// fwCfgPorts reaches fw_cfg through port I/O; the calling thread holds
// ioperm for its ports.
type fwCfgPorts struct{}

// openFWCfgDevice locks the goroutine to its thread (ioperm is per
// thread) and gets the ports.
func openFWCfgDevice() (fwCfgDevice, error) {
	runtime.LockOSThread()
	if _, _, errno := syscall.Syscall(syscall.SYS_IOPERM, fwCfgPortSelector, 12, 1); errno != 0 {
		return nil, fmt.Errorf("fw_cfg: ioperm: %w", errno)
	}
	return fwCfgPorts{}, nil
}

func (fwCfgPorts) selectItem(sel uint16) { outw(fwCfgPortSelector, sel) }

func (fwCfgPorts) read4() [4]byte {
	var b [4]byte
	for i := range b {
		b[i] = inb(fwCfgPortData)
	}
	return b
}

func (fwCfgPorts) startDMA(desc uint64) {
	outl(fwCfgPortDMA, bits.ReverseBytes32(uint32(desc>>32)))
	outl(fwCfgPortDMA+4, bits.ReverseBytes32(uint32(desc)))
}
