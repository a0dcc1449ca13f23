// Package kernels turns a catalog of kernels named by intent ("Debian
// bookworm, cloud-amd64, newest ABI") or exactly (a package version, a local
// build) into verified, cached kernels: a vmlinuz to boot, its config, its
// BTF, and a headers tree to build out-of-tree modules against.
//
// Packages come from a Debian archive mirror discovered from the host's apt
// configuration (override with KMATRIX_DEBIAN_MIRROR and
// KMATRIX_DEBIAN_SECURITY_MIRROR). Every index is checked against the Debian
// archive keyring and every download against the SHA-256 in the signed index
// before it enters the cache.
package kernels
