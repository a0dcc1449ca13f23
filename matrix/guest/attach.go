package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attachPlan is where a program goes, decided from its section alone
// before anything touches the kernel.
type attachPlan struct {
	// point names the attach point for people: "kprobe vfs_read".
	point string
	// attach does it; nil when the section names no attach point kmatrix
	// knows, and then reason says why.
	attach func(*ebpf.Program) (io.Closer, error)
	reason string
	// missing, if set, reports after a failed attach whether the target
	// does not exist in this kernel, for errors that do not say so (a
	// kprobe on a missing function fails with EINVAL through tracefs on
	// Linux 6.11+, and ENOENT elsewhere).
	missing func() bool
	// arch, with attach nil, is the architecture whose kernels alone have
	// the attach point (ClassArchAttachPoint).
	arch string
	// traffic is the kind of the default workload's traffic that alone
	// reaches the hook (trafficIPv6 for cgroup/connect6), if any: when
	// kmatrix could not send it, a program that did not run is not
	// never-ran (ClassNotTriggered).
	traffic string
}

// env is what attaching needs from the guest, looked up once.
type env struct {
	cgroupPath string
	// moduleDir holds the kernel modules kmatrix ships (Options.ModuleDir).
	moduleDir string
	// targets are the user's attach targets by program name
	// (Options.Attach): "PATH:SYMBOL" for a uprobe.
	targets map[string]string
	// sockmap returns the sockmap or sockhash a sk_msg or sk_skb program
	// is attached to (loading it if the program does not use it itself),
	// or an error saying why there is none.
	sockmap func(*ebpf.ProgramSpec) (*ebpf.Map, string, error)
	// extTarget returns the loaded program an freplace program replaces a
	// function of, and that program's name.
	extTarget func(*ebpf.ProgramSpec) (*ebpf.Program, string, error)

	cgOnce sync.Once
	cgPath string
	cgErr  error
}

// cgroup returns the cgroup v2 directory programs are attached to: the
// configured one, else the first cgroup2 mount in /proc/self/mountinfo
// (the guest init mounts it at /sys/fs/cgroup; hybrid hosts have it at
// /sys/fs/cgroup/unified).
func (e *env) cgroup() (string, error) {
	e.cgOnce.Do(func() {
		if e.cgroupPath != "" {
			e.cgPath = e.cgroupPath
			return
		}
		e.cgPath, e.cgErr = findCgroup2("/proc/self/mountinfo")
	})
	return e.cgPath, e.cgErr
}

