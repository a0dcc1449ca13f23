package guest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// Stage is the step of a program's life a ProgramResult reports on.
type Stage string

const (
	// StageLoad: creating the program's maps and loading it into the kernel.
	StageLoad Stage = "load"
	// StageAttach: attaching it where its section says.
	StageAttach Stage = "attach"
	// StageDetach: closing its link afterwards. Reported only when it fails.
	StageDetach Stage = "detach"
	// StageRun: whether an attached program ran while the trigger workload
	// (and the user's check) ran: its run count and run time from the
	// kernel's BPF statistics. Pass when it ran, never-ran when it did not.
	StageRun Stage = "run"
	// StageCheck: the user's check command, run while every program is attached.
	StageCheck Stage = "check"
	// StageUnload: removing a user's kernel module after its checks.
	StageUnload Stage = "unload"
)

// Cell is the stage of the matrix cell a result of stage s becomes: a
// failed detach is an unload failure; the user's check and whether an
// attached program ran under the trigger are behaviour.
func (s Stage) Cell() outcome.Stage {
	switch s {
	case StageDetach:
		return outcome.StageUnload
	case StageCheck, StageRun:
		return outcome.StageBehave
	}
	return outcome.Stage(s)
}

// ProgramResult is one line of kmatrix-guest's output: the outcome of one
// stage of one program. A program that loads gets a load result and an
// attach result; one that does not load gets only its load result. The
// user's check command gets one result with an empty Program.
type ProgramResult struct {
	// Program is the program's name in the object (its ELF symbol).
	Program string `json:"program"`
	// Section is the ELF section it came from, e.g. "tcx/ingress".
	Section string `json:"section"`
	// Type is its program type as cilium/ebpf names it, e.g. "SchedCLS".
	Type string `json:"type"`
	// Stage is what this result is about.
	Stage Stage `json:"stage"`
	// Outcome is the result class; never Pass for an attach that did not happen.
	Outcome outcome.Outcome `json:"outcome"`
	// Message is one line a person reads first, e.g.
	// "tcx ingress on lo: requires Linux 6.6: not supported".
	Message string `json:"message"`
	// Log is the evidence: the verifier log's last lines, or the check
	// command's output.
	Log string `json:"log,omitempty"`
	// Facts are the machine-readable details.
	Facts Facts `json:"facts"`
	// DurationMS is how long the stage took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
}

// Facts are the details of a ProgramResult that scripts and reports use.
type Facts struct {
	// VerifiedInsns is the number of instructions the verifier processed
	// (load results of loaded programs), or unknown on kernels before 5.16.
	VerifiedInsns *InsnCount `json:"verified_insns,omitempty"`
	// AttachPoint names where the program was (or would have been) attached,
	// e.g. "kprobe vfs_read", "xdp on lo", "cgroup /sys/fs/cgroup".
	AttachPoint string `json:"attach_point,omitempty"`
	// Errno is the symbolic errno of a failure ("EINVAL", "ENOTSUPP"), and
	// ErrnoValue its number; empty and 0 when the failure carried none.
	Errno      string `json:"errno,omitempty"`
	ErrnoValue int    `json:"errno_value,omitempty"`
	// Class is the kind of failure (see the Class constants).
	Class Class `json:"class,omitempty"`
	// RequiresKernel is the kernel version a missing feature needs
	// ("6.6"), when cilium/ebpf's feature probe names one.
	RequiresKernel string `json:"requires_kernel,omitempty"`
	// CORERelocation names the relocation that could not be resolved, e.g.
	// "field task_struct.kmatrix_no_such_field (byte_off)".
	CORERelocation string `json:"core_relocation,omitempty"`
	// ExitCode is the check command's exit status.
	ExitCode *int `json:"exit_code,omitempty"`
	// Verifier is what the verifier reported about a loaded program
	// (load results): instructions processed, states, time, JITed size.
	Verifier *VerifierStats `json:"verifier,omitempty"`
	// Variant is the mechanism an attachment used where there is more
	// than one: "tcx", "xdp native", "xdp generic", "struct_ops link".
	Variant string `json:"variant,omitempty"`
	// RunCount and RunTimeNS are the kernel's BPF statistics of an
	// attached program after the trigger workload (run results):
	// how often it ran and for how long in total.
	RunCount  *uint64 `json:"run_count,omitempty"`
	RunTimeNS *uint64 `json:"run_time_ns,omitempty"`
	// Trigger names what ran while the program was attached.
	Trigger string `json:"trigger,omitempty"`
	// Map names the struct_ops map a struct_ops program belongs to.
	Map string `json:"map,omitempty"`
}

