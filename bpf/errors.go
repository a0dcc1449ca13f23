package bpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
)

// ErrInvalidOptions is wrapped by errors about bad Options.
var ErrInvalidOptions = errors.New("invalid options")

// LoadError is returned when the BPF object cannot be loaded into the
// kernel: CO-RE relocation failures, verifier rejections, missing BTF,
// unsupported program or map types. It wraps cilium/ebpf's error, so
// errors.As(err, &ebpfVerifierError) finds the full verifier log and
// errors.Is(err, ebpf.ErrNotSupported) and errno values work.
type LoadError struct {
	// Variant is the variant that was being loaded.
	Variant Variant
	// Err is cilium/ebpf's error.
	Err error
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("bpf: loading the %s tracer: %v", e.Variant, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// VerifierLog is the kernel verifier's complete log, one line per entry, or
// nil when the failure did not come from the verifier.
func (e *LoadError) VerifierLog() []string {
	var ve *ebpf.VerifierError
	if errors.As(e.Err, &ve) {
		return ve.Log
	}
	return nil
}

// FullError renders the error followed by the whole verifier log, for
// reports that must show why the verifier refused the program.
func (e *LoadError) FullError() string {
	log := e.VerifierLog()
	if len(log) == 0 {
		return e.Error()
	}
	return e.Error() + "\nverifier log:\n" + strings.Join(log, "\n")
}

// AttachError is returned when a loaded program cannot be attached.
type AttachError struct {
	// Program is the program's name in the BPF object.
	Program string
	// Point is where it was being attached, e.g. "tp_btf/sched_process_exec".
	Point string
	// Err is cilium/ebpf's error (wrapping the errno).
	Err error
}

func (e *AttachError) Error() string {
	return fmt.Sprintf("bpf: attaching %s to %s: %v", e.Program, e.Point, e.Err)
}

func (e *AttachError) Unwrap() error { return e.Err }
