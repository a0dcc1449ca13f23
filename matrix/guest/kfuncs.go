package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Kfuncs of modules. A program may call a kfunc that a module provides
// (nf_conntrack's bpf_xdp_ct_lookup, Linux 5.18+): the loader finds it
// only in the BTF of a loaded module, and a guest boots with no module
// loaded. The host ships the providers of the object's kfuncs and the
// modules they depend on, with the kernel's kfunc index (kfuncs.json,
// written when kmatrix cached the kernel: which modules of its package
// provide kfuncs the kernel's own BTF lacks, and what each depends on); the
// guest loads those the object needs before loading its programs.

// kfuncIndexFile is the index in the module directory (kernels.KfuncIndexFile).
const kfuncIndexFile = "kfuncs.json"

// kfuncIndex is the guest's reading of kernels.KfuncIndex (the guest does
// not link package kernels).
type kfuncIndex struct {
	Packages []string      `json:"packages"`
	Modules  []kfuncModule `json:"modules"`
}

type kfuncModule struct {
	Name    string   `json:"name"`
	Depends []string `json:"depends"`
	Kfuncs  []string `json:"kfuncs"`
}

// module returns the index's module name, or nil.
func (ix *kfuncIndex) module(name string) *kfuncModule {
	if ix == nil {
		return nil
	}
	for i := range ix.Modules {
		if ix.Modules[i].Name == name {
			return &ix.Modules[i]
		}
	}
	return nil
}

// provider returns the module that provides the kfunc name, or nil.
func (ix *kfuncIndex) provider(name string) *kfuncModule {
	if ix == nil {
		return nil
	}
	for i := range ix.Modules {
		if slices.Contains(ix.Modules[i].Kfuncs, name) {
			return &ix.Modules[i]
		}
	}
	return nil
}

var kfuncIndexes sync.Map // module directory → *kfuncIndex (nil: none)

// readKfuncIndex returns the kfunc index of the module directory dir, nil
// when there is none (a local kernel, or no module directory).
func readKfuncIndex(dir string) (*kfuncIndex, error) {
	if dir == "" {
		return nil, nil
	}
	if ix, ok := kfuncIndexes.Load(dir); ok {
		return ix.(*kfuncIndex), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, kfuncIndexFile))
	if errors.Is(err, os.ErrNotExist) {
		kfuncIndexes.Store(dir, (*kfuncIndex)(nil))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ix := &kfuncIndex{}
	if err := json.Unmarshal(b, ix); err != nil {
		return nil, fmt.Errorf("the kfunc index kmatrix put in the guest (%s): %w", filepath.Join(dir, kfuncIndexFile), err)
	}
	kfuncIndexes.Store(dir, ix)
	return ix, nil
}

// objectKfuncs returns the kfuncs each program of spec calls, those of
// the functions it calls included (read before dropCalledFunctions).
func objectKfuncs(spec *ebpf.CollectionSpec) map[string][]string {
	out := map[string][]string{}
	for name := range spec.Programs {
		seen := map[string]bool{}
		var walk func(p *ebpf.ProgramSpec)
		walk = func(p *ebpf.ProgramSpec) {
			if p == nil || seen[p.Name] {
				return
			}
			seen[p.Name] = true
			for _, ins := range p.Instructions {
				switch {
				case ins.IsKfuncCall() && ins.Reference() != "":
					if !slices.Contains(out[name], ins.Reference()) {
						out[name] = append(out[name], ins.Reference())
					}
				case ins.IsFunctionCall() && ins.Reference() != "":
					walk(spec.Programs[ins.Reference()])
				}
			}
		}
		walk(spec.Programs[name])
		slices.Sort(out[name])
	}
	return out
}

// kfuncState is what loading a program's kfunc providers found.
type kfuncState struct {
	err error // a provider that failed to load: kmatrix's infra-error
	// absent are kfuncs in neither the kernel's BTF nor the index (when
	// indexed); unindexed, those not in the kernel's BTF when kmatrix has
	// no index of the kernel's modules.
	absent, unindexed []string
	packages          []string
}

// loadKfuncModules loads the modules that provide the kfuncs progs call
// (one program, or a struct_ops map's) and the kernel's own BTF lacks,
// each after the modules it depends on (a module loaded for an earlier
// program stays loaded).
func (r *runner) loadKfuncModules(progs ...*ebpf.ProgramSpec) *kfuncState {
	s := &kfuncState{}
	r.kfunc = s
	var names []string
	for _, p := range progs {
		for _, n := range r.kfuncs[p.Name] {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(names) == 0 {
		return s
	}
	k, err := r.cache.Kernel()
	if err != nil {
		return s // the load says what is wrong with the kernel's BTF
	}
	ix, err := readKfuncIndex(r.env.moduleDir)
	if err != nil {
		s.err = &infraError{err}
		return s
	}
	if ix != nil {
		s.packages = ix.Packages
	}
	var errs []error
	tried := map[string]bool{}
	for _, name := range names {
		var fn *btf.Func
		if k.TypeByName(name, &fn) == nil {
			continue
		}
		m := ix.provider(name)
		switch {
		case ix == nil:
			s.unindexed = append(s.unindexed, name)
		case m == nil:
			s.absent = append(s.absent, name)
		case tried[m.Name]:
		default:
			tried[m.Name] = true
			if err := r.env.loadModule(m.Name); err != nil {
				errs = append(errs, fmt.Errorf("kfunc %s is in the module %s: %w", name, m.Name, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.err = &infraError{err}
	}
	return s
}

// explainKfunc rewrites the load error of a program that calls a kfunc
// the kernel does not have: the loader says only "not supported".
func (r *runner) explainKfunc(res *ProgramResult, err error) {
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return
	}
	s := r.kfunc
	if s == nil {
		return
	}
	for _, name := range s.absent {
		if strings.Contains(err.Error(), fmt.Sprintf("kfunc %q", name)) {
			res.Message = fmt.Sprintf("this kernel has no kfunc %s: neither its own BTF (vmlinux) nor the BTF of any module of its packages (%s) has a function of that name (%s)",
				name, strings.Join(s.packages, ", "), res.Message)
			return
		}
	}
	for _, name := range s.unindexed {
		if strings.Contains(err.Error(), fmt.Sprintf("kfunc %q", name)) {
			res.Outcome, res.Facts.Class = outcome.InfraError, ClassKmatrix
			res.Message = fmt.Sprintf("kfunc %s is not in the kernel's own BTF (vmlinux), and kmatrix has no index of this kernel's modules to find one that provides it (a local kernel): %s", name, res.Message)
			return
		}
	}
}
