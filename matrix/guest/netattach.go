package guest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// An attachment (the io.Closer an attach function returns) may say which
// mechanism it used and make its program run.
type (
	// varianter names the mechanism: "xdp generic", "tcx".
	varianter interface{ variant() string }
	// firer sends what the program's hook sees (traffic on its own
	// interface, a datagram to its socket, a read of its iterator).
	firer interface{ fire() error }
)

// infraError marks an attach failure that is kmatrix's own limit, not the
// program's: the cell is an infra-error.
type infraError struct{ err error }

func (e *infraError) Error() string { return e.err.Error() }
func (e *infraError) Unwrap() error { return e.err }

// nsAttachment is a link (or a tc filter) on lo of a network namespace of
// the program's own.
type nsAttachment struct {
	ns   *netns
	l    io.Closer
	mode string
}

func (a *nsAttachment) Close() error    { return errors.Join(a.l.Close(), a.ns.Close()) }
func (a *nsAttachment) variant() string { return a.mode }
func (a *nsAttachment) fire() error     { return a.ns.do(nsLoopback) }

// inOwnNetns attaches with attach on a thread in a fresh namespace.
func inOwnNetns[L io.Closer](attach func() (L, string, error)) (io.Closer, error) {
	ns, err := newNetns()
	if err != nil {
		return nil, &infraError{fmt.Errorf("%w: %v", errNoNetns, err)}
	}
	var l L
	var mode string
	err = ns.do(func() (err error) {
		l, mode, err = attach()
		return err
	})
	if err != nil {
		ns.Close()
		return nil, err
	}
	return &nsAttachment{ns: ns, l: l, mode: mode}, nil
}

// netnsProgAttachment is an sk_lookup or flow_dissector program linked to
// a network namespace of its own: a program that drops or steers lookups
// or dissects wrongly touches only that namespace, and a second flow
// dissector (one per namespace) does not collide with the first. It is
// never the agent's own namespace (the root one), whose flow dissector
// would take precedence in every namespace.
type netnsProgAttachment struct {
	ns      *netns
	l       link.Link
	dissect bool
}

func (a *netnsProgAttachment) Close() error { return errors.Join(a.l.Close(), a.ns.Close()) }

// fire sends TCP and UDP over the namespace's lo: a TCP SYN's listener
// lookup and a UDP datagram's socket lookup run sk_lookup programs
// (inet_lookup_run_bpf, udp4_lookup_run_bpf). A flow dissector needs a
// packet the kernel dissects, which loopback alone never is: lo computes
// no hash, RPS is off, and TCP's packets carry their socket's hash. So
// the traffic passes an AF_PACKET socket in a PACKET_FANOUT_HASH group,
// as packet capture tools set up to spread flows over their readers: the
// group hashes every packet it receives with __skb_get_hash_symmetric,
// which runs the namespace's flow dissector (net/packet/af_packet.c,
// fanout_demux_hash; every kernel with BPF flow dissectors).
func (a *netnsProgAttachment) fire() error {
	return a.ns.do(func() error {
		if !a.dissect {
			return nsLoopback()
		}
		fd, err := fanoutHashSocket()
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return nsLoopback()
	})
}

// attachNetnsProg links an sk_lookup or flow_dissector program (BPF link,
// Linux 5.8+) to a fresh network namespace.
func attachNetnsProg(p *ebpf.Program) (io.Closer, error) {
	ns, err := newNetns()
	if err != nil {
		return nil, &infraError{fmt.Errorf("%w: %v", errNoNetns, err)}
	}
	l, err := link.AttachNetNs(int(ns.f.Fd()), p)
	if err != nil {
		ns.Close()
		return nil, err
	}
	return &netnsProgAttachment{ns: ns, l: l, dissect: p.Type() == ebpf.FlowDissector}, nil
}

// fanoutHashSocket opens an AF_PACKET socket for every protocol on lo, in
// a fanout group of type hash (PACKET_FANOUT, Linux 3.1+), in the calling
// thread's network namespace.
func fanoutHashSocket() (int, error) {
	all := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, all)
	if err != nil {
		return -1, fmt.Errorf("opening an AF_PACKET socket for the flow dissector: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: loIndex}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("binding the AF_PACKET socket to lo: %w", err)
	}
	const group = 1 // any id: the namespace has no other group
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, group|unix.PACKET_FANOUT_HASH<<16); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("joining a PACKET_FANOUT_HASH group: %w", err)
	}
	return fd, nil
}

// attachXDP tries native (driver) XDP, then generic (skb) XDP, as loaders
// do; lo has no native XDP, so generic is what the guest gets, and the mode
// is the cell's variant.
func attachXDP(p *ebpf.Program) (io.Closer, error) {
	return inOwnNetns(func() (link.Link, string, error) {
		l, nerr := link.AttachXDP(link.XDPOptions{Program: p, Interface: loIndex, Flags: link.XDPDriverMode})
		if nerr == nil {
			return l, "xdp native", nil
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: p, Interface: loIndex, Flags: link.XDPGenericMode})
		if err != nil {
			return nil, "", fmt.Errorf("native: %v; generic: %w", nerr, err)
		}
		return l, "xdp generic", nil
	})
}

