package guest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLSMBootArg(t *testing.T) {
	// Debian 5.10's list (no bpf), 6.1's (bpf last), a kernel without BPF LSM.
	assert.Equal(t, "lsm=lockdown,yama,apparmor,bpf",
		LSMBootArg(map[string]string{"CONFIG_BPF_LSM": "y", "CONFIG_LSM": "lockdown,yama,apparmor"}))
	assert.Equal(t, "", LSMBootArg(map[string]string{"CONFIG_BPF_LSM": "y", "CONFIG_LSM": "landlock,lockdown,bpf"}))
	assert.Equal(t, "", LSMBootArg(map[string]string{"CONFIG_LSM": "lockdown,yama"}))
}