// VerifierStats are the verifier's figures for one loaded program. Zero
// fields are unknown (the kernel did not report them).
type VerifierStats struct {
	// InsnsProcessed is "processed N insns" from the verifier log's stats
	// line (every kernel here), the figure the 1M-instruction limit
	// (BPF_COMPLEXITY_LIMIT_INSNS) applies to.
	InsnsProcessed uint32 `json:"insns_processed,omitempty"`
	// InsnLimit is the limit the same line names ("limit 1000000").
	InsnLimit uint32 `json:"insn_limit,omitempty"`
	// TotalStates and PeakStates are the verifier's explored states.
	TotalStates uint32 `json:"total_states,omitempty"`
	PeakStates  uint32 `json:"peak_states,omitempty"`
	// VerificationUS is "verification time N usec" (Linux 5.12+).
	VerificationUS uint64 `json:"verification_us,omitempty"`
	// StackDepth is the "stack depth" line: per function, "+"-joined.
	StackDepth string `json:"stack_depth,omitempty"`
	// JitedBytes is the size of the JITed image (bpf_prog_info).
	JitedBytes uint32 `json:"jited_bytes,omitempty"`
	// XlatedBytes is the size of the program after the verifier's rewrites.
	XlatedBytes uint32 `json:"xlated_bytes,omitempty"`
}

// Class classifies a failure. The values are part of the output schema.
type Class string

const (
	// ClassVerifier: the verifier rejected the program.
	ClassVerifier Class = "verifier"
	// ClassCORE: a CO-RE relocation found no match in the kernel's BTF.
	ClassCORE Class = "core-relocation"
	// ClassMissingBTF: the kernel has no BTF, which the program needs.
	ClassMissingBTF Class = "missing-btf"
	// ClassNotSupported: the kernel lacks a program type, map type, helper
	// or attach mechanism (errors.Is(err, ebpf.ErrNotSupported)).
	ClassNotSupported Class = "not-supported"
	// ClassAttachTarget: the function, tracepoint or hook to attach to does
	// not exist in this kernel.
	ClassAttachTarget Class = "missing-target"
	// ClassPermission: the kernel refused for lack of privilege or memlock.
	ClassPermission Class = "permission"
	// ClassNoAttachPoint: the section names no attach point kmatrix knows.
	ClassNoAttachPoint Class = "no-attach-point"
	// ClassArchAttachPoint: the section names an attach point of another
	// architecture than the guest's ("kprobe/__x64_sys_getpid" on arm64:
	// x86-64's syscall wrapper), which this kernel cannot have.
	ClassArchAttachPoint Class = "arch-attach-point"
	// ClassUnknownSection: no program type is known for the section.
	ClassUnknownSection Class = "unknown-section"
	// ClassMap: creating one of the program's maps failed.
	ClassMap Class = "map"
	// ClassNeverRan: attached, but the kernel never ran it.
	ClassNeverRan Class = "never-ran"
	// ClassNotTriggered: attached, but kmatrix's trigger workload did not
	// reach the hook (the traffic it alone sees could not be sent): an
	// infra-error, since it says nothing about the program.
	ClassNotTriggered Class = "not-triggered"
	// ClassKmatrix: kmatrix's own limit or failure (an infra-error).
	ClassKmatrix Class = "kmatrix"
	// ClassOther: none of the above; the message says what happened.
	ClassOther Class = "other"
)

// InsnCount is a verified-instruction count that may be unknown: it is
// written to JSON as a number, or as the string "unknown" on kernels that
// do not report it (bpf_prog_info.verified_insns arrived in Linux 5.16).
type InsnCount struct {
	N     uint32
	Known bool
}

// MarshalJSON writes the count or "unknown".
func (c InsnCount) MarshalJSON() ([]byte, error) {
	if !c.Known {
		return []byte(`"unknown"`), nil
	}
	return strconv.AppendUint(nil, uint64(c.N), 10), nil
}

// UnmarshalJSON reads a number or "unknown".
func (c *InsnCount) UnmarshalJSON(b []byte) error {
	if string(b) == `"unknown"` {
		*c = InsnCount{}
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("verified_insns %s: want a number or \"unknown\"", b)
	}
	*c = InsnCount{N: uint32(n), Known: true}
	return nil
}

func (c InsnCount) String() string {
	if !c.Known {
		return "unknown"
	}
	return strconv.FormatUint(uint64(c.N), 10)
}

// Encode writes r as one line of JSON, the format of kmatrix-guest's stdout.
func Encode(w io.Writer, r ProgramResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Decode reads kmatrix-guest's output: one JSON ProgramResult per line.
// Blank lines are ignored; anything else that is not a result is an error
// naming its line, since the guest writes nothing else on that stream.
func Decode(r io.Reader) ([]ProgramResult, error) {
	var out []ProgramResult
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var pr ProgramResult
		if err := json.Unmarshal(line, &pr); err != nil {
			return out, fmt.Errorf("kmatrix-guest output line %d: not a program result (%v): %.80q", n, err, line)
		}
		if !pr.Outcome.Valid() {
			return out, fmt.Errorf("kmatrix-guest output line %d: unknown outcome %q", n, pr.Outcome)
		}
		out = append(out, pr)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading kmatrix-guest output: %w", err)
	}
	return out, nil
}
