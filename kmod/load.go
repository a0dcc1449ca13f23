package kmod

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// LoadErrorKind says why a module did not load.
type LoadErrorKind string

const (
	// KindVermagic: the module was built for another kernel (its version
	// magic or its symbol versions disagree with the running kernel's).
	KindVermagic LoadErrorKind = "vermagic"
	// KindUnknownSymbol: the module uses a symbol the kernel does not export.
	KindUnknownSymbol LoadErrorKind = "unknown-symbol"
	// KindSignature: the kernel requires a valid signature and the module
	// has none or a bad one.
	KindSignature LoadErrorKind = "signature"
	// KindAlreadyLoaded: a module of that name is loaded already.
	KindAlreadyLoaded LoadErrorKind = "already-loaded"
	// KindNotPermitted: the caller may not load modules (no
	// CAP_SYS_MODULE, or loading is disabled): kmatrix's problem, not the module's.
	KindNotPermitted LoadErrorKind = "not-permitted"
	// KindInit: the module's init function failed (Errno is what it returned).
	KindInit LoadErrorKind = "init"
	// KindOther: anything else finit_module refused.
	KindOther LoadErrorKind = "other"
)

// LoadError is a failed module load, classified from finit_module's errno
// and what the kernel logged while refusing it.
type LoadError struct {
	// Path is the .ko that was loaded.
	Path string
	// Errno is finit_module's error.
	Errno unix.Errno
	// Kind is why, Class the matrix outcome it maps to (load-error, or
	// infra-error when the fault is the environment's).
	Kind  LoadErrorKind
	Class outcome.Outcome
	// Reason is one line for a report, e.g. "unknown symbol foo" or the
	// kernel's vermagic line naming both version magics.
	Reason string
	// Dmesg is what the kernel logged during the load.
	Dmesg []string
	// ModuleVermagic is the module's vermagic (from its .modinfo) and
	// KernelRelease the running kernel's `uname -r`: the two sides of a
	// vermagic mismatch, also when the kernel's own message names neither.
	ModuleVermagic string
	KernelRelease  string
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("load module %s: %s (%s: %v)", e.Path, e.Reason, errnoName(e.Errno), e.Errno)
}

// Unwrap returns the errno, so errors.Is(err, unix.EEXIST) works.
func (e *LoadError) Unwrap() error { return e.Errno }