// findCgroup2 returns the mount point of the first cgroup2 file system
// listed in a mountinfo file.
func findCgroup2(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("finding the cgroup2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw"
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fs := strings.Fields(post); len(fs) == 0 || fs[0] != "cgroup2" {
			continue
		}
		if fs := strings.Fields(pre); len(fs) >= 5 {
			return unescapeMount(fs[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("finding the cgroup2 mount in %s: %w", mountinfo, err)
	}
	return "", fmt.Errorf("no cgroup2 file system is mounted (none in %s): mount one, e.g. on /sys/fs/cgroup", mountinfo)
}

// unescapeMount undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sectionKind is the part of a section name before the first "/", without
// libbpf's "?" (do not auto-load) marker: "kprobe", "tcx", "cgroup_skb".
func sectionKind(section string) string {
	k, _, _ := strings.Cut(strings.TrimPrefix(section, "?"), "/")
	return k
}

// planAttach decides where spec's program is attached, following the
// section conventions of libbpf (tools/lib/bpf/libbpf.c, section_defs),
// which cilium/ebpf's ELF reader shares.
func planAttach(spec *ebpf.ProgramSpec, e *env) attachPlan {
	kind := sectionKind(spec.SectionName)
	to := spec.AttachTo
	none := func(point, format string, args ...any) attachPlan {
		return attachPlan{point: point, reason: fmt.Sprintf(format, args...)}
	}

	switch spec.Type {
	case ebpf.Kprobe:
		if t, ok := e.targets[spec.Name]; ok && strings.HasPrefix(kind, "u") {
			// --attach PROG=PATH:SYMBOL names what the section does not.
			to = t
		}
		return planKprobe(kind, to, spec.SectionName)

	case ebpf.TracePoint:
		group, name, ok := strings.Cut(to, "/")
		if !ok || group == "" || name == "" {
			return none("tracepoint", "section %q names no tracepoint: want tracepoint/<group>/<name>", spec.SectionName)
		}
		return attachPlan{point: "tracepoint " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			return link.Tracepoint(group, name, p, nil)
		}}

	case ebpf.RawTracepoint, ebpf.RawTracepointWritable:
		if to == "" {
			return none("raw tracepoint", "section %q names no tracepoint: want raw_tracepoint/<name>", spec.SectionName)
		}
		return attachPlan{point: "raw tracepoint " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: to, Program: p})
		}}

	case ebpf.Tracing:
		// The target was resolved to a BTF ID when the program was loaded.
		switch spec.AttachType {
		case ebpf.AttachTraceFEntry, ebpf.AttachTraceFExit, ebpf.AttachModifyReturn, ebpf.AttachTraceRawTp:
			point := kind + " " + to
			if spec.AttachTarget != nil {
				point = kind + " BPF program " + to // see tracesProgram
			}
			return attachPlan{point: point, attach: func(p *ebpf.Program) (io.Closer, error) {
				return link.AttachTracing(link.TracingOptions{Program: p})
			}}
		case ebpf.AttachTraceIter:
			return attachPlan{point: "iterator " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
				it, err := link.AttachIter(link.IterOptions{Program: p})
				if err != nil {
					return nil, err
				}
				return iterAttachment{it}, nil
			}}
		}
		return none(kind+" "+to, "kmatrix does not attach %q tracing programs (attach type %s)", spec.SectionName, spec.AttachType)

	case ebpf.LSM:
		switch spec.AttachType {
		case ebpf.AttachLSMMac:
			return attachPlan{point: "LSM hook " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
				return link.AttachLSM(link.LSMOptions{Program: p})
			}}
		case ebpf.AttachLSMCgroup:
			return planCgroup(spec.SectionName, spec.AttachType, e)
		}

	case ebpf.Extension:
		return attachPlan{point: "freplace " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			target, name, err := e.extTarget(spec)
			if err != nil {
				return nil, err
			}
			l, err := link.AttachFreplace(target, to, p)
			if err != nil {
				return nil, fmt.Errorf("replacing %s of program %s: %w", to, name, err)
			}
			return l, nil
		}}

	case ebpf.XDP:
		if spec.AttachType != ebpf.AttachXDP {
			return none("xdp", "section %q: XDP programs for devmap/cpumap entries run from a map, not from an interface", spec.SectionName)
		}
		return attachPlan{point: "xdp on lo of its own network namespace", attach: attachXDP}

	case ebpf.SchedCLS:
		switch spec.AttachType {
		case ebpf.AttachTCXIngress, ebpf.AttachTCXEgress:
			// tcx/ingress, tc/ingress (libbpf 1.3's names for tcx): the
			// object asks for tcx, which arrived in Linux 6.6.
			return planTC(spec.AttachType, false, e)
		case ebpf.AttachNetkitPrimary, ebpf.AttachNetkitPeer:
			at := spec.AttachType
			side := "primary"
			if at == ebpf.AttachNetkitPeer {
				side = "peer"
			}
			return attachPlan{point: "netkit " + side + " of a pair in its own network namespace", attach: func(p *ebpf.Program) (io.Closer, error) {
				return attachNetkit(p, at)
			}}
		}
		// "tc" and "classifier": a cls_bpf classifier without a hook;
		// loaders attach it at ingress, through tcx where the kernel has
		// it, else a clsact qdisc and a cls_bpf filter.
		return planTC(ebpf.AttachTCXIngress, true, e)

	case ebpf.SchedACT:
		return none("tc action", "section %q is a tc action, attached with `tc actions`, which kmatrix does not set up", spec.SectionName)

	case ebpf.SocketFilter:
		return attachPlan{point: "socket filter on a UDP socket", attach: attachSocketFilter}
	case ebpf.SkReuseport:
		return attachPlan{point: "SO_ATTACH_REUSEPORT_EBPF on a UDP socket", attach: attachReuseport}

	case ebpf.PerfEvent:
		return attachPlan{point: "perf event cpu-clock on CPU 0", attach: attachPerfEvent}

	case ebpf.CGroupSKB:
		if kind == "cgroup" { // "cgroup/skb"
			return none("cgroup", "section %q does not say ingress or egress: use cgroup_skb/ingress or cgroup_skb/egress", spec.SectionName)
		}
		return planCgroup(spec.SectionName, spec.AttachType, e)

	case ebpf.CGroupSock, ebpf.CGroupSockAddr, ebpf.CGroupSysctl, ebpf.CGroupSockopt, ebpf.CGroupDevice, ebpf.SockOps:
		return planCgroup(spec.SectionName, spec.AttachType, e)

	case ebpf.SkLookup:
		return attachPlan{point: "sk_lookup in its own network namespace", attach: attachNetnsProg}
	case ebpf.FlowDissector:
		return attachPlan{point: "flow_dissector in its own network namespace", attach: attachNetnsProg}

	case ebpf.SkSKB, ebpf.SkMsg:
		at := spec.AttachType
		if at == ebpf.AttachNone {
			at = ebpf.AttachSkSKBStreamVerdict // bare "sk_skb"
		}
		return attachPlan{point: fmt.Sprintf("%s on the object's sockmap", at), attach: func(p *ebpf.Program) (io.Closer, error) {
			m, name, err := e.sockmap(spec)
			if err != nil {
				return nil, err
			}
			if err := link.RawAttachProgram(link.RawAttachProgramOptions{Target: m.FD(), Program: p, Attach: at}); err != nil {
				return nil, fmt.Errorf("attaching to %s %s: %w", m.Type(), name, err)
			}
			return &sockmapAttachment{m: m, p: p, at: at}, nil
		}}
	case ebpf.Netfilter:
		// The section names no hook: IPv4 LOCAL_OUT sees every IPv4
		// packet the guest sends, loopback included.
		return attachPlan{point: "netfilter ipv4 local_out priority 0", attach: func(p *ebpf.Program) (io.Closer, error) {
			return link.AttachNetfilter(link.NetfilterOptions{Program: p, ProtocolFamily: link.NetfilterProtoIPv4, Hook: link.NetfilterInetLocalOut})
		}}
	case ebpf.StructOps:
		return none("struct_ops", "no struct_ops map of the object uses this program: struct_ops programs are registered through their map, not attached one by one")
	case ebpf.Syscall:
		// Nothing to attach to: a syscall program runs when its loader
		// calls BPF_PROG_RUN, so that is how it fires here.
		return attachPlan{point: syscallRunPoint, attach: func(p *ebpf.Program) (io.Closer, error) {
			return syscallRun{p}, nil
		}}
	case ebpf.LWTIn, ebpf.LWTOut, ebpf.LWTXmit, ebpf.LWTSeg6Local:
		return none("lwt", "section %q is attached to a route (`ip route ... encap bpf`), which kmatrix does not set up", spec.SectionName)
	}
	return none(kind, "kmatrix knows no attach point for section %q (program type %s, attach type %s)", spec.SectionName, spec.Type, spec.AttachType)
}

