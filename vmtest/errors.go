package vmtest

import "errors"

var (
	// ErrInvalidSpec is wrapped by every error about a bad Spec (a *SpecError).
	ErrInvalidSpec = errors.New("invalid vmtest spec")
	// ErrQEMUNotFound: no qemu-system-x86_64 to run.
	ErrQEMUNotFound = errors.New("QEMU not found")
	// ErrInfra is wrapped by Run's errors about its own machinery failing
	// (QEMU crashed or was killed, the init could not be built, ...); the
	// Result then says InfraError.
	ErrInfra = errors.New("vmtest infrastructure failure")
)

// SpecError is a problem with one field of a Spec.
type SpecError struct {
	// Field names the offending field, e.g. `Commands[1] ("bpf").Path`.
	Field string
	Err   error
}

func (e *SpecError) Error() string { return "vmtest: " + e.Field + ": " + e.Err.Error() }

// Unwrap lets errors.Is match both ErrInvalidSpec and the cause (e.g.
// kernels.ErrNotKernel, fs.ErrNotExist).
func (e *SpecError) Unwrap() []error { return []error{ErrInvalidSpec, e.Err} }