// Load loads the module at path with finit_module(2), passing params (the
// "name=value ..." string insmod takes; may be empty). On failure it returns
// a *LoadError classified from the errno and the kernel log.
func Load(path string, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	// Start reading the log at its end so that only this load's messages
	// are kept; without /dev/kmsg the classification uses errno alone.
	klog, _ := OpenKernelLog(true)
	if klog != nil {
		defer klog.Close()
	}
	err = unix.FinitModule(int(f.Fd()), params, 0)
	if err == nil {
		return nil
	}
	errno, ok := err.(unix.Errno)
	if !ok {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	var dmesg []string
	if klog != nil {
		dmesg, _ = klog.Read()
	}
	e := classifyLoad(path, errno, dmesg)
	if info, err := ModInfo(path); err == nil {
		e.ModuleVermagic = info["vermagic"]
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		e.KernelRelease = unix.ByteSliceToString(uts.Release[:])
	}
	if e.Kind == KindVermagic && !vermagicRE.MatchString(e.Reason) && e.ModuleVermagic != "" {
		e.Reason = fmt.Sprintf("%s (module vermagic '%s', running kernel %s)", e.Reason, e.ModuleVermagic, e.KernelRelease)
	}
	return e
}

var (
	// "kmatrix: version magic '6.1.0-56-cloud-amd64 SMP preempt mod_unload modversions ' should be '5.10.0-46-cloud-amd64 SMP mod_unload modversions '"
	vermagicRE = regexp.MustCompile(`version magic '.*' should be '.*'`)
	// "kmatrix: disagrees about version of symbol module_layout"
	symversRE = regexp.MustCompile(`disagrees about version of symbol (\S+)`)
	// "module kmatrix: .gnu.linkonce.this_module section size must match the
	// kernel's built struct module size at run time" (since 6.4, before the
	// vermagic check)
	thisModuleRE = regexp.MustCompile(`this_module section size must match`)
	// "kmatrix: Unknown symbol kmatrix_nope (err -2)"
	unknownSymRE = regexp.MustCompile(`Unknown symbol (\S+)`)
	// "Loading of unsigned module is rejected", "module verification failed: ...",
	// "Loading of module with unavailable key is rejected"
	signatureRE = regexp.MustCompile(`(?i)(module is rejected|with unavailable key is rejected|verification failed|PKCS#7 signature not signed)`)
)

// classifyLoad turns finit_module's errno and the kernel's messages into a LoadError.
func classifyLoad(path string, errno unix.Errno, dmesg []string) *LoadError {
	e := &LoadError{Path: path, Errno: errno, Class: outcome.LoadError, Dmesg: dmesg}
	find := func(re *regexp.Regexp) (string, []string) {
		for _, l := range dmesg {
			if m := re.FindStringSubmatch(l); m != nil {
				return strings.TrimSpace(l), m
			}
		}
		return "", nil
	}
	if line, _ := find(vermagicRE); line != "" && errno == unix.ENOEXEC {
		e.Kind, e.Reason = KindVermagic, "wrong vermagic: "+line
		return e
	}
	if line, _ := find(symversRE); line != "" && (errno == unix.ENOEXEC || errno == unix.EINVAL) {
		// With CONFIG_MODVERSIONS the kernel compares symbol CRCs (first
		// module_layout, until 6.2) before the vermagic string, and a
		// module built for another kernel fails there.
		e.Kind, e.Reason = KindVermagic, "built for another kernel: "+line
		return e
	}
	if line, _ := find(thisModuleRE); line != "" && errno == unix.ENOEXEC {
		e.Kind, e.Reason = KindVermagic, "built for another kernel: "+line
		return e
	}
	var syms []string
	for _, l := range dmesg {
		if m := unknownSymRE.FindStringSubmatch(l); m != nil && !slices.Contains(syms, m[1]) {
			syms = append(syms, m[1])
		}
	}
	if len(syms) > 0 {
		e.Kind, e.Reason = KindUnknownSymbol, "unknown symbol "+strings.Join(syms, ", ")
		return e
	}
	switch errno {
	case unix.EKEYREJECTED, unix.ENOKEY, unix.EBADMSG, unix.EKEYEXPIRED, unix.EKEYREVOKED:
		line, _ := find(signatureRE)
		e.Kind, e.Reason = KindSignature, "signature rejected"
		if line != "" {
			e.Reason += ": " + line
		}
		return e
	case unix.EEXIST:
		e.Kind, e.Reason = KindAlreadyLoaded, "a module of that name is already loaded"
		return e
	case unix.EPERM:
		if line, _ := find(signatureRE); line != "" {
			e.Kind, e.Reason = KindSignature, "signature rejected: "+line
			return e
		}
		e.Kind, e.Class = KindNotPermitted, outcome.InfraError
		e.Reason = "not permitted: needs CAP_SYS_MODULE, and module loading must not be disabled (kernel.modules_disabled, lockdown)"
		return e
	case unix.ENOEXEC:
		e.Kind, e.Reason = KindOther, "not a loadable module for this kernel (ENOEXEC)"
	default:
		e.Kind, e.Reason = KindOther, "finit_module failed"
	}
	// A failing init function logs nothing the kernel recognises, but ours
	// and most modules log why; keep the module's own last line.
	if len(dmesg) > 0 {
		e.Reason += ": " + strings.TrimSpace(dmesg[len(dmesg)-1])
	}
	return e
}

// Unload removes the named module with delete_module(2), failing instead
// of waiting when it is still in use (as rmmod does).
func Unload(name string) error {
	if name == "" || strings.ContainsAny(name, "/ ") || strings.HasSuffix(name, ".ko") {
		return fmt.Errorf("unload module %q: want a module name as lsmod shows it, e.g. %q", name, ModuleName)
	}
	err := unix.DeleteModule(name, unix.O_NONBLOCK)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("unload module %s: not loaded: %w", name, err)
	case errors.Is(err, unix.EWOULDBLOCK), errors.Is(err, unix.EBUSY):
		return fmt.Errorf("unload module %s: still in use (an open /dev/kmatrix, or another module depends on it): %w", name, err)
	default:
		return fmt.Errorf("unload module %s: %w", name, err)
	}
}

// Loaded reports whether a module of that name is loaded (it has a
// /sys/module/<name>/initstate, which built-in modules lack).
func Loaded(name string) bool {
	_, err := os.Stat("/sys/module/" + name + "/initstate")
	return err == nil
}

// Taint flags of /proc/sys/kernel/tainted that loading an out-of-tree,
// unsigned module sets: 'O' and 'E'. Nothing else may be set after kmatrix's module ran.
const (
	TaintOutOfTree = 1 << 12 // TAINT_OOT_MODULE
	TaintUnsigned  = 1 << 13 // TAINT_UNSIGNED_MODULE
)

// ErrKernelState is wrapped by Taint when the kernel's state cannot be read.
var ErrKernelState = errors.New("kernel state not readable")

// Taint reads the kernel's taint mask.
func Taint() (uint64, error) {
	b, err := os.ReadFile("/proc/sys/kernel/tainted")
	if err != nil {
		return 0, fmt.Errorf("%w: %w (is /proc mounted?)", ErrKernelState, err)
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}
