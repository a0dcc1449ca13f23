package matrix

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/kmatrix/kmatrix/vmtest"
)

// uprobeFiles are the binaries the object's uprobes name by absolute path
// in their sections (libbpf's "uretprobe//bin/bash:readline") that the
// host has, with their interpreter and libraries, to be put at the same
// path in the guest. A user's system has /bin/bash; kmatrix's guest has
// only what kmatrix puts in it, and without this the probe would fail to
// attach for a reason that is kmatrix's, not the object's. What the host
// lacks (or cannot read) is left out: the guest then says the binary is
// missing and how to ship one (--file).
func uprobeFiles(object, arch string, have []vmtest.File) []vmtest.File {
	spec, err := ebpf.LoadCollectionSpec(object)
	if err != nil {
		return nil // the guest reports an unusable object in its words
	}
	shipped := map[string]bool{}
	for _, f := range have {
		shipped[f.Guest] = true
	}
	var bins []string
	for _, p := range spec.Programs {
		kind, to, _ := strings.Cut(strings.TrimPrefix(p.SectionName, "?"), "/")
		switch kind {
		case "uprobe", "uretprobe", "uprobe.s", "uretprobe.s":
		default:
			continue
		}
		bin, _, ok := strings.Cut(to, ":")
		if !ok || !filepath.IsAbs(bin) || shipped[bin] || slices.Contains(bins, bin) {
			continue
		}
		bins = append(bins, bin)
	}
	slices.Sort(bins)
	var files []vmtest.File
	for _, bin := range bins {
		if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		fs, err := vmtest.ExecutableFilesFor(kernelArch(arch), bin, bin)
		if err != nil {
			continue // e.g. built for another architecture (an x86 host's /bin/bash for an arm64 guest): the guest says it is missing
		}
		files = append(files, fs...)
	}
	return files
}
