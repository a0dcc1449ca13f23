package guest

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"

	"github.com/kmatrix/kmatrix/bpf"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// enotsupp is the kernel-internal ENOTSUPP (524), which the BPF syscall
// leaks to user space (e.g. for unsupported helpers in offloaded programs,
// or tcx attach types before 6.6) and which has no name in libc.
const enotsupp = syscall.Errno(524)

// errnoName names an errno the way the kernel headers do.
func errnoName(e syscall.Errno) string {
	if e == enotsupp {
		return "ENOTSUPP"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// setErrno records the first errno wrapped in err, if any.
func setErrno(f *Facts, err error) {
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		f.Errno, f.ErrnoValue = errnoName(e), int(e)
	}
}

// requiresRE matches the minimum version cilium/ebpf's feature probes put
// into their errors: "tcx not supported (requires >= 6.6)".
var requiresRE = regexp.MustCompile(`requires >= v?(\d+\.\d+(?:\.\d+)?)`)

// requiredKernel returns the kernel version a not-supported error names.
func requiredKernel(err error) string {
	if m := requiresRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// kernelHasBTF reports whether the running kernel exposes its BTF.
func kernelHasBTF() bool {
	_, err := os.Stat("/sys/kernel/btf/vmlinux")
	return err == nil
}

// loadFailure turns a program load error into the facts, message and log of
// a load-error result. spec is the program as it was loaded and types the
// object's own BTF (to name the type and field of a failed CO-RE
// relocation); tail is how many verifier log lines to keep.
func loadFailure(err error, spec *ebpf.ProgramSpec, types *btf.Spec, tail int) (Facts, string, string) {
	var f Facts
	setErrno(&f, err)
	msg := err.Error()
	var log string

	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		log = strings.Join(lastLines(ve.Log, tail), "\n")
		if off, errno, ok := poisonedInsn(ve.Log); ok {
			// cilium/ebpf replaces an instruction whose CO-RE relocation
			// has no match in the kernel with an invalid call or load
			// (libbpf's 0xbad2310 sentinel), and the verifier trips over
			// it. Name the relocation from the program's own BTF.
			f.Class = ClassCORE
			f.Errno, f.ErrnoValue = errnoName(errno), int(errno)
			f.CORERelocation = describeRelocation(spec, types, off)
			msg = fmt.Sprintf("CO-RE relocation failed: %s has no match in the kernel's BTF (instruction %d)", f.CORERelocation, off)
			return f, msg, log
		}
		if what, ok := unsupportedFeature(spec); ok {
			f.Class = ClassNotSupported
			f.RequiresKernel = requiredKernel(what)
			return f, what.Error() + ": " + msg, log
		}
		f.Class = ClassVerifier
		return f, "verifier rejected the program: " + msg, log
	}

	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		f.Class = ClassNotSupported
		f.RequiresKernel = requiredKernel(err)
		if strings.Contains(msg, "BTF") && !kernelHasBTF() {
			f.Class = ClassMissingBTF
			msg += " (this kernel has no /sys/kernel/btf/vmlinux: it was built without CONFIG_DEBUG_INFO_BTF)"
		}
	case errors.Is(err, btf.ErrNotFound) && !kernelHasBTF():
		f.Class = ClassMissingBTF
		msg += " (this kernel has no /sys/kernel/btf/vmlinux: it was built without CONFIG_DEBUG_INFO_BTF)"
	case strings.Contains(msg, "find target in "), errors.Is(err, btf.ErrNotFound), errors.Is(err, os.ErrNotExist):
		// fentry/fexit/fmod_ret/tp_btf/lsm resolve their target's BTF ID
		// at load time, so a missing target fails the load, not the attach.
		f.Class = ClassAttachTarget
		if spec.AttachTo != "" {
			msg = fmt.Sprintf("%s %q does not exist in this kernel: %s", attachKind(spec), spec.AttachTo, msg)
		}
	case errors.Is(err, syscall.EPERM):
		f.Class = ClassPermission
	case mapErrorRE.MatchString(msg):
		f.Class = ClassMap
	default:
		f.Class = ClassOther
		if what, ok := unsupportedFeature(spec); ok {
			f.Class = ClassNotSupported
			f.RequiresKernel = requiredKernel(what)
			msg = what.Error() + ": " + msg
		}
	}
	return f, msg, log
}

