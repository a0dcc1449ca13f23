package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/kmatrix/kmatrix/kernels/version"
)

// EnvQEMU names the QEMU binary to use for amd64 guests instead of
// qemu-system-x86_64 from PATH; EnvQEMUArm64 the one for arm64 guests
// instead of qemu-system-aarch64.
const (
	EnvQEMU      = "KMATRIX_QEMU"
	EnvQEMUArm64 = "KMATRIX_QEMU_ARM64"
)

// The guest architectures (Debian's names), as version.Arch reads them
// from the kernel image.
const (
	archAMD64 = version.AMD64
	archARM64 = version.ARM64
)

// qemuFor is the QEMU system emulator of each guest arch: its binary, the
// variable that overrides it, and the Debian package that has it.
var qemuFor = map[string]struct{ binary, env, deb string }{
	archAMD64: {"qemu-system-x86_64", EnvQEMU, "qemu-system-x86"},
	archARM64: {"qemu-system-aarch64", EnvQEMUArm64, "qemu-system-arm"},
}

// findQEMU returns the QEMU to run for a guest of arch: explicit, else
// the arch's variable, else PATH.
func findQEMU(explicit, arch string) (string, error) {
	q, ok := qemuFor[arch]
	if !ok {
		return "", fmt.Errorf("%w: no QEMU known for %s guests", ErrQEMUNotFound, arch)
	}
	name, from := explicit, "Spec.QEMU"
	if name == "" {
		name, from = os.Getenv(q.env), q.env
	}
	if name == "" {
		name, from = q.binary, "PATH"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s (from %s): %v: install it with \"apt-get install %s\", or set %s to its path",
			ErrQEMUNotFound, name, from, err, q.deb, q.env)
	}
	return p, nil
}

// A qemuPart is one concern of the QEMU invocation: its QEMU arguments and
// its kernel command line words. The command line is the concatenation of
// small parts so that each choice is stated (and tested) once.
type qemuPart interface {
	args() []string
	kargs() []string
}

// qemuCommandLine joins parts into QEMU's argument list (without the binary).
func qemuCommandLine(parts ...qemuPart) []string {
	var args, kargs []string
	for _, p := range parts {
		args = append(args, p.args()...)
		kargs = append(kargs, p.kargs()...)
	}
	if len(kargs) > 0 {
		args = append(args, "-append", strings.Join(kargs, " "))
	}
	return args
}

// bareMachine: no default devices (no VGA, NIC, floppy, monitor), no
// display, no user config files. Everything the guest gets is added by
// another part.
type bareMachine struct{}

func (bareMachine) args() []string {
	return []string{"-nodefaults", "-no-user-config", "-nographic"}
}
func (bareMachine) kargs() []string { return nil }

// board is the emulated machine: QEMU's default PC for amd64; for arm64
// the virt board (GICv2, one PL011 UART, a PCIe host bridge, virtio-mmio
// slots, PSCI for power-off and reset), which every arm64 distribution
// kernel supports, and the one vimto and little-vm-helper boot too.
type board string

func (b board) args() []string {
	if b == archARM64 {
		return []string{"-machine", "virt"}
	}
	return nil
}
func (board) kargs() []string { return nil }

// accelerator is KVM with the host CPU, or TCG emulating the richest CPU
// it can ("max": every feature TCG implements, so BPF JIT paths that test
// for e.g. BMI2 are exercised) less the features TCG emulates slowly and
// no check depends on (tcgSlowFeatures).
type accelerator struct{ accel, arch string }

// tcgSlowFeatures are turned off under TCG. With them a guest booted 10%
// slower and its checks ran 15–20% slower (QEMU 7.2, measured on 6.1):
//   - erms: the kernel's copy_user and memcpy switch to "rep movsb", which
//     TCG runs through a helper one byte at a time;
//   - avx, avx2: Go's runtime (memmove, IndexByte) and the kernel's
//     crypto use 256-bit vectors, emulated lane by lane; fma and f16c go
//     with them, or 7.x kernels complain at boot that they are enabled
//     without avx;
//   - aes, pclmulqdq, vaes: the kernel registers the AES-NI and CLMUL
//     drivers at boot and runs their self-tests, emulated instruction by
//     instruction.
var tcgSlowFeatures = []string{"-erms", "-avx", "-avx2", "-fma", "-f16c", "-aes", "-pclmulqdq", "-vaes"}

func (a accelerator) args() []string {
	if a.arch == archARM64 {
		// pauth-impdef: TCG's architected pointer authentication
		// (QARMA5) costs every signed return dearly; the implementation-
		// defined algorithm is a cheap hash, and the guest cannot tell.
		cpu := "max,pauth-impdef=on"
		if a.accel == "kvm" {
			cpu = "host"
		}
		return []string{"-accel", a.accel, "-cpu", cpu}
	}
	cpu := "max," + strings.Join(tcgSlowFeatures, ",")
	if a.accel == "kvm" {
		cpu = "host"
	}
	return []string{"-accel", a.accel, "-cpu", cpu}
}
func (accelerator) kargs() []string { return nil }

type resources struct{ memoryMB, cpus int }

