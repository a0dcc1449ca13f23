package kernels

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"
	"github.com/klauspost/compress/zstd"
	"github.com/xi2/xz"
	"golang.org/x/sync/errgroup"
)

// Kfuncs that live in modules. A BPF program may call a kernel function
// exported as a kfunc by a module (nf_conntrack's bpf_xdp_ct_lookup, Linux
// 5.18+; nf_nat's bpf_ct_set_nat_info, 6.0+; tcp_bbr's and tcp_dctcp's
// congestion control functions for struct_ops, 5.13+). The loader
// (cilium/ebpf) finds such a kfunc only in the BTF of a loaded module
// (/sys/kernel/btf/<module>), so kmatrix's guest must load the module
// first. When a kernel's entry is made, every module of its package is
// scanned once: the few that provide kfuncs the kernel's own BTF lacks are
// kept, with the modules they depend on, and recorded in kfuncs.json in the
// entry; the rest of the module tree is left out, as before.

// KfuncIndexFile is the name of the kfunc index in a kernels entry (and in
// the guest's module directory).
const KfuncIndexFile = "kfuncs.json"

// KfuncIndex says which modules of a kernel's packages provide kfuncs that
// the kernel's own BTF (vmlinux) lacks, and what they depend on. Every
// module of Packages was looked at: a kfunc in none of them is in no
// module of this kernel.
type KfuncIndex struct {
	// Packages are the packages whose modules were scanned
	// ("linux-image-6.1.0-57-cloud-amd64").
	Packages []string `json:"packages"`
	// Modules are the providers and their dependencies, sorted by name.
	Modules []KfuncModule `json:"modules"`
	// Unreadable are the module files (relative to the entry) that are not
	// modules kmatrix can read (not ELF, or a compression it does not
	// know), with why: they were not looked in, and are not kept.
	Unreadable []string `json:"unreadable,omitempty"`
	dir        string
}

// KfuncModule is one module of a KfuncIndex.
type KfuncModule struct {
	// Name is the module's name as /sys/module has it ("nf_conntrack").
	Name string `json:"name"`
	// File is the module file (.ko, .ko.xz, .ko.zst) relative to the
	// entry; Path is it made absolute by ReadKfuncIndex.
	File string `json:"file"`
	Path string `json:"-"`
	// Depends are the modules it needs loaded first (.modinfo depends=).
	Depends []string `json:"depends,omitempty"`
	// Kfuncs are the kfuncs it provides; none for a module that is here
	// only as another's dependency.
	Kfuncs []string `json:"kfuncs,omitempty"`
}

// ReadKfuncIndex reads a kfunc index file (Kernel.KfuncIndex).
func ReadKfuncIndex(path string) (*KfuncIndex, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ix KfuncIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("kfunc index %s: %w", path, err)
	}
	ix.dir = filepath.Dir(path)
	for i := range ix.Modules {
		ix.Modules[i].Path = filepath.Join(ix.dir, filepath.FromSlash(ix.Modules[i].File))
	}
	return &ix, nil
}

// Providers returns the modules to load for the kfuncs names, each after
// the modules it depends on, and the names no module provides (a kfunc of
// the kernel itself, or one this kernel does not have).
func (ix *KfuncIndex) Providers(names []string) (mods []KfuncModule, unknown []string) {
	byName := map[string]*KfuncModule{}
	byKfunc := map[string]string{}
	for i := range ix.Modules {
		m := &ix.Modules[i]
		byName[m.Name] = m
		for _, k := range m.Kfuncs {
			byKfunc[k] = m.Name
		}
	}
	seen := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		m := byName[name]
		if m == nil || seen[name] {
			return
		}
		seen[name] = true
		for _, d := range m.Depends {
			add(d)
		}
		mods = append(mods, *m)
	}
	for _, n := range names {
		if p, ok := byKfunc[n]; ok {
			add(p)
		} else if !slices.Contains(unknown, n) {
			unknown = append(unknown, n)
		}
	}
	return mods, unknown
}