// unsupportedFeature asks the kernel whether it lacks the program's type
// or one of the helpers it calls: a verifier rejection can be the kernel
// not knowing a helper at all (a bpf_loop caller on Linux before 5.17 even
// fails earlier, on the callback's func_info), which is an unsupported
// feature, not a bug in the program. Only asked after a failure: each
// probe loads a small program.
func unsupportedFeature(spec *ebpf.ProgramSpec) (error, bool) {
	if err := features.HaveProgramType(spec.Type); errors.Is(err, ebpf.ErrNotSupported) {
		return fmt.Errorf("program type %s is not supported by this kernel (%w)", spec.Type, err), true
	}
	if !attachTypeExists(spec.Type, spec.AttachType) {
		err := fmt.Errorf("attach type %s (section %q) is not supported by this kernel", spec.AttachType, spec.SectionName)
		if v := attachTypeSince[spec.AttachType]; v != "" {
			err = fmt.Errorf("%w (requires >= %s)", err, v)
		}
		return err, true
	}
	var seen []asm.BuiltinFunc
	iter := spec.Instructions.Iterate()
	for iter.Next() {
		if !iter.Ins.IsBuiltinCall() {
			continue
		}
		fn := asm.BuiltinFunc(iter.Ins.Constant)
		if slices.Contains(seen, fn) || fn == asm.BuiltinFunc(btf.COREBadRelocationSentinel) {
			continue
		}
		seen = append(seen, fn)
		if !helperExists(fn) {
			return fmt.Errorf("helper %s does not exist in this kernel", helperName(fn)), true
		}
		switch spec.Type {
		case ebpf.Tracing, ebpf.LSM, ebpf.Extension, ebpf.StructOps:
			// cilium/ebpf cannot probe helpers for types that need an
			// attach target.
			continue
		}
		if err := features.HaveProgramHelper(spec.Type, fn); errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("helper %s is not available to %s programs in this kernel", helperName(fn), spec.Type), true
		}
	}
	return nil, false
}

var (
	helperMu    sync.Mutex
	helperKnown = map[asm.BuiltinFunc]bool{}
)

// attachTypeSince names the kernel that added an attach type checked at
// load time, for the newest ones; the probe alone decides.
var attachTypeSince = map[ebpf.AttachType]string{
	// 859051dd165e "bpf: Implement cgroup sockaddr hooks for unix sockets".
	ebpf.AttachCgroupUnixConnect: "6.7", ebpf.AttachCgroupUnixSendmsg: "6.7", ebpf.AttachCgroupUnixRecvmsg: "6.7",
	ebpf.AttachCgroupUnixGetpeername: "6.7", ebpf.AttachCgroupUnixGetsockname: "6.7",
}

type progAttach struct {
	typ ebpf.ProgramType
	at  ebpf.AttachType
}

var attachKnown = map[progAttach]bool{}

// attachTypeExists reports whether the kernel loads a program of type typ
// with expected attach type at, for the cgroup socket types, whose load
// the kernel refuses with a bare EINVAL and an empty verifier log when it
// does not know the attach type (bpf_prog_load_check_attach): the
// cgroup/connect_unix family before Linux 6.7 read as a verifier rejection.
// A probe that fails otherwise counts as "exists".
func attachTypeExists(typ ebpf.ProgramType, at ebpf.AttachType) bool {
	switch typ {
	case ebpf.CGroupSockAddr, ebpf.CGroupSock, ebpf.CGroupSockopt:
	default:
		return true
	}
	helperMu.Lock()
	defer helperMu.Unlock()
	key := progAttach{typ, at}
	if known, ok := attachKnown[key]; ok {
		return known
	}
	// Return 1: allowed for every hook of these types (recvmsg hooks
	// must return 1).
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: typ, AttachType: at, License: "GPL",
		Instructions: asm.Instructions{asm.LoadImm(asm.R0, 1, asm.DWord), asm.Return()}})
	if err == nil {
		prog.Close()
	}
	known := !errors.Is(err, syscall.EINVAL)
	attachKnown[key] = known
	return known
}

