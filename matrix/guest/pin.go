package guest

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// needsPinning reports whether any map of the object is pinned by name
// (libbpf's LIBBPF_PIN_BY_NAME), which needs a PinPath on a bpffs.
func needsPinning(spec *ebpf.CollectionSpec) bool {
	for _, m := range spec.Maps {
		if m.Pinning == ebpf.PinByName {
			return true
		}
	}
	return false
}

// pinDir mounts a bpffs of the run's own, so that pins of one run never
// meet another's (or the user's) and every pin is gone afterwards: cleanup
// unmounts it, which removes them.
func pinDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "kmatrix-bpffs-")
	if err != nil {
		return "", nil, fmt.Errorf("making a directory for pinned maps: %w", err)
	}
	if err := unix.Mount("bpf", dir, "bpf", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("mounting a bpffs on %s: %w", dir, err)
	}
	return dir, func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		os.Remove(dir)
	}, nil
}