// planKprobe handles the kprobe family: kprobe/, kretprobe/, ksyscall/,
// kretsyscall/, kprobe.multi/, kretprobe.multi/, uprobe/ and friends.
func planKprobe(kind, to, section string) attachPlan {
	ret := strings.HasPrefix(kind, "kret") || strings.HasPrefix(kind, "uret")
	probe := link.Kprobe
	if ret {
		probe = link.Kretprobe
	}
	switch kind {
	case "kprobe", "kretprobe":
		if to == "" {
			return attachPlan{point: kind, reason: fmt.Sprintf("section %q names no kernel function: want %s/<function>", section, kind)}
		}
		// libbpf allows "kprobe/func+0x10".
		sym, offset := to, uint64(0)
		if s, off, ok := strings.Cut(to, "+"); ok && !ret {
			if n, err := strconv.ParseUint(off, 0, 64); err == nil {
				sym, offset = s, n
			}
		}
		if arch, ok := archOnlySymbol(sym); ok && arch != guestArch() && !kernelSymbol(sym) {
			return attachPlan{point: kind + " " + to, arch: arch, reason: archOnlyReason(kind, sym, arch)}
		}
		return attachPlan{point: kind + " " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			return probe(sym, p, &link.KprobeOptions{Offset: offset})
		}, missing: func() bool { return !kernelSymbol(sym) }}

	case "ksyscall", "kretsyscall":
		if to == "" {
			return attachPlan{point: kind, reason: fmt.Sprintf("section %q names no system call: want %s/<syscall>", section, kind)}
		}
		// link.Kprobe retries "sys_<name>" with the architecture's syscall
		// wrapper prefix (__x64_sys_<name>, __arm64_sys_<name> since Linux
		// 4.17 and 4.19): a ksyscall section is portable.
		return attachPlan{point: kind + " " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			return probe("sys_"+to, p, nil)
		}, missing: func() bool { return !kernelSymbol("sys_"+to) && !kernelSymbol(syscallPrefix()+"sys_"+to) }}

	case "kprobe.multi", "kretprobe.multi", "kprobe.session":
		if to == "" {
			return attachPlan{point: kind, reason: fmt.Sprintf("section %q names no kernel functions: want %s/<pattern>", section, kind)}
		}
		return attachPlan{point: kind + " " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			syms, err := expandSymbols(to)
			if err != nil {
				return nil, err
			}
			opts := link.KprobeMultiOptions{Symbols: syms, Session: kind == "kprobe.session"}
			if ret {
				return link.KretprobeMulti(p, opts)
			}
			return link.KprobeMulti(p, opts)
		}}

	case "uprobe", "uretprobe", "uprobe.s", "uretprobe.s":
		// libbpf's "uprobe/<binary>:<function>"; without both there is
		// nothing to attach to.
		bin, fn, ok := strings.Cut(to, ":")
		if !ok || bin == "" || fn == "" || strings.ContainsAny(fn, "+") {
			return attachPlan{point: kind, reason: fmt.Sprintf("section %q names no binary and function: name them in the section (%s/<binary>:<function>) or with --attach PROGRAM=PATH:SYMBOL", section, kind)}
		}
		return attachPlan{point: kind + " " + to, attach: func(p *ebpf.Program) (io.Closer, error) {
			if _, err := os.Stat(bin); errors.Is(err, fs.ErrNotExist) {
				// Not the object's fault: the guest is not the user's
				// system. kmatrix run ships a section's absolute path
				// from the host when the host has it.
				return nil, &noPointError{fmt.Sprintf("the guest has no %s to probe (kmatrix copies a uprobe's binary in from the host when the host has it at that path): ship one with --file HOST:%s", bin, bin)}
			}
			ex, err := openExecutable(bin)
			if err != nil {
				return nil, err
			}
			if ret {
				return ex.Uretprobe(fn, p, nil)
			}
			return ex.Uprobe(fn, p, nil)
		}}
	}
	return attachPlan{point: kind, reason: fmt.Sprintf("section %q names no attach point kmatrix knows (uprobe.multi, usdt and such need a target process or binary the section does not give)", section)}
}