// helperExists reports whether the kernel knows helper fn at all, for any
// program type: the verifier says "invalid func" only for helper IDs past
// the kernel's __BPF_FUNC_MAX_ID, and "unknown func" or "cannot use helper"
// for known helpers a program type may not call. (cilium/ebpf's
// features.HaveProgramHelper answers per program type and cannot tell the
// two apart.) A probe that fails otherwise counts as "exists", so that
// kmatrix never blames a helper it is not sure about.
func helperExists(fn asm.BuiltinFunc) bool {
	helperMu.Lock()
	defer helperMu.Unlock()
	if known, ok := helperKnown[fn]; ok {
		return known
	}
	spec := &ebpf.ProgramSpec{
		Type:         ebpf.SocketFilter,
		License:      "GPL",
		Instructions: asm.Instructions{fn.Call(), asm.LoadImm(asm.R0, 0, asm.DWord), asm.Return()},
	}
	prog, err := ebpf.NewProgramWithOptions(spec, ebpf.ProgramOptions{LogLevel: ebpf.LogLevelBranch})
	if err == nil {
		prog.Close()
	}
	known := true
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) && errors.Is(err, syscall.EINVAL) {
		tag := fmt.Sprintf("#%d", fn)
		for _, line := range ve.Log {
			if strings.Contains(line, "invalid func") && strings.Contains(line, tag) {
				known = false
			}
		}
	}
	helperKnown[fn] = known
	return known
}

// helperName turns cilium/ebpf's FnProbeReadKernel into the C name
// bpf_probe_read_kernel.
func helperName(fn asm.BuiltinFunc) string {
	name := strings.TrimPrefix(fn.String(), "Fn")
	var b strings.Builder
	b.WriteString("bpf_")
	for i, r := range name {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mapErrorRE matches cilium/ebpf's wrapping of a failure to create one of
// the maps a program references.
// ("program P: map M: map create: invalid argument").
var mapErrorRE = regexp.MustCompile(`program [^:]+: map [^:]+: `)

// attachKind names what AttachTo means for the program's type.
func attachKind(spec *ebpf.ProgramSpec) string {
	switch spec.Type {
	case ebpf.LSM:
		return "LSM hook"
	case ebpf.Tracing:
		if spec.AttachType == ebpf.AttachTraceRawTp {
			return "BTF tracepoint"
		}
		if spec.AttachType == ebpf.AttachTraceIter {
			return "BPF iterator"
		}
		return "kernel function"
	}
	return "attach target"
}

// lastLines returns at most n lines from the end of lines.
func lastLines(lines []string, n int) []string {
	if n > 0 && len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// The two forms a poisoned instruction takes in the verifier log: the call
// "12: (85) call unknown#195896080" ("invalid func unknown#195896080",
// EINVAL) and the dword load "12: (18) r10 = 0xbad2310" (EACCES: R10 is
// read-only), as cilium/ebpf's own heuristics in prog.go recognise them.
var (
	poisonCallRE = regexp.MustCompile(`^(\d+): \(85\) call unknown#` + strconv.Itoa(btf.COREBadRelocationSentinel) + `\b`)
	poisonLoadRE = regexp.MustCompile(`^(\d+): \(18\) r10 = 0x` + strconv.FormatInt(btf.COREBadRelocationSentinel, 16) + `\b`)
)

// poisonedInsn finds the poisoned instruction in a verifier log and returns
// its raw instruction offset and the errno the kernel gave for it.
func poisonedInsn(log []string) (int, syscall.Errno, bool) {
	for i := len(log) - 1; i >= 0; i-- {
		line := strings.TrimSpace(log[i])
		if m := poisonCallRE.FindStringSubmatch(line); m != nil {
			off, _ := strconv.Atoi(m[1])
			return off, syscall.EINVAL, true
		}
		if m := poisonLoadRE.FindStringSubmatch(line); m != nil {
			off, _ := strconv.Atoi(m[1])
			return off, syscall.EACCES, true
		}
	}
	return 0, 0, false
}

// describeRelocation names the CO-RE relocation of the instruction at raw
// offset off with bpf's decoder: "byte_off of task_struct.comm".
func describeRelocation(spec *ebpf.ProgramSpec, types *btf.Spec, off int) string {
	var ins *asm.Instruction
	iter := spec.Instructions.Iterate()
	for iter.Next() {
		if int(iter.Offset) == off {
			ins = iter.Ins
			break
		}
	}
	if ins == nil {
		return fmt.Sprintf("the relocation at instruction %d", off)
	}
	relo := btf.CORERelocationMetadata(ins)
	if relo == nil {
		return fmt.Sprintf("the relocation at instruction %d", off)
	}
	return bpf.DescribeRelocation(relo, types).Name()
}
