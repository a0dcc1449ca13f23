package main

import "github.com/kmatrix/kmatrix/vmtest/internal/wire"

// eventPort is the event device of an arm64 guest: the PCI 16550.
const eventPort = wire.EventPortArm64
