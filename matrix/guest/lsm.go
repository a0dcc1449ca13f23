package guest

import (
	"slices"
	"strings"
)

// LSMBootArg returns the kernel command line argument that makes BPF LSM
// programs attachable on a kernel with this config (CONFIG_X → value):
// "lsm=" its own CONFIG_LSM list plus "bpf" when the kernel is built with
// CONFIG_BPF_LSM=y but its default list lacks bpf (Debian's 5.10: bpf joined
// the default list in later releases), else "" (nothing to add; or no BPF
// LSM at all, which the lsm/ programs' attach errors then say).
func LSMBootArg(config map[string]string) string {
	if config["CONFIG_BPF_LSM"] != "y" {
		return ""
	}
	var list []string
	for _, l := range strings.Split(config["CONFIG_LSM"], ",") {
		if l = strings.TrimSpace(l); l != "" {
			list = append(list, l)
		}
	}
	if slices.Contains(list, "bpf") {
		return ""
	}
	return "lsm=" + strings.Join(append(list, "bpf"), ",")
}
