// Package kmod is the kernel-module half of kmatrix: the module source
// (module/, embedded as Source) with LINUX_VERSION_CODE guards for the API
// changes between Linux 5.10 and 7.x, and a loader that loads and unloads
// it in a guest and classifies failures (wrong vermagic, unknown symbol,
// rejected signature, already loaded) from errno and the kernel log.
// Package kmod/build compiles it (and users' modules) for each kernel.
//
// The module hooks the sched_process_exec tracepoint and serves
// /dev/kmatrix (see Device): a read returns the recorded execs, a write
// resets them, filters them by parent, or asks for a task's state.
//
// The tests of this package run inside a kernel booted by vmtest
// (guest_test.go): they need KMATRIX_KO, the guest path of the module built
// for that kernel, and skip without it. Package kmod/build's tests build
// the module for every default kernel and run these tests in guests.
package kmod