// moduleInfo is what the scan reads from one module file.
type moduleInfo struct {
	name, file string
	depends    []string
	btfIDs     []string // names of __BTF_ID__func__ symbols: kfunc candidates
	data       []byte   // the decompressed ELF, kept for candidates only
	unreadable string   // why the file is not a module kmatrix can read
}

// errNotModule is wrapped by readModuleInfo's errors for a file that is
// not a module it can read (as opposed to one it could not read from disk).
var errNotModule = errors.New("not a kernel module kmatrix can read")

// indexKfuncs scans every module under root's lib/modules/<release>/kernel
// and returns the index of those that provide kfuncs the base BTF (the
// kernel's own, nil when it has none) lacks, with their dependencies.
// keep reports the module files (relative to root) the index needs.
func indexKfuncs(root, release string, base *btf.Spec, pkgs []string) (*KfuncIndex, map[string]bool, error) {
	ix := &KfuncIndex{Packages: pkgs, Modules: []KfuncModule{}}
	keep := map[string]bool{}
	byName := map[string]*moduleInfo{}
	var candidates []*moduleInfo
	var files []string
	for _, lib := range []string{"lib", "usr/lib"} {
		tree := filepath.Join(root, lib, "modules", release, "kernel")
		err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == tree {
				return fs.SkipDir
			}
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".ko") {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return nil, nil, err
		}
	}
	// Reading a module is mostly decompressing it (xz, from 6.12 on): a
	// few seconds for the thousand modules of a cloud kernel, spread over
	// the cores.
	infos := make([]*moduleInfo, len(files))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, p := range files {
		g.Go(func() error {
			rel, _ := filepath.Rel(root, p)
			m, err := readModuleInfo(p)
			if errors.Is(err, errNotModule) {
				m = &moduleInfo{unreadable: fmt.Sprintf("root/%s: %v", filepath.ToSlash(rel), err)}
			} else if err != nil {
				return fmt.Errorf("module %s: %w", rel, err)
			}
			m.file = filepath.ToSlash(rel)
			if len(m.btfIDs) == 0 {
				m.data = nil
			}
			infos[i] = m
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for _, m := range infos {
		if m.unreadable != "" {
			ix.Unreadable = append(ix.Unreadable, m.unreadable)
			continue
		}
		byName[m.name] = m
		if len(m.btfIDs) > 0 {
			candidates = append(candidates, m)
		}
	}
	if base == nil {
		// Without the kernel's BTF there is no module BTF either, and no
		// kfunc at all.
		return ix, keep, nil
	}
	want := map[string]*KfuncModule{}
	var need func(m *moduleInfo)
	need = func(m *moduleInfo) {
		if want[m.name] != nil {
			return
		}
		want[m.name] = &KfuncModule{Name: m.name, File: "root/" + m.file, Depends: m.depends}
		keep[m.file] = true
		for _, d := range m.depends {
			if dm := byName[d]; dm != nil {
				need(dm)
			}
		}
	}
	for _, m := range candidates {
		kf, err := moduleKfuncs(m, base)
		if err != nil {
			return nil, nil, fmt.Errorf("module %s: %w", m.file, err)
		}
		m.data = nil
		if len(kf) == 0 {
			continue
		}
		need(m)
		want[m.name].Kfuncs = kf
	}
	for _, m := range want {
		ix.Modules = append(ix.Modules, *m)
	}
	sort.Slice(ix.Modules, func(i, j int) bool { return ix.Modules[i].Name < ix.Modules[j].Name })
	return ix, keep, nil
}

// moduleKfuncs returns the kfunc candidates of m that its own BTF (split
// over base) has as functions and base does not: what cilium/ebpf can
// resolve once the module is loaded. A module without BTF
// (CONFIG_DEBUG_INFO_BTF_MODULES, 5.11+) provides none.
func moduleKfuncs(m *moduleInfo, base *btf.Spec) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(m.data))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, nil
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, err
	}
	spec, err := btf.LoadSplitSpecFromReader(bytes.NewReader(raw), base)
	if err != nil {
		return nil, fmt.Errorf("its BTF: %w", err)
	}
	var out []string
	for _, name := range m.btfIDs {
		var fn *btf.Func
		if base.TypeByName(name, &fn) == nil {
			continue // the kernel's own function
		}
		if spec.TypeByName(name, &fn) == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

// readModuleInfo reads a module's name, dependencies and kfunc candidates:
// the symbols __BTF_ID__func__<name>__<n> that BTF_ID(func, name) (the
// kfunc sets registered with register_btf_kfunc_id_set) puts in .BTF_ids.
func readModuleInfo(path string) (*moduleInfo, error) {
	data, err := readModuleFile(path)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: not ELF: %v", errNotModule, err)
	}
	base := filepath.Base(path)
	m := &moduleInfo{name: strings.ReplaceAll(base[:strings.Index(base, ".ko")], "-", "_"), data: data}
	if sec := f.Section(".modinfo"); sec != nil {
		info, err := sec.Data()
		if err != nil {
			return nil, err
		}
		for _, kv := range bytes.Split(info, []byte{0}) {
			k, v, _ := strings.Cut(string(kv), "=")
			switch k {
			case "name":
				m.name = v
			case "depends":
				for _, d := range strings.Split(v, ",") {
					if d != "" {
						m.depends = append(m.depends, strings.ReplaceAll(d, "-", "_"))
					}
				}
			}
		}
	}
	syms, err := f.Symbols()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return nil, err
	}
	for _, s := range syms {
		name, ok := strings.CutPrefix(s.Name, "__BTF_ID__func__")
		if !ok {
			continue
		}
		if i := strings.LastIndex(name, "__"); i > 0 {
			name = name[:i] // the __COUNTER__ suffix
		}
		if !slices.Contains(m.btfIDs, name) {
			m.btfIDs = append(m.btfIDs, name)
		}
	}
	return m, nil
}

