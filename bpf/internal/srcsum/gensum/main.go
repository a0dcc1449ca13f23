// Command gensum writes generated.sha256 in the current directory (package
// bpf's, when run by `go generate ./bpf`): the sums of the BPF sources and of
// the objects just compiled from them, and the toolchain that compiled them.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"

	"github.com/kmatrix/kmatrix/bpf/internal/srcsum"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gensum:", err)
		os.Exit(1)
	}
}

func run() error {
	s, err := srcsum.Compute(os.DirFS("."))
	if err != nil {
		return err
	}
	s.Toolchain = append(s.Toolchain, "clang "+clangVersion(), "libbpf "+libbpfVersion())
	return os.WriteFile(srcsum.FileName, s.Format(), 0o644)
}

// clangVersion is the first line of `$BPF2GO_CC --version`, the compiler
// bpf2go used (it defaults to clang, as here).
func clangVersion() string {
	cc := os.Getenv("BPF2GO_CC")
	if cc == "" {
		cc = "clang"
	}
	out, err := exec.Command(strings.Fields(cc)[0], "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

// libbpfVersion reads LIBBPF_MAJOR/MINOR_VERSION from the libbpf-dev header
// the C sources include.
func libbpfVersion() string {
	b, err := os.ReadFile("/usr/include/bpf/libbpf_version.h")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	v := map[string]string{}
	for _, m := range regexp.MustCompile(`#define LIBBPF_(MAJOR|MINOR)_VERSION (\d+)`).FindAllStringSubmatch(string(b), -1) {
		v[m[1]] = m[2]
	}
	return v["MAJOR"] + "." + v["MINOR"]
}
