package main

import (
	"errors"
	"io"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// eventPort is the event device of an arm64 guest: the PCI 16550.
const eventPort = wire.EventPortArm64

// errNoFWCfg: on arm64 QEMU's fw_cfg is memory-mapped (virt board,
// 0x09020000), not at x86 I/O ports, and its sysfs driver is a module in
// Debian's arm64 kernels; the host does not snapshot arm64 guests (see
// vmtest/snapshot.go), so nothing asks an arm64 init for a run file.
var errNoFWCfg = errors.New("fw_cfg: not read on arm64: arm64 guests are not restored from snapshots")

type fwCfg struct{}

func newFWCfg() (*fwCfg, error)               { return nil, errNoFWCfg }
func (*fwCfg) open(string) (io.Reader, error) { return nil, errNoFWCfg }
