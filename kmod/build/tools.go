package build

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/kmatrix/kmatrix/kernels"
)

// A kernel's module build needs more than its gcc major. What else it runs
// depends on the kernel's config and on what its headers ship:
//
//   - pahole (Debian package dwarves), at least the version the kernel
//     was configured with (CONFIG_PAHOLE_VERSION), when
//     CONFIG_DEBUG_INFO_BTF_MODULES=y and the headers ship a vmlinux to
//     take the base BTF from. Debian's 6.1 headers ship none, so their
//     module builds skip BTF; the +deb12 6.12 headers in bookworm-backports
//     (and every later kernel here) ship one, so without pahole their
//     module link fails with "pahole: not found".
//
// Objtool, modpost and resolve_btfids come prebuilt with the headers.

// Tool is one program a kernel's module build runs, and how to get it.
type Tool struct {
	// Name is the command ("gcc-14", "pahole").
	Name string
	// Package is the Debian package that provides it ("gcc-14", "dwarves").
	Package string
	// MinVersion is the oldest version that works (pahole: "1.30"); "" for any.
	MinVersion string
	// Why says which kernel fact asks for it.
	Why string
}

func (t Tool) String() string {
	s := t.Name
	if t.MinVersion != "" {
		s += " ≥ " + t.MinVersion
	}
	return fmt.Sprintf("%s (package %s; %s)", s, t.Package, t.Why)
}

// Needs lists the tools a module build for k runs, read from its config
// and its headers tree (when fetched). For a kernel of another machine
// (arm64 on an x86 host) the compiler is Debian's cross compiler of the
// same gcc major, with its binutils.
func Needs(k *kernels.Kernel) []Tool {
	tg, err := TargetOf(k)
	if err != nil {
		tg, _ = hostTarget() // Module reports the unreadable config
	}
	tools := []Tool{{Name: tg.CC(k.Compiler.Major), Package: tg.CCPackage(k.Compiler.Major), Why: "the kernel was built with " + k.Compiler.String()}}
	if tg.Cross() {
		tools[0].Why += " for " + tg.Arch
		tools = append(tools, Tool{Name: tg.Triplet + "-ld", Package: tg.BinutilsPackage(), Why: "the cross compiler's assembler and linker for " + tg.Arch})
	}
	cfg, err := kernels.ReadConfig(k.Config)
	if err != nil || cfg["CONFIG_DEBUG_INFO_BTF_MODULES"] != "y" {
		return tools
	}
	if k.Headers != "" {
		if _, err := os.Stat(filepath.Join(k.Headers, "vmlinux")); err != nil {
			return tools // no base BTF: kbuild skips the modules' BTF
		}
	}
	t := Tool{Name: "pahole", Package: "dwarves", Why: "CONFIG_DEBUG_INFO_BTF_MODULES=y"}
	if v, err := strconv.Atoi(cfg["CONFIG_PAHOLE_VERSION"]); err == nil && v > 0 {
		t.MinVersion = fmt.Sprintf("%d.%02d", v/100, v%100)
	}
	return append(tools, t)
}

// HostMissing returns the tools of Needs(k) the host lacks (or has too
// old); a kernel builds on the host only when it is empty.
func HostMissing(k *kernels.Kernel) []Tool {
	var out []Tool
	for _, t := range Needs(k) {
		if !hostHas(t) {
			out = append(out, t)
		}
	}
	return out
}

// gccNameRE matches Debian's versioned gcc commands, native ("gcc-12")
// or cross ("aarch64-linux-gnu-gcc-16").
var gccNameRE = regexp.MustCompile(`^(?:[a-z0-9_]+-linux-gnu-)?gcc-(\d+)$`)

var (
	hostToolMu    sync.Mutex
	hostToolCache = map[string]bool{}
)

func hostHas(t Tool) bool {
	if m := gccNameRE.FindStringSubmatch(t.Name); m != nil {
		major, err := strconv.Atoi(m[1])
		return err == nil && hostHasGCC(t.Name, major)
	}
	key := t.Name + " " + t.MinVersion
	hostToolMu.Lock()
	defer hostToolMu.Unlock()
	if ok, done := hostToolCache[key]; done {
		return ok
	}
	ok := false
	if path, err := exec.LookPath(t.Name); err == nil {
		ok = t.MinVersion == ""
		if !ok {
			// pahole --version prints "v1.24".
			out, err := exec.Command(path, "--version").Output()
			ok = err == nil && versionAtLeast(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), t.MinVersion)
		}
	}
	hostToolCache[key] = ok
	return ok
}

// versionAtLeast compares dotted numeric versions ("1.24" vs "1.30").
func versionAtLeast(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i := range max(len(h), len(w)) {
		var a, b int
		if i < len(h) {
			a, _ = strconv.Atoi(h[i])
		}
		if i < len(w) {
			b, _ = strconv.Atoi(w[i])
		}
		if a != b {
			return a > b
		}
	}
	return true
}

func toolList(ts []Tool) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}

// missingToolRE finds the shell's, make's and gcc's words for a command
// that is not there: "/bin/sh: 1: pahole: not found", "make[2]: pahole: No
// such file or directory", "sh: pahole: command not found", "gcc-14: fatal
// error: cannot execute 'as': posix_spawnp: No such file or directory".
var missingToolRE = regexp.MustCompile(`(?m)^(?:(?:/bin/sh: \d+: |sh: |make(?:\[\d+\])?: |/bin/bash: (?:line \d+: )?)([A-Za-z0-9_.+-]+): (?:not found|No such file or directory|[Cc]ommand not found)|\S*gcc\S*: fatal error: cannot execute '([^']+)'.*)$`)

// unrunnableRE finds a program of the kernel's build that exists but
// cannot run here: a shared library the host or build root lacks
// ("scripts/mod/modpost: error while loading shared libraries: libelf.so.1:
// cannot open shared object file"), or a program for another machine
// ("scripts/basic/fixdep: cannot execute binary file: Exec format error").
var unrunnableRE = regexp.MustCompile(`(?m)^.*?(\S+): (?:error while loading shared libraries: (\S+): cannot open|cannot execute binary file: Exec format error)`)

// missingTool returns the first command a failed build could not run, if
// any (with the library it lacks, or that it is for another machine).
func missingTool(log string) string {
	if m := missingToolRE.FindStringSubmatch(log); m != nil {
		return m[1] + m[2]
	}
	if m := unrunnableRE.FindStringSubmatch(log); m != nil {
		if m[2] != "" {
			return m[1] + " (it needs " + m[2] + ")"
		}
		return m[1] + " (a program for another machine)"
	}
	return ""
}