// executables are the binaries uprobes were attached to in this process,
// by path: reading a binary's symbols takes a while under TCG (a 5 MB Go
// binary, some 0.1 s), and the guest's files do not change while it runs.
var executables sync.Map // path → *link.Executable

func openExecutable(path string) (*link.Executable, error) {
	if ex, ok := executables.Load(path); ok {
		return ex.(*link.Executable), nil
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, err
	}
	executables.Store(path, ex)
	return ex, nil
}

// syscallPrefix is the guest arch's syscall wrapper prefix: x86-64's
// (Linux 4.17+) or arm64's (4.19+). kmatrix-guest is built for the guest's
// arch, so it is the arch this binary runs on.
func syscallPrefix() string {
	if guestArch() == "arm64" {
		return "__arm64_"
	}
	return "__x64_"
}

// guestArch is the guest's architecture, in Debian's words.
func guestArch() string { return runtime.GOARCH }

// archSymbolPrefixes are the prefixes of kernel functions that exist on one
// architecture only: the syscall wrappers (pt_regs-based since 4.17 on
// x86, 4.19 on arm64), named after the arch that has them.
var archSymbolPrefixes = []struct{ prefix, arch string }{
	{"__x64_", "amd64"},
	{"__ia32_", "amd64"},
	{"__arm64_", "arm64"},
}

