// Package kmod is the kernel-module half of kmatrix: the module source
// (module/, embedded as Source) with LINUX_VERSION_CODE guards for the API
// changes between Linux 5.10 and 7.x, a build driver that compiles it for
// each kernel with the gcc major version that kernel was built with (on the
// host when it has that gcc, else inside a Debian build root of the
// kernel's own suite made once with mmdebstrap), and a loader that loads and
// unloads it in a guest and classifies failures (wrong vermagic, unknown
// symbol, rejected signature, already loaded) from errno and the kernel log.
//
// The module hooks the sched_process_exec tracepoint and serves
// /dev/kmatrix (see Device): a read returns the recorded execs, a write
// resets them, filters them by parent, or asks for a task's state.
//
// The tests of this package are of two kinds. Host tests build the module
// for every kernel of the default catalog. Guest tests (guest_test.go) run
// inside a kernel booted by vmtest: they need KMATRIX_KO, the guest path of
// the module built for that kernel, and skip without it.
package kmod
