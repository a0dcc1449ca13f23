// Package vmtest boots a kernel in QEMU (KVM when it really works, TCG
// otherwise) with a generated initramfs whose PID 1 is a small static Go
// init, runs commands inside it, and reports their output, the kernel
// console, the guest's events, per-phase timings and an outcome: pass, fail,
// kernel-panic, oops, splat, timeout or infra-error.
package vmtest
