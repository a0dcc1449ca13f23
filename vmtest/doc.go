// Package vmtest boots a kernel in QEMU (KVM when it really works, TCG
// otherwise) with a generated initramfs whose PID 1 is a small static Go
// init, runs commands inside it, and reports their output, the kernel
// console, the guest's events, per-phase timings and an outcome: pass,
// fail, kernel-panic, oops, splat, timeout or infra-error.
//
//	res, err := vmtest.Run(ctx, vmtest.Spec{
//		Kernel:   k.Vmlinuz,
//		Files:    []vmtest.File{{Host: "prog.o", Guest: "/payload/prog.o"}},
//		Commands: []vmtest.Command{{Path: "uname", Args: []string{"-r"}}},
//	})
//
// How a run goes: the initramfs is a cached base archive (the init, built
// once from source embedded in this package, and a skeleton root) followed
// by the run's own archive (spec, files, executables with their shared
// libraries), written into a memfd, so a run leaves no temporary file.
// QEMU gets two 8250 serial ports: ttyS0 is the kernel console, scanned
// for panics, oopses and warnings; ttyS1 carries the init's framed events
// (vmtest/internal/wire). Each phase (kernel, init, command <name>,
// poweroff) has a watchdog; on expiry the QEMU process group is killed.
//
// The guest's arch comes from the kernel image: an x86 bzImage boots in
// qemu-system-x86_64 as above; an arm64 Image in qemu-system-aarch64 on the
// virt board (-machine virt, -cpu max under TCG), its console on the
// board's PL011 (ttyAMA0), its events on a PCI 16550 (ttyS0 in the guest),
// with an init built for arm64, which reads a restored run from fw_cfg's
// memory-mapped registers (the virt board has no x86 I/O ports).
//
// By default a run does not boot: it restores a snapshot of its machine
// (kernel, init, QEMU, accelerator and CPU model, memory, vCPUs, kernel
// command line, shared files), made on the machine's first run by booting
// with an init that parks, waiting for work (snapshot.go). The RAM is a
// file mapped private, so every run starts from the same image; the run's
// files come through fw_cfg (vminit reads them by DMA), but for those
// marked File.Shared, which the snapshot holds; the host's clock and
// random bytes for the kernel's RNG come through the event port. A new
// snapshot removes the same machine's superseded ones. Spec.Cold (or
// KMATRIX_COLD=1) boots cold, as BootFloor always does.
//
// The accelerator is chosen once per host setup by a short trial boot under
// KVM (cached in the kmatrix cache dir with its reason); KMATRIX_ACCEL
// forces it. At most MaxParallel VMs run at once in a process.
//
// For go tests in guests: BuildTestBinary, ParseGoTest, Replay; and
// `kmatrix exec` is a `go test -exec` adapter built on Run.
package vmtest
