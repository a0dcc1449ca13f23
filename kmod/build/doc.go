// Package build compiles out-of-tree kernel modules (kmatrix's own, see
// package kmod, or a user's) for each kernel of the matrix, with the gcc
// major version that kernel was built with: on the host when it has that
// gcc, otherwise inside a Debian build root of the kernel's own suite, made
// once with mmdebstrap and cached. Results are cached by content (Cached),
// and a failed build reports its first compiler error as file:line
// (FirstError).
//
// It is apart from package kmod, which loads and checks modules inside a
// guest, so that the guest's binaries do not link the archive client that
// building needs (through package kernels): its package initialisers alone
// cost some 100 ms of every guest command under TCG.
package build