func (r resources) args() []string {
	return []string{"-m", strconv.Itoa(r.memoryMB), "-smp", strconv.Itoa(r.cpus)}
}
func (resources) kargs() []string { return nil }

type linuxBoot struct{ kernel, initrd string }

func (l linuxBoot) args() []string {
	if l.initrd == "" {
		return []string{"-kernel", l.kernel} // a restore: the initramfs is in the saved RAM
	}
	return []string{"-kernel", l.kernel, "-initrd", l.initrd}
}
func (linuxBoot) kargs() []string { return []string{"rdinit=/init"} }

// serialPort is an 8250 UART (ttyS<n>, in order of appearance) whose
// output QEMU writes to path; the guest only ever writes to it. Serial
// ports, not virtio-console: the 8250 is built into every Debian cloud
// kernel, while virtio console and PCI are modules in 5.10 and 6.1.
type serialPort struct{ id, path string }

func (s serialPort) args() []string {
	return []string{"-chardev", "file,id=" + s.id + ",path=" + s.path, "-serial", "chardev:" + s.id}
}

// Two ports are all there are: don't let the driver probe four.
func (serialPort) kargs() []string { return nil }

// pciSerial is a 16550 UART on PCI whose output QEMU writes to path: the
// arm64 guest's event port (wire.EventPortArm64), as the virt board's only
// built-in UART is the console.
type pciSerial struct{ id, path string }

func (s pciSerial) args() []string {
	return []string{"-chardev", "file,id=" + s.id + ",path=" + s.path, "-device", "pci-serial,chardev=" + s.id}
}
func (pciSerial) kargs() []string { return nil }

// consoleOn is the kernel console: ttyS0 (the first ISA 8250) on amd64,
// ttyAMA0 (the virt board's PL011) on arm64; and how many 8250 ports the
// driver sets up: the two ISA ones on amd64, the PCI one on arm64.
type consoleOn string

func (c consoleOn) args() []string { return nil }
func (c consoleOn) kargs() []string {
	if c == archARM64 {
		return []string{"console=ttyAMA0,115200", "8250.nr_uarts=1"}
	}
	return []string{"console=ttyS0,115200", "8250.nr_uarts=2"}
}

// eventPort is the event channel's QEMU device: the second ISA 8250 on
// amd64, a PCI 16550 on arm64.
func eventPort(arch, id, path string) qemuPart {
	if arch == archARM64 {
		return pciSerial{id, path}
	}
	return serialPort{id, path}
}

// exitOnPanic: the guest reboots at once on a panic (panic=-1) and QEMU
// turns the reboot into its exit (-no-reboot), so a crashed kernel ends
// the run instead of waiting for the deadline.
type exitOnPanic struct{ oops bool }

func (exitOnPanic) args() []string { return []string{"-no-reboot"} }
func (e exitOnPanic) kargs() []string {
	k := []string{"panic=-1"}
	if e.oops {
		k = append(k, "oops=panic")
	}
	return k
}

// quietButLoud keeps the console to warnings and worse: the boot log at
// info level costs serial output time on every boot, but WARNING splats
// (KERN_WARNING, 4) must still reach the console, which "quiet" (console
// loglevel 4: only levels 0-3) would hide. Oopses and panics raise the
// console level themselves (console_verbose()).
type quietButLoud struct{}

func (quietButLoud) args() []string  { return nil }
func (quietButLoud) kargs() []string { return []string{"loglevel=5"} }

// fastBoot skips probes that cost boot time and mean nothing here.
type fastBoot string

func (fastBoot) args() []string { return nil }
func (f fastBoot) kargs() []string {
	if f == archARM64 {
		// The x86 words below mean nothing to an arm64 kernel (no PS/2,
		// no IO-APIC), which would hand them to the init as arguments.
		return []string{"raid=noautodetect", "random.trust_cpu=on"}
	}
	return []string{
		"raid=noautodetect",   // no md autodetection
		"psmouse.proto=exps",  // no PS/2 mouse protocol probing
		"i8042.noaux",         // nor the AUX port
		"random.trust_cpu=on", // crng ready without waiting for entropy (before 6.x the default varies)
		// Under TCG on a loaded host, the IO-APIC timer check can miss the
		// ticks it waits for and panic the kernel at boot ("IO-APIC + timer
		// doesn't work!", seen on 6.1 with the host's 2 cores at load 20):
		// the emulated timer is fine, only the check's timing is not.
		"no_timer_check",
	}
}

// watchdogKargs make the kernel's own hang detectors report within the
// host's patience: a task in D state is reported after 20 s instead of
// 120 (CONFIG_DEFAULT_HUNG_TASK_TIMEOUT in every Debian kernel here). The
// sysctl.* boot parameters exist from Linux 5.8. Soft lockups (20 s, twice
// watchdog_thresh) and RCU stalls (21 s, CONFIG_RCU_CPU_STALL_TIMEOUT)
// already report that soon.
type watchdogKargs struct{}

func (watchdogKargs) args() []string  { return nil }
func (watchdogKargs) kargs() []string { return []string{"sysctl.kernel.hung_task_timeout_secs=20"} }

// extraKargs is the caller's own kernel command line.
type extraKargs []string

func (extraKargs) args() []string    { return nil }
func (e extraKargs) kargs() []string { return e }
