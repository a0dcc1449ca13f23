package vmtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/cavaliergopher/cpio"
	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/cache"
	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

// The initramfs of a run is two newc archives back to back, which the
// kernel unpacks one after the other: the base (the init and a skeleton
// root), the same for every run and cached on disk, and the run's own
// part (its spec, files and executables), written straight into a memfd
// that QEMU reads through /dev/fd (so a run leaves no temp file behind).
// Uncompressed: the kernel unpacks it faster than it would decompress it,
// and the copy is in memory anyway.

// archive writes a newc cpio archive, creating parent directories as needed.
type archive struct {
	w    *cpio.Writer
	dirs map[string]bool
}

func newArchive(w io.Writer) *archive {
	return &archive{w: cpio.NewWriter(w), dirs: map[string]bool{"/": true}}
}

func name(p string) string { return path.Clean(p)[1:] } // cpio names are relative

func (a *archive) dir(p string, mode os.FileMode) error {
	p = path.Clean(p)
	if a.dirs[p] {
		return nil
	}
	if err := a.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	a.dirs[p] = true
	return a.w.WriteHeader(&cpio.Header{Name: name(p), Mode: cpio.TypeDir | cpio.FileMode(mode.Perm()) | stickyBit(mode), Links: 2})
}

func stickyBit(m os.FileMode) cpio.FileMode {
	if m&os.ModeSticky != 0 {
		return cpio.ModeSticky
	}
	return 0
}

func (a *archive) file(p string, mode os.FileMode, size int64, r io.Reader) error {
	if err := a.dir(path.Dir(p), 0o755); err != nil {
		return err
	}
	if err := a.w.WriteHeader(&cpio.Header{Name: name(p), Mode: cpio.TypeReg | cpio.FileMode(mode.Perm()), Size: size}); err != nil {
		return err
	}
	n, err := io.Copy(a.w, r)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("%s: copied %d bytes, want %d (did it change while being copied?)", p, n, size)
	}
	return nil
}

func (a *archive) data(p string, mode os.FileMode, b []byte) error {
	return a.file(p, mode, int64(len(b)), bytesReader(b))
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (a *archive) hostFile(guest string, mode os.FileMode, host string) error {
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return a.file(guest, mode, fi.Size(), f)
}

func (a *archive) close() error { return a.w.Close() }

// skeleton is the base archive's root besides /init.
var skeleton = []struct {
	path string
	mode os.FileMode
	data string // "" for a directory
}{
	{"/dev", 0o755, ""},
	{"/proc", 0o555, ""},
	{"/sys", 0o555, ""},
	{"/tmp", 0o777 | os.ModeSticky, ""},
	{"/run", 0o755, ""},
	{"/root", 0o700, ""},
	{"/vmtest", 0o755, ""},
	// Enough for programs that look up users or localhost.
	{"/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\n"},
	{"/etc/group", 0o644, "root:x:0:\n"},
	{"/etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost\n"},
}

var baseMemo struct {
	sync.Mutex
	path map[string]string // by arch
}

// baseArchive returns the cached base archive of arch's guests, building
// it (and the init) on first use.
func baseArchive(ctx context.Context, arch string) (string, error) {
	baseMemo.Lock()
	defer baseMemo.Unlock()
	if p := baseMemo.path[arch]; p != "" {
		return p, nil
	}
	initPath, err := initBinary(ctx, arch)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(initPath)
	if err != nil {
		return "", err
	}
	dir, err := vmtestCacheDir()
	if err != nil {
		return "", err
	}
	// Named after the init it holds (its name carries the source hash; a
	// prebuilt init from $KMATRIX_VMTEST_INIT is told apart by size and time).
	target := filepath.Join(dir, fmt.Sprintf("base-%s-%d-%d.cpio", filepath.Base(initPath), fi.Size(), fi.ModTime().UnixNano()))
	unlock, err := cache.LockFile(target + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(target); err != nil {
		err := cache.WriteAtomic(target, 0o644, func(f *os.File) error {
			bw := bufio.NewWriterSize(f, 1<<20)
			a := newArchive(bw)
			for _, e := range skeleton {
				var err error
				if e.data == "" {
					err = a.dir(e.path, e.mode)
				} else {
					err = a.data(e.path, e.mode, []byte(e.data))
				}
				if err != nil {
					return err
				}
			}
			if err := a.hostFile("/init", 0o755, initPath); err != nil {
				return err
			}
			if err := a.close(); err != nil {
				return err
			}
			return bw.Flush()
		})
		if err != nil {
			return "", err
		}
	}
	if baseMemo.path == nil {
		baseMemo.path = map[string]string{}
	}
	baseMemo.path[arch] = target
	return target, nil
}

// writeInitramfs creates the run's initramfs in a memfd: the base archive
// followed by the run's own.
func writeInitramfs(ctx context.Context, p *plan, w *wire.Spec) (*os.File, error) {
	base, err := baseArchive(ctx, p.arch)
	if err != nil {
		return nil, err
	}
	fd, err := unix.MemfdCreate("vmtest-initramfs", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: memfd_create: %v", ErrInfra, err)
	}
	mf := os.NewFile(uintptr(fd), "vmtest-initramfs")
	if err := fillInitramfs(mf, base, p, w); err != nil {
		mf.Close()
		return nil, err
	}
	return mf, nil
}

func fillInitramfs(out *os.File, base string, p *plan, w *wire.Spec) error {
	bf, err := os.Open(base)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, bf)
	bf.Close()
	if err != nil {
		return fmt.Errorf("copy %s: %w", base, err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	a := newArchive(bw)
	// Directories of the base are not written again: the kernel applies a
	// repeated directory entry's mode, and /tmp would lose its sticky bit.
	for _, e := range skeleton {
		if e.data == "" {
			a.dirs[e.path] = true
		} else {
			a.dirs[path.Dir(e.path)] = true
		}
	}
	spec, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if err := a.data(wire.SpecPath, 0o644, spec); err != nil {
		return err
	}
	for _, f := range p.files {
		if f.Host != "" {
			err = a.hostFile(f.Guest, f.Mode, f.Host)
		} else {
			err = a.data(f.Guest, f.Mode, f.Data)
		}
		if err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
	}
	for _, d := range p.dirs {
		if err := a.dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := a.close(); err != nil {
		return err
	}
	return bw.Flush()
}
