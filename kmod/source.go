package kmod

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
// missing), ready to pass to Build as srcDir.
func WriteSource(dir string) error {
	return copyFS(dir, Source)
}

// copyFS copies the regular files and directories of src into dir.
func copyFS(dir string, src fs.FS) error {
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("module source %s: not a regular file or directory", p)
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

// Environment of the guest tests (guest_test.go): the guest paths of the
// module built for the running kernel, and optionally of one built for
// another kernel (to prove that loading it fails with the vermagic line).
const (
	EnvKo        = "KMATRIX_KO"
	EnvKoForeign = "KMATRIX_KO_FOREIGN"
)
