package execchild

import _ "embed"

// binary is the child for the arch this package is built for: the guest
// tests that exec it run on a guest of that arch.
//
//go:embed kmatrix-child-arm64
var binary []byte

// file is binary's name in this directory.
const file = "kmatrix-child-arm64"
