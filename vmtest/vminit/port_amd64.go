package main

import "github.com/kmatrix/kmatrix/vmtest/internal/wire"

// eventPort is the event device of an amd64 guest.
const eventPort = wire.EventPort
