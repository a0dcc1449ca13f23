package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kmatrix/kmatrix/internal/cache"
)

// A cache entry's manifest (manifest.json, written before entry.json)
// records what the entry was made from (the SHA-256s of its packages) and
// every file in it: path, size and SHA-256, or a symlink's target. Every
// fetch checks an entry cheaply against it (each file there with its size,
// the vmlinuz hashed); `kmatrix cache verify` hashes everything. A damaged
// entry is made again from its packages. The manifest's own SHA-256 is the
// entry's identity (Kernel.HeadersDigest), which module build caches key on.

const manifestFile = "manifest.json"

type manifest struct {
	// Packages are the SHA-256s of the .debs the entry was unpacked from.
	Packages []string    `json:"packages"`
	Files    []entryFile `json:"files"`
}

type entryFile struct {
	Path   string `json:"path"` // relative to the entry, slash-separated
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Link   string `json:"link,omitempty"` // a symlink's target
}

// DamageError is a cache entry that does not match its manifest.
type DamageError struct {
	Entry string
	// File is the first file found wrong; What says how.
	File, What string
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("cache entry %s is damaged: %s %s", e.Entry, e.File, e.What)
}

// ErrDamaged: a cache entry does not match its manifest.
var ErrDamaged = errors.New("damaged cache entry")

func (e *DamageError) Is(target error) bool { return target == ErrDamaged }

// makeManifest walks dir (an entry being made, or a legacy one) and
// records every file but entry.json and the manifest itself.
func makeManifest(dir string, pkgs []Package) (*manifest, error) {
	m := &manifest{}
	for _, p := range pkgs {
		m.Packages = append(m.Packages, p.SHA256)
	}
	sort.Strings(m.Packages)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == entryMeta || rel == manifestFile || d.IsDir() {
			return nil
		}
		f := entryFile{Path: rel}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case d.Type().IsRegular():
			if f.Size, f.SHA256, err = hashFile(p); err != nil {
				return err
			}
		default:
			return nil
		}
		m.Files = append(m.Files, f)
		return nil
	})
	return m, err
}

// hashFile is a file's size and SHA-256.
func hashFile(p string) (int64, string, error) { return cache.FileSHA256(p) }

func writeManifest(dir string, m *manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, manifestFile), b, 0o644)
}

// readManifest returns dir's manifest and the entry's identity: the
// manifest's SHA-256 and when it was written. The time makes an entry made
// again (a repair, from the very same packages) a new identity, so that
// nothing computed from the damaged one is reused.
func readManifest(dir string) (*manifest, string, error) {
	p := filepath.Join(dir, manifestFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, "", err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, "", err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "", &DamageError{Entry: dir, File: manifestFile, What: "is not valid JSON: " + err.Error()}
	}
	sum := sha256.Sum256(b)
	return &m, fmt.Sprintf("%s@%d", hex.EncodeToString(sum[:]), fi.ModTime().UnixNano()), nil
}

// check compares dir with m: every file there, of its size (symlinks
// with their target); the files named in hash (and with full, all) must
// also have their SHA-256.
func (m *manifest) check(dir string, full bool, hash ...string) error {
	must := map[string]bool{}
	for _, h := range hash {
		must[h] = true
	}
	for _, f := range m.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		fi, err := os.Lstat(p)
		if err != nil {
			return &DamageError{Entry: dir, File: f.Path, What: "is missing"}
		}
		if f.Link != "" {
			if t, err := os.Readlink(p); err != nil || t != f.Link {
				return &DamageError{Entry: dir, File: f.Path, What: fmt.Sprintf("should link to %s", f.Link)}
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			return &DamageError{Entry: dir, File: f.Path, What: "is not a regular file"}
		}
		if fi.Size() != f.Size {
			return &DamageError{Entry: dir, File: f.Path, What: fmt.Sprintf("has %d bytes, the manifest says %d", fi.Size(), f.Size)}
		}
		if full || must[f.Path] {
			if _, sum, err := hashFile(p); err != nil || sum != f.SHA256 {
				return &DamageError{Entry: dir, File: f.Path, What: "does not have the SHA-256 it was unpacked with"}
			}
		}
	}
	return nil
}

// removeDamaged takes a damaged entry out of the cache, under its lock,
// so that the next fetch makes it again; it says what it did.
func removeDamaged(dir string) string {
	unlock, err := LockFile(dir + ".lock")
	if err != nil {
		return "could not remove it: " + err.Error()
	}
	defer unlock()
	aside := filepath.Join(filepath.Dir(dir), ".tmp-"+filepath.Base(dir)+"-damaged")
	os.RemoveAll(aside)
	if err := os.Rename(dir, aside); err != nil {
		return "could not remove it: " + err.Error()
	}
	os.RemoveAll(aside)
	return "removed it: the next fetch downloads it again"
}

// VerifyCache re-hashes every file of every kernel and headers entry in
// cacheDir against its manifest (`kmatrix cache verify`). It returns the
// entries checked and one error per damaged entry (or entry without a
// manifest). A damaged entry is removed, so the next fetch makes it again
// (a same-size change escapes the cheap check every fetch makes).
func VerifyCache(cacheDir string) (checked []string, problems []error) {
	for _, kind := range []string{"kernels", "headers"} {
		ents, _ := os.ReadDir(filepath.Join(cacheDir, kind))
		for _, e := range ents {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			dir := filepath.Join(cacheDir, kind, e.Name())
			if _, err := os.Stat(filepath.Join(dir, entryMeta)); err != nil {
				continue // not complete: not an entry
			}
			checked = append(checked, dir)
			m, _, err := readManifest(dir)
			if errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, fmt.Errorf("cache entry %s has no manifest (made by an older kmatrix): the next fetch records one", dir))
				continue
			}
			if err == nil {
				err = m.check(dir, true)
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("%w; %s", err, removeDamaged(dir)))
			}
		}
	}
	return checked, problems
}
