package kmod

import (
	"embed"
	"io/fs"
	"os"
)

// ModuleName is the name the kernel knows the module by (lsmod, delete_module).
const ModuleName = "kmatrix"

// DevicePath is where devtmpfs creates the module's character device.
const DevicePath = "/dev/kmatrix"

//go:embed module/Kbuild module/kmatrix.c
var source embed.FS

// Source is the module's source tree (Kbuild and C), rooted at its directory,
// so that a kmatrix binary can build the module without a checkout.
var Source fs.FS = mustSub(source, "module")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// WriteSource writes the module's source tree into dir (created if
// missing), ready for kmod/build as its source directory.
func WriteSource(dir string) error {
	return os.CopyFS(dir, Source)
}

// Environment of the guest tests (guest_test.go): the guest paths of the
// module built for the running kernel, and optionally of one built for
// another kernel (to prove that loading it fails with the vermagic line).
const (
	EnvKo        = "KMATRIX_KO"
	EnvKoForeign = "KMATRIX_KO_FOREIGN"
)
