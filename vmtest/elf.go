package vmtest

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// executableFiles lists what the guest needs to run the host executable
// host as guest: the file itself and, for a dynamic ELF, its interpreter
// and every shared library it needs (transitively), each placed where the
// guest's dynamic loader will look: the directory it was found in on the
// host. The guest has no ld.so.cache, but glibc's built-in search path
// covers the multiarch and plain lib directories.
// For an arm64 guest the executable must be a static aarch64 one: an x86
// host has no arm64 libraries to copy.
func executableFiles(host, guest, arch string) ([]File, error) {
	files := []File{{Host: host, Guest: guest, Mode: 0o755}}
	f, err := elf.Open(host)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) {
			// Not ELF (a script, say): copy it as it is; if its
			// interpreter is missing in the guest, the exec error says so.
			return files, nil
		}
		return nil, err
	}
	defer f.Close()
	want, guestName := elf.EM_X86_64, "x86_64"
	if arch == archARM64 {
		want, guestName = elf.EM_AARCH64, "arm64 (aarch64)"
	}
	if f.Machine != want {
		return nil, fmt.Errorf("%s is built for %s; the guest is %s", host, f.Machine, guestName)
	}
	interp, err := elfInterp(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, err)
	}
	if interp == "" {
		return files, nil // static
	}
	if arch == archARM64 {
		return nil, fmt.Errorf("%s is a dynamic arm64 executable (interpreter %s): vmtest copies only static ones into arm64 guests; build it static (Go: CGO_ENABLED=0)", host, interp)
	}
	files = append(files, File{Host: interp, Guest: interp, Mode: 0o755})

	r := libResolver{searchDirs: librarySearchDirs()}
	seen := map[string]bool{}
	type item struct {
		f      *elf.File
		origin string // the host directory of the object, for $ORIGIN
		gorig  string // the same in the guest
		name   string
	}
	queue := []item{{f, filepath.Dir(host), filepath.Dir(guest), host}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		needed, err := it.f.ImportedLibraries()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.name, err)
		}
		dirs := r.objectDirs(it.f, it.origin)
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			found, lf, err := r.find(lib, dirs, it.f.Class)
			if err != nil {
				return nil, fmt.Errorf("%s needs %s: %w", it.name, lib, err)
			}
			gpath := found
			if rel, err := filepath.Rel(it.origin, found); err == nil && !strings.HasPrefix(rel, "..") && it.origin != it.gorig {
				gpath = filepath.Join(it.gorig, rel) // found through $ORIGIN: keep it next to the binary
			}
			files = append(files, File{Host: found, Guest: gpath, Mode: 0o755})
			queue = append(queue, item{lf, filepath.Dir(found), filepath.Dir(gpath), found})
		}
		if it.f != f {
			it.f.Close()
		}
	}
	return files, nil
}

func elfInterp(f *elf.File) (string, error) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			return "", fmt.Errorf("read PT_INTERP: %w", err)
		}
		return strings.TrimRight(string(b), "\x00"), nil
	}
	return "", nil
}

type libResolver struct{ searchDirs []string }

// objectDirs is where the loader looks for f's libraries: DT_RPATH (when
// there is no DT_RUNPATH), DT_RUNPATH, then the system directories.
func (r libResolver) objectDirs(f *elf.File, origin string) []string {
	var dirs []string
	runpath, _ := f.DynString(elf.DT_RUNPATH)
	rpath, _ := f.DynString(elf.DT_RPATH)
	if len(runpath) == 0 {
		runpath = rpath
	}
	for _, rp := range runpath {
		for _, d := range strings.Split(rp, ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
			if d != "" {
				dirs = append(dirs, d)
			}
		}
	}
	return append(dirs, r.searchDirs...)
}

// find returns the first lib in dirs that is an ELF of the wanted class
// (skipping, e.g., an i386 library of the same name).
func (r libResolver) find(lib string, dirs []string, class elf.Class) (string, *elf.File, error) {
	for _, d := range dirs {
		p := filepath.Join(d, lib)
		lf, err := elf.Open(p)
		if err != nil {
			continue
		}
		if lf.Class != class || lf.Machine != elf.EM_X86_64 {
			lf.Close()
			continue
		}
		return p, lf, nil
	}
	return "", nil, fmt.Errorf("not found in %s", strings.Join(dirs, ":"))
}

// librarySearchDirs is the host's /etc/ld.so.conf directories followed by
// glibc's defaults for x86_64.
func librarySearchDirs() []string {
	dirs := readLdSoConf("/etc/ld.so.conf", 0)
	dirs = append(dirs, "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")
	seen := map[string]bool{}
	out := dirs[:0]
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func readLdSoConf(path string, depth int) []string {
	f, err := os.Open(path)
	if err != nil || depth > 4 {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "include "); ok {
			matches, _ := filepath.Glob(strings.TrimSpace(rest))
			for _, m := range matches {
				dirs = append(dirs, readLdSoConf(m, depth+1)...)
			}
			continue
		}
		if strings.HasPrefix(line, "/") {
			dirs = append(dirs, line)
		}
	}
	return dirs
}
