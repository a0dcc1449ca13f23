// Package bpf is kmatrix's CO-RE eBPF payload: one exec tracer written in C
// (c/tracer.c), compiled once by bpf2go, committed, and loaded unchanged on
// every kernel kmatrix boots, together with the loader and the tests that run
// inside each guest.
//
// The program depends on kernel data structures that really changed between
// 5.10 and 7.x (task_struct::state became __state in 5.14) and on a helper
// that only newer kernels have (bpf_loop, 5.17). Load probes the kernel and
// picks the variant that fits ([VariantBPFLoop] or [VariantBoundedLoop]); the
// choice and the verifier's instruction count per program are recorded, so a
// matrix can show what happened on each kernel.
//
// Lifecycle: [Load] (verifier; failures are [*LoadError] wrapping
// cilium/ebpf's errors, with the full verifier log), [Tracer.Attach]
// ([*AttachError]), [Tracer.Read] for exec events, [Tracer.Tasks] for the
// task-state dump, [Tracer.Close].
//
// For any other object (a user's `kmatrix run --bpf obj.o`), [LoadCollection]
// loads the same way: [VerifierStats] per program on success, a *LoadError
// on failure whose CORE field names the unresolved CO-RE relocations
// ([UnresolvedCORE]: the kernel's own log cannot say which field it was).
//
// The tests in this package run inside each guest kernel (see main_test.go:
// the test binary re-execs itself as the processes it traces) and record
// facts for the matrix with package vmtest/evidence.
package bpf
