package bpf

// The BPF objects are compiled here, once, and committed with their Go
// bindings so that `go build` and `go test` need no clang. Run
// `go generate ./bpf` (the Makefile's `generate` target installs clang, llvm
// and libbpf-dev first) after changing anything under c/ or testdata/*.c.
//
// -target bpfel: the tracer is plain CO-RE code with no pt_regs access, so one
// little-endian object serves amd64 and arm64 alike. The kprobe in
// testdata/tcx_kprobe.c uses BPF_KPROBE, whose register layout is per
// architecture, hence -target amd64 (the kernels kmatrix boots are x86-64).
// The last step records the SHA-256 of every input and output in
// generated.sha256; TestGeneratedObjectsUpToDate recomputes it without clang.

//go:generate go tool bpf2go -cflags "-O2 -g -Wall -Werror" -target bpfel -type event -type task_record tracer c/tracer.c -- -I./c
//go:generate go tool bpf2go -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir testdata -output-stem broken_core brokenCore testdata/broken_core.c -- -I./c
//go:generate go tool bpf2go -cflags "-O2 -g -Wall -Werror" -target amd64 -output-dir testdata -output-stem tcx_kprobe tcxKprobe testdata/tcx_kprobe.c -- -I./c
// The test objects that only kmatrix run loads (no Go code uses them) are
// compiled without Go bindings, with the flags bpf2go uses.
//go:generate sh -c "for f in kconfig prog_target bash_uprobe socket_hooks conntrack_kfunc; do clang -target bpfel -O2 -g -Wall -Werror -I./c -c testdata/${DOLLAR}f.c -o testdata/${DOLLAR}{f}_bpfel.o && llvm-strip -g testdata/${DOLLAR}{f}_bpfel.o || exit 1; done"
//go:generate go run ./internal/srcsum/gensum
