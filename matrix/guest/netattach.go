package guest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"

	"github.com/kmatrix/kmatrix/kernels/version"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
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

// nsAttachment is a link on lo of a network namespace of the program's own.
type nsAttachment struct {
	ns   *netns
	l    link.Link
	mode string
}

func (a *nsAttachment) Close() error    { return errors.Join(a.l.Close(), a.ns.Close()) }
func (a *nsAttachment) variant() string { return a.mode }
func (a *nsAttachment) fire() error     { return a.ns.do(loopback) }

// inOwnNetns attaches with attach on a thread in a fresh namespace.
func inOwnNetns(attach func() (link.Link, string, error)) (io.Closer, error) {
	ns, err := newNetns()
	if err != nil {
		return nil, &infraError{fmt.Errorf("%w: %v", errNoNetns, err)}
	}
	var l link.Link
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
// kernel without tcx, loaders use a clsact qdisc and a cls_bpf filter, and
// kmatrix cannot: both are modules in Debian's kernels that lack tcx
// (CONFIG_NET_SCH_INGRESS=m, CONFIG_NET_CLS_BPF=m on 5.10 and 6.1), and the
// guest has no modules. That is kmatrix's limit, so an infra-error; for
// tcx/* and tc/ingress|egress the object itself asks for tcx, so a kernel
// without it is the object's attach-error.
func planTC(at ebpf.AttachType, legacy bool) attachPlan {
	dir := "ingress"
	if at == ebpf.AttachTCXEgress {
		dir = "egress"
	}
	return attachPlan{point: "tcx " + dir + " on lo of its own network namespace", attach: func(p *ebpf.Program) (io.Closer, error) {
		c, err := inOwnNetns(func() (link.Link, string, error) {
			l, err := link.AttachTCX(link.TCXOptions{Program: p, Attach: at, Interface: loIndex})
			return l, "tcx", err
		})
		if legacy && errors.Is(err, ebpf.ErrNotSupported) {
			return nil, &infraError{fmt.Errorf("this kernel has no tcx ("+version.TCX.Needs()+"), and kmatrix cannot attach a classifier the other way: a clsact qdisc and a cls_bpf filter need the sch_ingress and cls_bpf modules, which the guest does not have (%v)", err)}
		}
		return c, err
	}}
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
