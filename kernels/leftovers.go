package kernels

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Leftovers: a process killed with SIGKILL cannot clean up, so whatever it
// was writing stays behind (a downloads/*.part file, a kmatrix-run-* temp
// dir). Each such thing is held under a flock by its owner for its whole
// life; the kernel drops the lock when the owner dies, however it dies. So
// a lock that can be taken without waiting means the owner is gone and
// RemoveLeftovers may delete it.

// RunDirPrefix names the per-run temporary directories (OwnedTempDir).
const RunDirPrefix = "kmatrix-run-"

// ownerFile is the lock inside an OwnedTempDir.
const ownerFile = ".owner.lock"

// legacyAge is how old an unlocked run dir without an owner lock (made by
// a kmatrix from before the locks) must be before it counts as abandoned.
const legacyAge = 24 * time.Hour

// partFile is a download being written, under its owner's flock.
type partFile struct{ *os.File }

func createPart(dir, prefix string) (*partFile, error) {
	for range 5 {
		f, err := os.CreateTemp(dir, prefix+".*.part")
		if err != nil {
			return nil, err
		}
		// A cleaner may take the new file's lock (or delete it) between
		// CreateTemp and Flock: then this file is not ours, make another.
		if tryLock(f) && samePath(f) {
			return &partFile{f}, nil
		}
		f.Close()
	}
	return nil, errors.New("could not create a locked partial file")
}

func (p *partFile) truncate() error {
	if err := p.Truncate(0); err != nil {
		return err
	}
	_, err := p.Seek(0, io.SeekStart)
	return err
}

// remove deletes the file, then drops the lock (closing it).
func (p *partFile) remove() {
	os.Remove(p.Name())
	p.Close()
}

func tryLock(f *os.File) bool {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err == nil
		}
	}
}

// samePath: f is still the file at its name.
func samePath(f *os.File) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(f.Name())
	return err == nil && os.SameFile(a, b)
}

// OwnedTempDir makes a temporary directory named prefix+random under the
// system temporary directory, held under a flock until release, which
// also removes it. If the process dies first, RemoveLeftovers removes it.
func OwnedTempDir(prefix string) (dir string, release func() error, err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ownerFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil && !tryLock(f) {
		f.Close()
		err = errors.New("cannot lock it")
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("temporary directory %s: %w", dir, err)
	}
	return dir, func() error {
		err := os.RemoveAll(dir)
		f.Close()
		return err
	}, nil
}

// RemoveLeftovers deletes what killed kmatrix processes left behind: the
// downloads/*.part files of cacheDir and the kmatrix-run-* directories of
// the system temporary directory whose owners are gone. Live owners' files
// are untouched. It returns what it removed, and logs each to log (when
// not nil). Every fetch and every run calls it.
func RemoveLeftovers(cacheDir string, log io.Writer) []string {
	var removed []string
	parts, _ := filepath.Glob(filepath.Join(cacheDir, "downloads", "*.part"))
	for _, p := range parts {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if tryLock(f) && samePath(f) {
			if os.Remove(p) == nil {
				removed = append(removed, p)
			}
		}
		f.Close()
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), RunDirPrefix+"*"))
	for _, d := range dirs {
		if abandoned(d) && os.RemoveAll(d) == nil {
			removed = append(removed, d)
		}
	}
	if log != nil {
		for _, r := range removed {
			fmt.Fprintf(log, "kmatrix: removed %s, left by a kmatrix process that is gone\n", r)
		}
	}
	return removed
}

func abandoned(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, ownerFile), os.O_RDWR, 0)
	if err != nil {
		// No lock: made by an older kmatrix, or its owner died between
		// MkdirTemp and the lock. Only an old one is surely abandoned.
		return errors.Is(err, os.ErrNotExist) && time.Since(fi.ModTime()) > legacyAge
	}
	defer f.Close()
	// Keeping the lock while deleting stops a second cleaner from racing.
	return tryLock(f)
}
