package guest

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// attachReuseport attaches an sk_reuseport program to a UDP socket of its
// own that has SO_REUSEPORT (SO_ATTACH_REUSEPORT_EBPF, Linux 4.19+): the
// kernel runs it to pick the socket of the group for each datagram, even
// for a group of one. Firing sends it a datagram. The attachment lives
// with the socket, so closing the socket detaches the program.
func attachReuseport(p *ebpf.Program) (io.Closer, error) {
	var attachErr error
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		if err := c.Control(func(fd uintptr) {
			if attachErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); attachErr != nil {
				attachErr = fmt.Errorf("setting SO_REUSEPORT: %w", attachErr)
			}
		}); err != nil {
			return err
		}
		return attachErr
	}}
	conn, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("opening a UDP socket with SO_REUSEPORT for the program: %w", err)
	}
	sc, err := conn.(syscall.Conn).SyscallConn()
	if err == nil {
		err = sc.Control(func(fd uintptr) {
			attachErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, p.FD())
		})
	}
	if err == nil {
		err = attachErr
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("SO_ATTACH_REUSEPORT_EBPF: %w", err)
	}
	return reuseportAttachment{conn}, nil
}

type reuseportAttachment struct{ conn net.PacketConn }

func (a reuseportAttachment) Close() error { return a.conn.Close() }

// fire sends a datagram to the socket: its lookup runs the program.
func (a reuseportAttachment) fire() error { return udpTo(a.conn) }