// archOnlySymbol says whether sym is a function only arch's kernels have.
func archOnlySymbol(sym string) (arch string, ok bool) {
	for _, a := range archSymbolPrefixes {
		if strings.HasPrefix(sym, a.prefix) {
			return a.arch, true
		}
	}
	return "", false
}

// archOnlyReason says why a probe on another arch's function is not
// attached, and what is portable.
func archOnlyReason(kind, sym, arch string) string {
	names := map[string]string{"amd64": "x86-64", "arm64": "arm64"}
	what := map[string]string{"amd64": "x86-only", "arm64": "arm64-only"}[arch]
	msg := fmt.Sprintf("%s attach point: %s/%s is a function of %s kernels only; this is an %s kernel", what, kind, sym, names[arch], names[guestArch()])
	for _, a := range archSymbolPrefixes {
		if name, ok := strings.CutPrefix(sym, a.prefix+"sys_"); ok {
			msg += fmt.Sprintf(", where the system call is %ssys_%s: SEC(\"ksyscall/%s\") picks each arch's wrapper", syscallPrefix(), name, name)
			break
		}
	}
	return msg
}

// kernelSymbol reports whether /proc/kallsyms lists a function named sym
// (also as a ".isra"/".constprop" clone, which kprobes cannot use by the
// plain name but which shows the function exists). It answers true when
// kallsyms cannot be read, so that an unreadable file never blames the
// program.
func kernelSymbol(sym string) bool {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ffffffff812d1e40 T vfs_read" or "... t foo\t[module]"
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && (fs[2] == sym || strings.HasPrefix(fs[2], sym+".")) {
			return true
		}
	}
	return sc.Err() != nil
}

