// Package srcsum records which C sources the committed BPF objects were
// compiled from, so that a test can tell, without clang, that someone changed
// a source and forgot to regenerate (or edited a generated file by hand).
//
// `go generate ./bpf` ends by running gensum, which writes generated.sha256
// in package bpf's directory; package bpf's TestGeneratedObjectsUpToDate
// recomputes the sums from files embedded in the test binary and compares.
package srcsum

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// FileName is the name of the sums file, in package bpf's directory.
const FileName = "generated.sha256"

// SourcePatterns are the generator's inputs, as fs.Glob patterns relative to
// package bpf's directory. generate.go is among them because it holds the
// compiler flags. The libbpf headers (/usr/include/bpf) are not: they belong
// to the machine, not the repository, and a test on a machine without
// libbpf-dev could not read them. Their version is recorded instead.
var SourcePatterns = []string{"c/*.c", "c/*.h", "testdata/*.c", "generate.go"}

// Objects are the generator's outputs that tests and users load.
var Objects = []string{
	"tracer_bpfel.o",
	"testdata/broken_core_bpfel.o",
	"testdata/tcx_kprobe_x86_bpfel.o",
	"testdata/kconfig_bpfel.o",
	"testdata/prog_target_bpfel.o",
	"testdata/bash_uprobe_bpfel.o",
	"testdata/socket_hooks_bpfel.o",
	"testdata/conntrack_kfunc_bpfel.o",
}

// ErrStale is wrapped by Check's errors.
var ErrStale = errors.New("BPF objects are stale: run make generate")

// Sums is the content of generated.sha256.
type Sums struct {
	// Sources is one SHA-256 over every file matched by SourcePatterns
	// (names and contents, in name order).
	Sources string
	// Objects maps each of Objects to its SHA-256.
	Objects map[string]string
	// Toolchain records what compiled the objects ("clang Debian clang
	// version 14.0.6", "libbpf 1.1"). Informational: not compared.
	Toolchain []string
}

// Compute hashes the sources and objects found in fsys (rooted at package
// bpf's directory).
func Compute(fsys fs.FS) (Sums, error) {
	var names []string
	for _, p := range SourcePatterns {
		m, err := fs.Glob(fsys, p)
		if err != nil {
			return Sums{}, fmt.Errorf("srcsum: pattern %q: %w", p, err)
		}
		if len(m) == 0 {
			return Sums{}, fmt.Errorf("srcsum: no file matches %q: is this package bpf's directory?", p)
		}
		names = append(names, m...)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return Sums{}, fmt.Errorf("srcsum: %w", err)
		}
		// Name and length delimit each file, so moving bytes from one
		// file to the next changes the sum.
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	s := Sums{Sources: hex.EncodeToString(h.Sum(nil)), Objects: map[string]string{}}
	for _, o := range Objects {
		b, err := fs.ReadFile(fsys, o)
		if err != nil {
			return Sums{}, fmt.Errorf("srcsum: generated object missing: %w (run make generate)", err)
		}
		d := sha256.Sum256(b)
		s.Objects[o] = hex.EncodeToString(d[:])
	}
	return s, nil
}

// Format renders s as the content of generated.sha256.
func (s Sums) Format() []byte {
	var b bytes.Buffer
	b.WriteString("# Written by `go generate ./bpf` (bpf/internal/srcsum/gensum). Do not edit.\n")
	fmt.Fprintf(&b, "sources %s\n", s.Sources)
	for _, o := range Objects {
		fmt.Fprintf(&b, "object %s %s\n", s.Objects[o], o)
	}
	for _, t := range s.Toolchain {
		fmt.Fprintf(&b, "toolchain %s\n", t)
	}
	return b.Bytes()
}

// Parse reads the content of generated.sha256.
func Parse(r io.Reader) (Sums, error) {
	s := Sums{Objects: map[string]string{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "sources":
			s.Sources = rest
		case "object":
			sum, name, ok := strings.Cut(rest, " ")
			if !ok {
				return Sums{}, fmt.Errorf("%s line %d: %q: want \"object <sha256> <path>\"", FileName, n, line)
			}
			s.Objects[name] = sum
		case "toolchain":
			s.Toolchain = append(s.Toolchain, rest)
		default:
			return Sums{}, fmt.Errorf("%s line %d: %q: unknown key %q (want sources, object or toolchain)", FileName, n, line, key)
		}
	}
	if err := sc.Err(); err != nil {
		return Sums{}, fmt.Errorf("%s: %w", FileName, err)
	}
	if s.Sources == "" {
		return Sums{}, fmt.Errorf("%s: no \"sources\" line: run make generate", FileName)
	}
	return s, nil
}

// Check compares the recorded sums with the actual ones and returns an error
// wrapping ErrStale that names what differs.
func Check(recorded, actual Sums) error {
	var diffs []string
	if recorded.Sources != actual.Sources {
		diffs = append(diffs, fmt.Sprintf("the C sources or generate.go changed since the objects were built (sources %s, recorded %s)", short(actual.Sources), short(recorded.Sources)))
	}
	for _, o := range Objects {
		if recorded.Objects[o] != actual.Objects[o] {
			diffs = append(diffs, fmt.Sprintf("%s is not the object the generator wrote (sha256 %s, recorded %s)", o, short(actual.Objects[o]), short(recorded.Objects[o])))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w (go generate ./bpf): %s", ErrStale, strings.Join(diffs, "; "))
}

func short(sum string) string {
	if sum == "" {
		return "none"
	}
	return sum[:min(12, len(sum))]
}