// readModuleFile returns a module's ELF: Debian compresses modules with xz
// from 6.12 on (.ko.xz); .ko.zst is what other distributions use.
func readModuleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".ko"):
	case strings.HasSuffix(path, ".ko.xz"):
		// xi2/xz (XZ Embedded's decoder) decodes modules about 3.5 times
		// as fast as ulikunitz/xz: 0.6 s against 2.1 s for 19 MB of 6.12's.
		xr, err := xz.NewReader(f, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotModule, err)
		}
		r = xr
	case strings.HasSuffix(path, ".ko.zst"):
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotModule, err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, fmt.Errorf("%w: unknown compression", errNotModule)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxEntrySize))
	if err != nil {
		// A decoder's error: the file is damaged.
		return nil, fmt.Errorf("%w: %v", errNotModule, err)
	}
	return b, nil
}

// pruneModules removes the module files under root that neither keep nor
// GuestModules name, and the directories they leave empty.
func pruneModules(root string, keep map[string]bool) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if moduleTree.MatchString(rel + "/") {
				dirs = append(dirs, p)
			}
			return nil
		}
		if moduleTree.MatchString(rel) && !keptModule.MatchString(rel) && !keep[rel] {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return &writeError{err}
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		os.Remove(d) // only when empty
	}
	return nil
}

// keepModules indexes the kfunc providers among the modules unpacked in
// the entry being made (tmp), writes the index, and removes every module
// but those and GuestModules: a cloud kernel's module tree is tens of MB,
// the kept ones a few hundred KB.
func keepModules(tmp, release string, pkgs []Package) error {
	root := filepath.Join(tmp, "root")
	var base *btf.Spec
	if b := filepath.Join(tmp, "vmlinuz.btf"); fileExists(b) {
		var err error
		if base, err = btf.LoadSpec(b); err != nil {
			return fmt.Errorf("the kernel's BTF: %w", err)
		}
	}
	ix, keep, err := indexKfuncs(root, release, base, pkgNamesOf(pkgs))
	if err != nil {
		return fmt.Errorf("indexing the kfuncs of the kernel's modules: %w", err)
	}
	b, _ := json.MarshalIndent(ix, "", "  ")
	if err := WriteFileAtomic(filepath.Join(tmp, KfuncIndexFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return pruneModules(root, keep)
}

func pkgNamesOf(pkgs []Package) []string {
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	return names
}