// expandSymbols turns a kprobe.multi pattern into the kernel functions it
// matches, like libbpf does with available_filter_functions (a literal
// name is returned as is, so the kernel reports it if it is missing).
func expandSymbols(pattern string) ([]string, error) {
	if !strings.ContainsAny(pattern, "*?[") {
		return []string{pattern}, nil
	}
	var f *os.File
	var err error
	for _, p := range []string{"/sys/kernel/tracing/available_filter_functions", "/sys/kernel/debug/tracing/available_filter_functions"} {
		if f, err = os.Open(p); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("expanding %q: tracefs is not mounted: %w", pattern, err)
	}
	defer f.Close()
	seen := map[string]bool{}
	var syms []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "vfs_read", or "foo [module]" for functions of modules.
		name, _, _ := strings.Cut(sc.Text(), " ")
		if ok, _ := path.Match(pattern, name); ok && !seen[name] {
			seen[name] = true
			syms = append(syms, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("expanding %q: %w", pattern, err)
	}
	if len(syms) == 0 {
		return nil, fmt.Errorf("no kernel function matches %q: %w", pattern, os.ErrNotExist)
	}
	return syms, nil
}

// planCgroup attaches to the root of the cgroup v2 hierarchy.
func planCgroup(section string, at ebpf.AttachType, e *env) attachPlan {
	root, err := e.cgroup()
	if err != nil {
		root = "the cgroup2 root"
	}
	return attachPlan{point: section + " on cgroup " + root, traffic: cgroupTraffic(at), attach: func(p *ebpf.Program) (io.Closer, error) {
		dir, err := e.cgroup()
		if err != nil {
			return nil, err
		}
		return link.AttachCgroup(link.CgroupOptions{Path: dir, Attach: at, Program: p})
	}}
}

// cgroupTraffic is the kind of traffic that alone reaches a cgroup socket
// address hook; "" for hooks every kind reaches (sock_create, sockopt).
func cgroupTraffic(at ebpf.AttachType) string {
	switch at {
	case ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupUDP4Sendmsg, ebpf.AttachCGroupUDP4Recvmsg,
		ebpf.AttachCgroupInet4GetPeername, ebpf.AttachCgroupInet4GetSockname, ebpf.AttachCGroupInet4Bind,
		ebpf.AttachCGroupInet4PostBind:
		return trafficIPv4
	case ebpf.AttachCGroupInet6Connect, ebpf.AttachCGroupUDP6Sendmsg, ebpf.AttachCGroupUDP6Recvmsg,
		ebpf.AttachCgroupInet6GetPeername, ebpf.AttachCgroupInet6GetSockname, ebpf.AttachCGroupInet6Bind,
		ebpf.AttachCGroupInet6PostBind:
		return trafficIPv6
	case ebpf.AttachCgroupUnixConnect, ebpf.AttachCgroupUnixSendmsg, ebpf.AttachCgroupUnixRecvmsg,
		ebpf.AttachCgroupUnixGetpeername, ebpf.AttachCgroupUnixGetsockname:
		return trafficUnix
	}
	return ""
}

// socketAttachment is a socket filter on a socket of its own; closing it
// detaches the filter and closes the socket.
type socketAttachment struct{ conn net.PacketConn }

func attachSocketFilter(p *ebpf.Program) (io.Closer, error) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("opening a UDP socket for the filter: %w", err)
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		conn.Close()
		return nil, errors.New("UDP socket has no raw file descriptor")
	}
	if err := link.AttachSocketFilter(sc, p); err != nil {
		conn.Close()
		return nil, err
	}
	return socketAttachment{conn}, nil
}

// fire sends a datagram to the filter's socket.
func (s socketAttachment) fire() error { return udpTo(s.conn) }

// syscallRunPoint says how a syscall program is run: with a zeroed context
// of syscallCtxSize bytes, since the real one is the user's loader's.
// 5.14+ (BPF_PROG_TYPE_SYSCALL) checks the size against the largest context
// offset the program reads, and refuses a run with too small a context
// rather than reading past it.
const (
	syscallCtxSize  = 512
	syscallRunPoint = "BPF_PROG_RUN with a zeroed 512-byte context"
)

// syscallRun "attaches" a syscall program: firing runs it once.
type syscallRun struct{ p *ebpf.Program }

func (syscallRun) Close() error { return nil }

func (s syscallRun) fire() error {
	if _, err := s.p.Run(&ebpf.RunOptions{Context: make([]byte, syscallCtxSize)}); err != nil {
		return fmt.Errorf("running syscall program with BPF_PROG_RUN: %w", err)
	}
	return nil
}

// iterAttachment is an iterator link; firing reads the iterator once.
type iterAttachment struct{ it *link.Iter }

func (a iterAttachment) Close() error { return a.it.Close() }

func (a iterAttachment) fire() error {
	r, err := a.it.Open()
	if err != nil {
		return fmt.Errorf("opening the iterator: %w", err)
	}
	defer r.Close()
	// Bounded: a task iterator prints a line per task, not megabytes.
	_, err = io.Copy(io.Discard, io.LimitReader(r, 4<<20))
	return err
}

func (s socketAttachment) Close() error {
	err := link.DetachSocketFilter(s.conn.(syscall.Conn))
	return errors.Join(err, s.conn.Close())
}
