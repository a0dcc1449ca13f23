package build

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/kmod"
)

// Target is the machine a kernel runs on, as a module build for it sees
// it: Debian's name for the architecture, kbuild's ARCH, the GNU triplet
// that prefixes Debian's cross tools, and the ELF machine of the objects.
type Target struct {
	// Arch is Debian's architecture name ("amd64", "arm64").
	Arch string `json:"arch"`
	// Kbuild is kbuild's ARCH ("x86", "arm64").
	Kbuild string `json:"kbuild_arch"`
	// Triplet is the GNU triplet ("x86_64-linux-gnu", "aarch64-linux-gnu"):
	// Debian's cross compilers are <triplet>-gcc-N, in package gcc-N-<triplet>.
	Triplet string `json:"triplet"`
	// Machine is the e_machine of the kernel's (and its modules') ELF objects.
	Machine elf.Machine `json:"-"`
}

// targets are the architectures kmatrix builds modules for, by the config
// symbol only that architecture's kernels set.
var targets = []struct {
	config string
	t      Target
}{
	{"CONFIG_X86_64", Target{Arch: "amd64", Kbuild: "x86", Triplet: "x86_64-linux-gnu", Machine: elf.EM_X86_64}},
	{"CONFIG_ARM64", Target{Arch: "arm64", Kbuild: "arm64", Triplet: "aarch64-linux-gnu", Machine: elf.EM_AARCH64}},
}

// TargetOf reads the architecture of k from its config, the one fact every
// kernel (from the catalog or local) has: CONFIG_ARM64=y or CONFIG_X86_64=y.
func TargetOf(k *kernels.Kernel) (Target, error) {
	cfg, err := kernels.ReadConfig(k.Config)
	if err != nil {
		return Target{}, fmt.Errorf("%w: kernel %s: %w", ErrInput, k.Name, err)
	}
	for _, c := range targets {
		if cfg[c.config] == "y" {
			return c.t, nil
		}
	}
	return Target{}, fmt.Errorf("%w: kernel %s: its config %s sets neither CONFIG_X86_64 nor CONFIG_ARM64: kmatrix builds modules for amd64 and arm64 kernels only",
		ErrInput, k.Name, k.Config)
}

// hostTarget is the machine kmatrix runs on; Go's GOARCH names for these
// two are Debian's.
func hostTarget() (Target, bool) {
	for _, c := range targets {
		if c.t.Arch == runtime.GOARCH {
			return c.t, true
		}
	}
	return Target{}, false
}

// Cross reports whether a module for t is built with a cross compiler on
// this host.
func (t Target) Cross() bool {
	h, ok := hostTarget()
	return !ok || h.Arch != t.Arch
}

// CC is the compiler command for a kernel built with gcc-<major>: Debian's
// gcc-N on the kernel's own machine, its cross compiler <triplet>-gcc-N
// (package gcc-N-<triplet>) elsewhere.
func (t Target) CC(major int) string {
	if t.Cross() {
		return fmt.Sprintf("%s-gcc-%d", t.Triplet, major)
	}
	return fmt.Sprintf("gcc-%d", major)
}

// CCPackage is the Debian package that provides CC(major).
func (t Target) CCPackage(major int) string {
	if t.Cross() {
		return fmt.Sprintf("gcc-%d-%s", major, t.pkgTriplet())
	}
	return fmt.Sprintf("gcc-%d", major)
}

// BinutilsPackage is the Debian package of the cross binutils for t.
func (t Target) BinutilsPackage() string { return "binutils-" + t.pkgTriplet() }

// pkgTriplet is the triplet as Debian's package names spell it: they allow
// no underscore, so x86_64 is x86-64 there (gcc-12-x86-64-linux-gnu holds
// x86_64-linux-gnu-gcc-12).
func (t Target) pkgTriplet() string { return strings.ReplaceAll(t.Triplet, "_", "-") }

