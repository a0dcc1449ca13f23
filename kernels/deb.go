package kernels

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"pault.ag/go/debian/deb"
)

// Bounds of what one .deb may unpack to.
const (
	maxEntrySize = 1 << 30
	maxDebSize   = 4 << 30
)

// The kernel modules of an image package are tens of MB kmatrix never
// loads (its guests boot from an initramfs with the kernel's built-in
// drivers): a kernels entry keeps only GuestModules and the modules that
// provide kfuncs (kfuncs.go), under moduleTree. The rest of
// lib/modules/<release> (modules.builtin, and on sid 7.x the vmlinuz and
// config themselves) is kept.
var (
	moduleTree = regexp.MustCompile(`^(usr/)?lib/modules/[^/]+/kernel/`)
	keptModule = regexp.MustCompile(`^(usr/)?lib/modules/[^/]+/kernel/(` + strings.Join(GuestModules, "|") + `)\.ko(\.[a-z]+)?$`)
)

// GuestModules are the modules of an image package that the cache keeps
// (under kernel/ of lib/modules/<release>, as .ko or compressed .ko.xz), for
// the guest agent to load when a payload needs them. None of them depends on
// another module (modinfo depends= is empty in every default kernel).
//   - net/sched/sch_ingress and net/sched/cls_bpf: a classic tc classifier
//     ("tc", "classifier" sections) on a kernel without tcx (before 6.6, and
//     Debian's 5.10 and 6.1) is attached through a clsact qdisc and a cls_bpf
//     filter, both modules in Debian's kernels;
//   - fs/binfmt_misc: its load_misc_binary runs on every exec once loaded,
//     a function of a module that programs trace (fentry on a module's
//     function needs the module's BTF, CONFIG_DEBUG_INFO_BTF_MODULES, 5.11+).
var GuestModules = []string{"net/sched/sch_ingress", "net/sched/cls_bpf", "fs/binfmt_misc"}

// unpackDeb extracts the data archive of the .deb at debPath under root.
// Entries that are absolute or climb out of root, symlinks whose target
// resolves outside root, and hard links to outside are refused with
// ErrUnsafeArchive; absolute symlink targets (lib/modules/X/build →
// /usr/src/...) are rewritten to stay inside root, as if root were "/".
// All writes go through os.Root, which refuses to follow anything out of
// root even if a check here were wrong.
// Errors name the package file as display (its name in the archive),
// never the temporary file it was downloaded to.
func unpackDeb(debPath, display, root string, skip func(name string) bool) error {
	f, err := os.Open(debPath)
	if err != nil {
		return &writeError{err}
	}
	defer f.Close()
	return unpackDebFrom(f, display, root, skip)
}

func unpackDebFrom(in io.ReaderAt, display, root string, skip func(name string) bool) error {
	debPath := display
	d, err := deb.Load(in, display)
	if err != nil {
		return fmt.Errorf("%s: not a valid .deb: %w", filepath.Base(debPath), err)
	}
	defer d.Close()
	r, err := os.OpenRoot(root)
	if err != nil {
		return &writeError{err}
	}
	defer r.Close()
	bad := func(name, why string) error {
		return fmt.Errorf("%s: %w: %q %s", filepath.Base(debPath), ErrUnsafeArchive, name, why)
	}
	var total int64
	for {
		h, err := d.Data.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: data archive: %w", filepath.Base(debPath), err)
		}
		if strings.HasPrefix(h.Name, "/") {
			return bad(h.Name, "is an absolute path")
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if !filepath.IsLocal(name) {
			return bad(h.Name, "leaves the target directory")
		}
		if skip != nil && skip(name) {
			continue
		}
		// A few bytes of archive can declare gigabytes (a sparse entry, a
		// compression bomb); the largest file in a kernel package is tens
		// of MB. Found by FuzzUnpackDeb: a mutated header made one
		// unpack write gigabytes of zeros.
		if h.Size > maxEntrySize || h.Size < 0 {
			return bad(h.Name, fmt.Sprintf("declares %d bytes: kmatrix unpacks files of at most %d", h.Size, int64(maxEntrySize)))
		}
		if total += h.Size; total > maxDebSize {
			return bad(h.Name, fmt.Sprintf("brings the package past %d bytes unpacked", int64(maxDebSize)))
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := r.MkdirAll(name, 0o755); err != nil {
				return &writeError{err}
			}
		case tar.TypeReg:
			if err := r.MkdirAll(path.Dir(name), 0o755); err != nil {
				return &writeError{err}
			}
			f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode)&0o755|0o644)
			if err != nil {
				return &writeError{err}
			}
			_, err = io.Copy(errWriter{f}, d.Data)
			if cerr := f.Close(); err == nil && cerr != nil {
				err = &writeError{cerr}
			}
			if err != nil {
				if isWriteError(err) {
					return err
				}
				return fmt.Errorf("%s: %s: %w", filepath.Base(debPath), name, err)
			}
		case tar.TypeSymlink:
			target := h.Linkname
			if path.IsAbs(target) {
				rel, err := filepath.Rel(path.Dir("/"+name), path.Clean(target))
				if err != nil {
					return bad(h.Name, "links to "+target)
				}
				target = rel
			}
			if !filepath.IsLocal(path.Join(path.Dir(name), target)) {
				return bad(h.Name, "links to "+h.Linkname+", outside the package")
			}
			if err := r.MkdirAll(path.Dir(name), 0o755); err != nil {
				return &writeError{err}
			}
			r.Remove(name)
			if err := r.Symlink(target, name); err != nil {
				return &writeError{err}
			}
		case tar.TypeLink:
			old := path.Clean(strings.TrimPrefix(h.Linkname, "./"))
			if !filepath.IsLocal(old) {
				return bad(h.Name, "hard-links to "+h.Linkname+", outside the package")
			}
			if skip != nil && skip(old) {
				continue
			}
			r.Remove(name)
			if err := r.Link(old, name); err != nil {
				return &writeError{err}
			}
		default:
			// Devices and FIFOs have no place in a kernel package; skip them.
		}
	}
}
