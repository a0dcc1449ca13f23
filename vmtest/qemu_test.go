package vmtest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestQEMUCommandLine(t *testing.T) {
	args := qemuCommandLine(
		bareMachine{},
		accelerator{"tcg", archAMD64},
		resources{512, 2},
		linuxBoot{kernel: "/k/vmlinuz", initrd: "/dev/fd/3"},
		serialPort{"console", "/dev/fd/4"},
		eventPort(archAMD64, "events", "/dev/fd/5"),
		consoleOn(archAMD64),
		exitOnPanic{oops: true},
		quietButLoud{},
		extraKargs{"foo=bar"},
	)
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-nodefaults -no-user-config -nographic",
		"-accel tcg -cpu max,-erms,-avx,-avx2,-fma,-f16c,-aes,-pclmulqdq,-vaes",
		"-m 512 -smp 2",
		"-kernel /k/vmlinuz -initrd /dev/fd/3",
		"-chardev file,id=console,path=/dev/fd/4 -serial chardev:console -chardev file,id=events,path=/dev/fd/5 -serial chardev:events",
		"-no-reboot",
	} {
		assert.Contains(t, line, want)
	}
	// The kernel command line is one argument, last.
	assert.Equal(t, "-append", args[len(args)-2])
	assert.Equal(t, "rdinit=/init console=ttyS0,115200 8250.nr_uarts=2 panic=-1 oops=panic loglevel=5 foo=bar", args[len(args)-1])
	assert.NotContains(t, line, "quiet", "quiet would hide WARNING splats")
	assert.NotContains(t, line, "virtio", "virtio console is a module in 5.10 and 6.1")
}

func TestQEMUCommandLineKVM(t *testing.T) {
	line := strings.Join(qemuCommandLine(accelerator{"kvm", archAMD64}, exitOnPanic{}), " ")
	assert.Equal(t, "-accel kvm -cpu host -no-reboot -append panic=-1", line)
}

// TestQEMUCommandLineArm64: the virt board, TCG's cheap pointer
// authentication, the PL011 console and a PCI 16550 for the events; no
// x86-only kernel parameters.
func TestQEMUCommandLineArm64(t *testing.T) {
	args := qemuCommandLine(
		bareMachine{},
		board(archARM64),
		accelerator{"tcg", archARM64},
		linuxBoot{kernel: "/k/vmlinuz", initrd: "/dev/fd/3"},
		serialPort{"console", "/dev/fd/4"},
		eventPort(archARM64, "events", "/dev/fd/5"),
		consoleOn(archARM64),
		fastBoot(archARM64),
	)
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-machine virt",
		"-accel tcg -cpu max,pauth-impdef=on",
		"-chardev file,id=console,path=/dev/fd/4 -serial chardev:console",
		"-chardev file,id=events,path=/dev/fd/5 -device pci-serial,chardev=events",
	} {
		assert.Contains(t, line, want)
	}
	assert.Equal(t, "rdinit=/init console=ttyAMA0,115200 8250.nr_uarts=1 raid=noautodetect random.trust_cpu=on", args[len(args)-1])
	assert.Equal(t, "-accel kvm -cpu host", strings.Join(accelerator{"kvm", archARM64}.args(), " "))
	assert.Empty(t, board(archAMD64).args(), "amd64 keeps QEMU's default PC")
}
