package vmtest

import (
	"io"
	"os"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// File is a file to place in the guest's initramfs.
type File struct {
	// Host is the path of a regular file on the host; or
	Host string
	// Data is the literal contents.
	Data []byte
	// Guest is the absolute path in the guest.
	Guest string
	// Mode is the permission bits: 0 means the host file's mode, or 0644 for Data.
	Mode os.FileMode
	// Shared marks a file that is the same in many runs, such as a test
	// binary that only changes with the program that ships it: the
	// snapshot of the machine holds it already, so a restored run does not
	// copy it in again (for a 12 MB pair of Go test binaries, 0.2 s of a
	// run under TCG). The shared files' paths, modes and contents are part
	// of the snapshot's key: a run with other shared files restores
	// another snapshot, so mark only what rarely changes. A cold boot
	// copies it like any file.
	Shared bool
}

// Command is one command to run in the guest.
type Command struct {
	// Name labels the command in results and timeouts, e.g. "bpf".
	Name string
	// Path is the guest path of the executable. A bare name ("uname") is
	// looked up in the host PATH and copied in, with its ELF interpreter and
	// shared libraries, to the same path in the guest.
	Path string
	// Host, when set, is a host executable copied to Path in the guest (with
	// its ELF interpreter and shared libraries when it is dynamic): how
	// `kmatrix exec` brings in a test binary.
	Host string
	Args []string
	// Env is KEY=VALUE, added to a minimal default environment
	// (PATH, HOME=/root, TMPDIR=/tmp); a key given here replaces the default.
	Env []string
	// Dir is the working directory in the guest (created empty if the
	// initramfs holds nothing there); default "/".
	Dir string
	// Timeout bounds the command, enforced by the guest init, which kills
	// its process group and goes on with the next command; 0: until the
	// VM's deadline.
	Timeout time.Duration
	// Stdout and Stderr, when set, get the command's output live, as the
	// guest streams it (flood gaps are marked in it as in the result).
	Stdout, Stderr io.Writer
	// Stdin, when set, is read to its end before the VM starts (at most
	// MaxStdin bytes) and is the command's standard input in the guest,
	// from a file in the initramfs; nil gives it /dev/null. The guest has
	// no channel from the host once it runs, so input cannot be
	// interactive.
	Stdin io.Reader
	// Prestart lets a restored run skip the command's start-up: Path must
	// be a Shared file and a program that calls prestart.Await first thing
	// (package vmtest/prestart). The guest init starts it before the guest
	// is snapshotted, it warms up and waits there, and each run restored
	// from the snapshot hands it Args, Env and Dir. Its start-up and
	// warm-up are then the snapshot's, the same in every run; a cold boot
	// starts it as any command. The paths of prestarted commands are part
	// of the snapshot's key. No Stdin with it: a prestarted command reads
	// /dev/null.
	Prestart bool
}

// MaxStdin is the most bytes of Command.Stdin a run takes: the initramfs
// lives in guest memory (DefaultMemoryMB), and a larger input is better a
// File the command opens.
const MaxStdin = 64 << 20

// Spec describes one VM run.
type Spec struct {
	// Kernel is the path of the vmlinuz: an x86 bzImage boots an amd64
	// guest, an arm64 Image (raw, gzip or EFI zboot) an arm64 one.
	Kernel string
	Files  []File
	// Commands run in order, each even if an earlier one failed.
	Commands []Command
	// Timeout is the deadline for the whole VM from QEMU's start (default
	// DefaultTimeout). Waiting for a free VM slot (see MaxParallel) does not
	// count against it.
	Timeout time.Duration
	// BootTimeout bounds the kernel's boot up to the init's first word
	// (the "kernel" phase); past it the run is an infra-error "the kernel
	// did not boot" with the last console lines. Default: 10 × BootFloor.
	BootTimeout time.Duration
	// BootFloor is the kernel's bare-boot time when the caller has
	// measured it (BootFloor()); default 4 s, the slowest bare boot measured
	// under TCG on the project's machines (7.2: 3.4–4.1 s). So by default a
	// kernel that cannot boot (a corrupted vmlinuz) costs 40 s, not Timeout.
	BootFloor time.Duration
	// ProgressTimeout bounds how long a running guest may go without any
	// event: the init sends one every 5 s (wire.AliveInterval) whatever
	// its commands do, so silence means the kernel no longer schedules it
	// (a module spinning with preemption off). The command is stopped and
	// is a timeout. Default DefaultProgressTimeout; negative turns it off.
	ProgressTimeout time.Duration
	// MemoryMB is the guest RAM (default 512).
	MemoryMB int
	// CPUs is the number of vCPUs (default 1).
	CPUs int
	// Append is extra kernel command line.
	Append []string
	// OopsPanic adds oops=panic: an oops ends the VM at once.
	OopsPanic bool
	// Console, when set, gets a live copy of the kernel console (ttyS0).
	Console io.Writer
	// OutputLimit bounds the bytes kept of each command's stdout and of its
	// stderr (default DefaultOutputLimit). Past it, the head and the tail
	// are kept with a line saying how much was left out between them.
	OutputLimit int
	// QEMU is the QEMU binary for the kernel's arch; default $KMATRIX_QEMU,
	// else qemu-system-x86_64 from PATH, for amd64 guests, and
	// $KMATRIX_QEMU_ARM64, else qemu-system-aarch64, for arm64 ones.
	QEMU string
	// Cold boots the kernel even when a snapshot of this machine could be
	// restored (see snapshot.go): by default a run restores the snapshot
	// of a guest booted with the same kernel, init, QEMU, accelerator,
	// memory, vCPUs and kernel command line, making it on first use.
	Cold bool
}

// Defaults of Spec.
const (
	DefaultTimeout = 2 * time.Minute
	// DefaultProgressTimeout is six missed heartbeats.
	DefaultProgressTimeout = 30 * time.Second
	DefaultMemoryMB        = 512
	DefaultCPUs            = 1
	DefaultOutputLimit     = 1 << 20
)

// CommandResult is what one command did.
type CommandResult struct {
	Name string
	// ExitCode is the exit status; -1 when it did not run to completion.
	ExitCode int
	// Stdout and Stderr are bounded by Spec.OutputLimit: a flood keeps its
	// head and tail and says how much it left out.
	Stdout, Stderr []byte
	// Duration is measured by the guest, from start to exit.
	Duration time.Duration
	// Err says why it could not run to completion, e.g.
	// "exec /bin/nope: no such file or directory", "timeout",
	// "signal: killed", "not run: the kernel panicked".
	Err string
}

// Timings are the phases of one run, measured on the host.
type Timings struct {
	// QEMUStart: QEMU's start to the firmware handing over to the kernel
	// ("Booting from ROM" on the console). 0 for arm64 guests: QEMU loads
	// the Image and enters it with no firmware, so Kernel counts from
	// QEMU's start.
	QEMUStart time.Duration
	// Kernel: from there to the init's first event.
	Kernel time.Duration
	// Init: the init's mounts and setup.
	Init time.Duration
	// Commands: from the init being ready to the last command's end.
	Commands time.Duration
	// Poweroff: from the last command's end to QEMU's exit.
	Poweroff time.Duration
	// Restore: for a restored run (Result.Snapshot), QEMU's start to the
	// guest taking up its run; QEMUStart and Kernel are then 0.
	Restore time.Duration
	// Total: QEMU's start to its exit.
	Total time.Duration
}

// Result is what one VM run did.
type Result struct {
	// Outcome is Pass (every command exited 0), Fail, KernelPanic, Oops,
	// Splat, Timeout or InfraError; the worst one observed.
	Outcome  outcome.Outcome
	Commands []CommandResult
	// Console is the bounded tail of the kernel console (ttyS0).
	Console []byte
	// Excerpt is the panic/oops/WARNING text, or the console tail at a timeout.
	Excerpt string
	// Phase is the phase that timed out, or else the one the kernel's worst
	// report (panic, oops, splat) came in: "kernel", "init",
	// "command <name>", "poweroff".
	Phase   string
	Timings Timings
	// Arch is the guest's architecture ("amd64", "arm64"), read from the
	// kernel image.
	Arch string
	// Accel is "kvm" or "tcg", and AccelReason why (forced, or what the
	// trial boot under KVM showed).
	Accel       string
	AccelReason string
	// Warnings are the init's notes about what it skipped (a filesystem an
	// old kernel lacks, ...).
	Warnings []string
	// Err is why the run is an InfraError (or timed out), in words.
	Err string
	// Snapshot is the key of the snapshot the guest was restored from
	// (vmtest.Snapshots lists them); empty when it booted cold, and
	// ColdReason then says why ("Spec.Cold", "no snapshot of this
	// machine: its boot reported splat: ...").
	Snapshot   string
	ColdReason string
	// SnapshotMade says this run made the snapshot it was restored from
	// (its machine's first run): it paid for a boot and the save.
	SnapshotMade bool
}
