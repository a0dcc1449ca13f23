package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/kmod"
)

// Kernel modules of the guest's kernel that kmatrix ships for the programs
// that need them (kernels.GuestModules: sch_ingress and cls_bpf for a
// classifier on a kernel without tcx, binfmt_misc for tracing a module's
// function). They are loaded on demand, never at start: a program that does
// not need them finds the kernel as it booted.

// loadModule loads the module name (as /sys/module names it: "cls_bpf")
// from the module directory, unless it is loaded already, after the
// modules the kfunc index says it depends on (nf_conntrack needs
// nf_defrag_ipv4, nf_defrag_ipv6 and libcrc32c). Failing to is kmatrix's
// limit, an infra-error: the program asked for nothing unusual.
func (e *env) loadModule(name string) error {
	if _, err := os.Stat("/sys/module/" + name); err == nil {
		return nil
	}
	if e.moduleDir == "" {
		return &infraError{fmt.Errorf("this needs the kernel module %s, and kmatrix has no modules for this kernel in the guest (a local kernel, or an image whose modules come in a package kmatrix does not fetch)", name)}
	}
	ix, err := readKfuncIndex(e.moduleDir)
	if err != nil {
		return &infraError{err}
	}
	if m := ix.module(name); m != nil {
		for _, d := range m.Depends {
			if err := e.loadModule(d); err != nil {
				return &infraError{fmt.Errorf("loading %s, which the kernel module %s depends on: %w", d, name, err)}
			}
		}
	}
	path, err := findModule(e.moduleDir, name)
	if err != nil {
		return &infraError{err}
	}
	// The kernel says why a module does not load (an unknown symbol, a
	// version magic) in its log, not in the errno.
	klog, _ := kmod.OpenKernelLog(true)
	if klog != nil {
		defer klog.Close()
	}
	if err := finitModule(path); err != nil {
		if klog != nil {
			if lines, _ := klog.Read(); len(lines) > 0 {
				err = fmt.Errorf("%w (kernel log: %s)", err, strings.Join(lastLines(lines, 5), "; "))
			}
		}
		return &infraError{fmt.Errorf("loading the kernel module %s (%s), which this needs: %w", name, filepath.Base(path), err)}
	}
	return nil
}

// loadModules loads every module of the module directory that is not
// loaded yet, for a tracing program whose target function is not in the
// kernel's own BTF: it may be in one of theirs.
func (e *env) loadModules(fn string) error {
	if e.moduleDir == "" {
		return &infraError{fmt.Errorf("%s is not a function of the kernel itself (its BTF has none of that name), so it may be a module's, and kmatrix has no modules of this kernel in the guest to look in (a local kernel, or an image whose modules come in a package kmatrix does not fetch, like sid's linux-modules-*)", fn)}
	}
	ents, err := os.ReadDir(e.moduleDir)
	if err != nil {
		return &infraError{fmt.Errorf("reading the guest's module directory: %w", err)}
	}
	var errs []error
	for _, ent := range ents {
		name, _, ok := strings.Cut(ent.Name(), ".ko")
		if !ok {
			continue
		}
		errs = append(errs, e.loadModule(strings.ReplaceAll(name, "-", "_")))
	}
	return errors.Join(errs...)
}

// findModule finds name.ko or a compressed name.ko.xz (Debian compresses
// modules from 6.12 on) in dir.
func findModule(dir, name string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(dir, name+".ko*"))
	if len(m) == 0 {
		return "", fmt.Errorf("this needs the kernel module %s, which is not among the modules kmatrix put in the guest (%s)", name, dir)
	}
	return m[0], nil
}

// finitModule loads a module file with finit_module(2); a compressed one
// is handed to the kernel to decompress (MODULE_INIT_COMPRESSED_FILE, Linux
// 5.17+, CONFIG_MODULE_DECOMPRESS, which the kernels with compressed
// modules have). A module that is loaded already is not an error.
func finitModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := 0
	if !strings.HasSuffix(path, ".ko") {
		flags = unix.MODULE_INIT_COMPRESSED_FILE
	}
	err = unix.FinitModule(int(f.Fd()), "", flags)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
