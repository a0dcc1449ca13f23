package execchild

// The child is committed, like package bpf's objects, so that building and
// testing need no C toolchain beyond Go's: kmatrix-child for x86-64 guests,
// kmatrix-child-arm64 for arm64 ones (clang, linked with
// binutils-aarch64-linux-gnu's ld; make generate-deps installs it). After editing c/child.c, run
// `go generate ./vmtest/execchild`: it rebuilds kmatrix-child and records
// the checksum of c/child.c in child.sha256, which TestCommittedChildUpToDate
// compares against the source.
//go:generate gcc -Os -static -nostdlib -fno-pie -no-pie -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -Wall -Wextra -Werror -Wl,--build-id=none -Wl,-z,noseparate-code -s -o kmatrix-child c/child.c
//go:generate clang --target=aarch64-linux-gnu --ld-path=/usr/bin/aarch64-linux-gnu-ld -Os -static -nostdlib -fno-pie -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin -Wall -Wextra -Werror -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,-no-pie -s -o kmatrix-child-arm64 c/child.c
//go:generate sh -c "sha256sum c/child.c kmatrix-child kmatrix-child-arm64 > child.sha256"
