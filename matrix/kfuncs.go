package matrix

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/vmtest"
)

// kfuncFiles returns what the guest needs to load the modules that provide
// the kfuncs the object calls on kernel k (nf_conntrack for
// bpf_xdp_ct_lookup): the kernel's kfunc index (kernels.KfuncIndex, which
// also tells the guest that a kfunc not in it is in no module of the
// kernel) and the provider modules with those they depend on. Nothing for
// an object that calls no kfunc, or a kernel without an index (a local
// kernel).
func kfuncFiles(object string, k *kernels.Kernel) ([]vmtest.File, error) {
	if k.KfuncIndex == "" {
		return nil, nil
	}
	names := objectKfuncs(object)
	if len(names) == 0 {
		return nil, nil
	}
	ix, err := kernels.ReadKfuncIndex(k.KfuncIndex)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: the kfunc index of its cache entry: %w (run `kmatrix cache verify`)", k.Name, err)
	}
	files := []vmtest.File{{Host: k.KfuncIndex, Guest: guestModuleDir + "/" + kernels.KfuncIndexFile}}
	mods, _ := ix.Providers(names)
	for _, m := range mods {
		files = append(files, vmtest.File{Host: m.Path, Guest: guestModuleDir + "/" + filepath.Base(m.Path)})
	}
	return files, nil
}

// objectKfuncs returns the kfuncs the object's programs call, sorted; none
// for an object cilium/ebpf cannot read (the guest says what is wrong with
// it, in its words).
func objectKfuncs(object string) []string {
	spec, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		return nil
	}
	var names []string
	for _, p := range spec.Programs {
		for _, ins := range p.Instructions {
			if ins.IsKfuncCall() && ins.Reference() != "" && !slices.Contains(names, ins.Reference()) {
				names = append(names, ins.Reference())
			}
		}
	}
	slices.Sort(names)
	return names
}