// planTC attaches a sched_cls program with tcx (Linux 6.6+). legacy is
// for the "tc" and "classifier" sections, which name no mechanism: on a
// kernel without tcx they are attached as loaders do there, through a
// clsact qdisc and a direct-action cls_bpf filter at ingress (sch_ingress
// and cls_bpf are modules in Debian's kernels, CONFIG_NET_SCH_INGRESS=m and
// CONFIG_NET_CLS_BPF=m, which kmatrix ships to the guest and loads first).
// For tcx/* and tc/ingress|egress the object itself asks for tcx, so a
// kernel without it is the object's attach-error.
func planTC(at ebpf.AttachType, legacy bool, e *env) attachPlan {
	dir := "ingress"
	if at == ebpf.AttachTCXEgress {
		dir = "egress"
	}
	plan := attachPlan{point: "tcx " + dir + " on lo of its own network namespace"}
	if legacy {
		plan.point = "tc " + dir + " on lo of its own network namespace (tcx, or clsact and cls_bpf)"
	}
	plan.attach = func(p *ebpf.Program) (io.Closer, error) {
		c, err := inOwnNetns(func() (link.Link, string, error) {
			l, err := link.AttachTCX(link.TCXOptions{Program: p, Attach: at, Interface: loIndex})
			return l, "tcx", err
		})
		if !legacy || !errors.Is(err, ebpf.ErrNotSupported) {
			return c, err
		}
		// No tcx (before Linux 6.6): the way loaders attach a
		// classifier there.
		for _, m := range []string{"sch_ingress", "cls_bpf"} {
			if err := e.loadModule(m); err != nil {
				return nil, err
			}
		}
		return inOwnNetns(func() (*clsactFilter, string, error) {
			f, err := attachClsact(p, loIndex)
			return f, "clsact/cls_bpf", err
		})
	}
	return plan
}

// clsactFilter is a clsact qdisc with a cls_bpf filter, in a namespace of
// the program's own: closing the namespace removes both (with the device),
// so it has nothing of its own to undo.
type clsactFilter struct{}

func (*clsactFilter) Close() error { return nil }

// attachClsact adds a clsact qdisc to the interface and a direct-action
// cls_bpf filter with p at its ingress hook over rtnetlink (with
// vishvananda/netlink, the library cilium uses for it), in the calling
// thread's network namespace: what `tc qdisc add dev lo clsact; tc filter
// add dev lo ingress bpf direct-action fd N` does.
func attachClsact(p *ebpf.Program, ifindex int) (*clsactFilter, error) {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err != nil {
		return nil, fmt.Errorf("adding a clsact qdisc: %w", err)
	}
	info, _ := p.Info()
	name := "kmatrix"
	if info != nil && info.Name != "" {
		name = info.Name
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1,
			Protocol: unix.ETH_P_ALL, Priority: 1},
		Fd: p.FD(), Name: name, DirectAction: true,
	}
	if err := netlink.FilterAdd(filter); err != nil {
		return nil, fmt.Errorf("adding a cls_bpf filter (direct-action) at clsact ingress: %w", err)
	}
	return &clsactFilter{}, nil
}

// perfAttachment is a perf event with the program attached.
type perfAttachment struct{ fd int }

func (a perfAttachment) Close() error {
	unix.IoctlSetInt(a.fd, unix.PERF_EVENT_IOC_DISABLE, 0)
	return unix.Close(a.fd)
}

// attachPerfEvent attaches to a software cpu-clock event on CPU 0 that
// overflows every millisecond, the sampling setup of profilers.
// PERF_EVENT_IOC_SET_BPF works on every kernel here (the bpf_link form
// needs 5.15).
func attachPerfEvent(p *ebpf.Program) (io.Closer, error) {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Sample: uint64(time.Millisecond),
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
	}
	fd, err := unix.PerfEventOpen(&attr, -1, 0, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("perf_event_open cpu-clock: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, p.FD()); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("PERF_EVENT_IOC_SET_BPF: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("PERF_EVENT_IOC_ENABLE: %w", err)
	}
	return perfAttachment{fd}, nil
}

// sockmapAttachment is a sk_msg or sk_skb program attached to a sockmap.
type sockmapAttachment struct {
	m  *ebpf.Map
	p  *ebpf.Program
	at ebpf.AttachType
}

func (a *sockmapAttachment) Close() error {
	return link.RawDetachProgram(link.RawDetachProgramOptions{Target: a.m.FD(), Program: a.p, Attach: a.at})
}

// fire puts both ends of a loopback TCP connection into the map, sends
// data each way (sk_msg runs on send, sk_skb on receive), and takes them
// out again.
func (a *sockmapAttachment) fire() error {
	if a.m.KeySize() != 4 {
		return fmt.Errorf("sockmap with %d-byte keys: kmatrix fills sockmaps with 4-byte keys", a.m.KeySize())
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c1, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c1.Close()
	c2 := <-accepted
	if c2 == nil {
		return errors.New("accepting the sockmap's connection failed")
	}
	defer c2.Close()
	for i, c := range []net.Conn{c1, c2} {
		fd, err := connFD(c)
		if err != nil {
			return err
		}
		var v any = uint32(fd)
		if a.m.ValueSize() == 8 {
			v = uint64(fd)
		}
		if err := a.m.Update(uint32(i), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("adding a socket to the sockmap: %w", err)
		}
		defer a.m.Delete(uint32(i))
	}
	// The program may drop or redirect: send, and read without insisting.
	for _, c := range []net.Conn{c1, c2} {
		c.SetDeadline(time.Now().Add(200 * time.Millisecond))
		c.Write([]byte("kmatrix!"))
	}
	for _, c := range []net.Conn{c1, c2} {
		c.Read(make([]byte, 16))
	}
	return nil
}

// connFD returns a connection's file descriptor (owned by the connection).
func connFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var fd int
	err = rc.Control(func(f uintptr) { fd = int(f) })
	return fd, err
}
