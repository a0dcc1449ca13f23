package matrix

import (
	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix/guest"
)

// lsmArgs is the kernel command line that enables BPF LSM on k when its
// built-in LSM list lacks it (guest.LSMBootArg), so lsm/ programs attach
// wherever the kernel has CONFIG_BPF_LSM=y. An unreadable config adds
// nothing: lsm/ programs then fail to attach, saying so.
func lsmArgs(k *kernels.Kernel) []string {
	if k.Config == "" {
		return nil
	}
	cfg, err := kernels.ReadConfig(k.Config)
	if err != nil {
		return nil
	}
	if a := guest.LSMBootArg(cfg); a != "" {
		return []string{a}
	}
	return nil
}
