package kernels

import "errors"

// Errors wrapped by this package's failures; test them with errors.Is.
var (
	// ErrBadSignature: an InRelease file's OpenPGP signature did not verify
	// (tampered, signed by a key not in the keyring, or not signed at all).
	ErrBadSignature = errors.New("index signature did not verify")
	// ErrExpiredIndex: an InRelease file is past its Valid-Until.
	ErrExpiredIndex = errors.New("index is past its Valid-Until")
	// ErrUnknownSuite: the mirror has no such suite.
	ErrUnknownSuite = errors.New("unknown suite")
	// ErrUnknownFlavour: the suite has no kernel image of that flavour.
	ErrUnknownFlavour = errors.New("unknown kernel flavour")
	// ErrPackageNotFound: a package (or the pinned version of it) is not in the index.
	ErrPackageNotFound = errors.New("package not in the index")
	// ErrChecksum: a download's SHA-256 differs from the signed index.
	ErrChecksum = errors.New("SHA-256 mismatch")
	// ErrTruncated: a download ended before its announced size, every time it was tried.
	ErrTruncated = errors.New("download truncated")
	// ErrNetDeadline: a network deadline expired (see *DeadlineError for which one and how to change it).
	ErrNetDeadline = errors.New("network deadline expired")
	// ErrUnsafeArchive: a .deb holds an entry that would land outside its target directory.
	ErrUnsafeArchive = errors.New("unsafe archive entry")
	// ErrCatalog: the catalog is malformed (see *CatalogError for the line and field).
	ErrCatalog = errors.New("malformed catalog")
	// ErrNoBTF: the kernel image carries no BTF.
	ErrNoBTF = errors.New("no BTF in kernel image")
)
