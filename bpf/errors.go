package bpf

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
)

// ErrInvalidOptions is wrapped by errors about bad Options.
var ErrInvalidOptions = errors.New("invalid options")

// LoadError is returned when a BPF object cannot be loaded into the
// kernel: CO-RE relocation failures, verifier rejections, missing BTF,
// unsupported program or map types. It wraps cilium/ebpf's error, so
// errors.As(err, &ebpfVerifierError) finds the full verifier log and
// errors.Is(err, ebpf.ErrNotSupported) and errno values work.
type LoadError struct {
	// Object names what was being loaded, e.g. "the bpf_loop tracer".
	Object string
	// Err is cilium/ebpf's error.
	Err error
	// CORE lists the CO-RE relocations that cannot be resolved against the
	// running kernel, when the verifier refused a poisoned instruction
	// ("bad CO-RE relocation"); the kernel's log cannot name them.
	CORE []COREFailure
}

func (e *LoadError) Error() string {
	s := fmt.Sprintf("bpf: loading %s: %v", e.Object, e.Err)
	if len(e.CORE) > 0 {
		var fs []string
		for _, f := range e.CORE {
			fs = append(fs, f.String())
		}
		s += "; unresolved CO-RE relocations on this kernel: " + strings.Join(fs, ", ")
	}
	return s
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
