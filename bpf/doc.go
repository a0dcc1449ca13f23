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
package bpf