// makeArgs are the make variables of a cross build. Debian's headers set
// ARCH themselves and CC to $(CROSS_COMPILE)gcc-N (.kernelvariables); a
// kernel that is not Debian's would default to an unversioned gcc, so CC is
// named too, the exact compiler Needs asked for.
func (t Target) makeArgs(major int) []string {
	if !t.Cross() {
		return nil
	}
	return []string{"ARCH=" + t.Kbuild, "CROSS_COMPILE=" + t.Triplet + "-", "CC=" + t.CC(major)}
}

// elfMachine reads the e_machine of an ELF file.
func elfMachine(path string) (elf.Machine, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Machine, nil
}

// checkKbuildRunsHere makes sure the headers tree's kbuild programs
// (scripts/mod/modpost and the others of the linux-kbuild package) are
// built for this host: they run during every module build, and a tree
// unpacked with the kernel's own arch's linux-kbuild (aarch64 programs on
// an x86 host) would fail in make with "Exec format error", which is
// kmatrix's fault, not the module's.
func checkKbuildRunsHere(k *kernels.Kernel) error {
	host, ok := hostTarget()
	if !ok || k.Headers == "" {
		return nil
	}
	modpost := filepath.Join(k.Headers, "scripts", "mod", "modpost")
	if _, err := os.Stat(modpost); err != nil {
		return nil // not in every tree (5.x prebuilt it elsewhere); make says what is missing
	}
	m, err := elfMachine(modpost)
	if err != nil {
		return fmt.Errorf("module build for %s: the headers tree's %s: %w", k.Name, modpost, err)
	}
	if m != host.Machine {
		return fmt.Errorf("module build for %s: the headers tree's kbuild programs (%s) are built for %s, and this host is %s: "+
			"kbuild's programs run on the build machine, so the tree needs the %s build of its linux-kbuild package (kmatrix's headers fetch must unpack that one)",
			k.Name, modpost, m, host.Machine, host.Arch)
	}
	return nil
}

// headersMount splits k's headers tree for a cross build root: the host
// directory to mount (the tree's root, which holds usr/src/ with the
// flavour and -common trees and usr/lib/linux-kbuild-*/, the targets of
// the tree's relative scripts and tools symlinks) and the tree's path
// inside it. Trees laid out otherwise cannot be mounted whole.
func headersMount(k *kernels.Kernel) (root, inTree string, err error) {
	real, err := filepath.EvalSymlinks(k.Headers)
	if err != nil {
		return "", "", fmt.Errorf("%w: kernel %s: headers tree: %w", ErrInput, k.Name, err)
	}
	i := strings.LastIndex(real, "/usr/src/")
	if i <= 0 {
		return "", "", fmt.Errorf("%w: kernel %s: its headers tree %s is not laid out as <dir>/usr/src/linux-headers-<release> (with <dir>/usr/lib/linux-kbuild-*), "+
			"which a cross build mounts into its build root: unpack the headers packages into a directory of their own", ErrInput, k.Name, real)
	}
	return real[:i], real[i+1:], nil
}

// checkKo makes sure a built module is for k: an ELF object of k's
// machine whose vermagic starts with k's release.
func checkKo(ko string, k *kernels.Kernel, t Target) error {
	m, err := elfMachine(ko)
	if err != nil {
		return fmt.Errorf("built module: %w", err)
	}
	if m != t.Machine {
		return fmt.Errorf("built module %s is for %s, not %s (%s): the build used the wrong compiler", ko, m, t.Machine, t.Arch)
	}
	info, err := kmod.ModInfo(ko)
	if err != nil {
		return fmt.Errorf("built module: %w", err)
	}
	if v := info["vermagic"]; !strings.HasPrefix(v, k.Release+" ") {
		return fmt.Errorf("built module %s has vermagic %q, not for kernel %s: the headers tree is not this kernel's", ko, v, k.Release)
	}
	return nil
}
