package guest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kmatrix/kmatrix/vmtest/execchild"
)

// defaultTrigger says what the default trigger workload does; it is the
// "trigger" fact of every run result.
const defaultTrigger = "exec of a child, file opens and reads, sysctl reads, getpid, TCP, connected and unconnected UDP over IPv4 and IPv6 loopback (and over each program's own interface or network namespace, hashed by an AF_PACKET fanout group where a flow dissector is attached), unix datagram sockets, a 20 ms sleep"

// The kinds of traffic of the default workload that hooks depend on: a
// program on a hook only one of them reaches (cgroup/connect6 sees IPv6
// only) says nothing about itself when that part of the workload failed.
const (
	trafficIPv4 = "IPv4 over loopback"
	trafficIPv6 = "IPv6 over loopback"
	trafficUnix = "unix sockets"
)

// triggerRun is what the trigger workload could not do: problems for the
// never-ran message, missed by traffic kind, and the attachments' own
// fire errors by index.
type triggerRun struct {
	problems []string
	missed   map[string]error
	fireErrs []error
}

// trigger runs the default workload while every program is attached, so
// that programs on common hooks run: the system calls and kernel paths
// agents hook most (exec, open, read, sysctl, sockets). fires are the
// attachments' own triggers (traffic on a program's own interface, a
// datagram to a socket filter's socket, an iterator read). A failure here
// is noted, never fatal: the run counts say what ran.
func trigger(object string, fires []func() error) triggerRun {
	t := triggerRun{missed: map[string]error{}, fireErrs: make([]error, len(fires))}
	note := func(what string, err error) {
		if err != nil {
			t.problems = append(t.problems, what+": "+err.Error())
		}
	}
	// A 1.4 kB static child: a Go binary would spend some 60 ms in its
	// runtime's start under TCG, for every object on every kernel.
	cmd, err := execchild.Command(execchild.Exit)
	if err == nil {
		err = cmd.Run()
	}
	note("exec", err)
	for _, f := range []string{object, "/proc/self/status", "/proc/version", "/etc/passwd",
		"/proc/sys/kernel/ostype", "/proc/sys/net/ipv4/tcp_congestion_control"} {
		if b, err := os.ReadFile(f); err == nil && len(b) == 0 && !strings.HasPrefix(f, "/proc") {
			note("read "+f, errors.New("empty"))
		}
	}
	tmp, err := os.CreateTemp("", "kmatrix-trigger-")
	if err == nil {
		_, err = tmp.WriteString("kmatrix\n")
		tmp.Close()
		if err == nil {
			_, err = os.ReadFile(tmp.Name())
		}
		os.Remove(tmp.Name())
	}
	note("temp file", err)
	for range 3 {
		unix.Getpid()
	}
	v4, v6 := loopback()
	for kind, err := range map[string]error{trafficIPv4: v4, trafficIPv6: v6} {
		if err != nil {
			t.missed[kind] = err
			note(kind, err)
		}
	}
	if err := unixDatagrams(); err != nil {
		t.missed[trafficUnix] = err
		note(trafficUnix, err)
	}
	for i, fire := range fires {
		t.fireErrs[i] = fire()
		note("hook traffic", t.fireErrs[i])
	}
	time.Sleep(20 * time.Millisecond)
	return t
}

// loopback sends a TCP connection and UDP datagrams over 127.0.0.1 and ::1
// in the calling thread's network namespace, and says what failed for
// each. Never inlined: kmatrix's own uprobe fixture (testdata/uprobe.c)
// probes it.
//
//go:noinline
func loopback() (v4, v6 error) {
	if err := loUp(); err != nil {
		return err, err
	}
	return loopback4(), loopback6()
}

// nsLoopback is the trigger of programs on a namespace of their own: the
// loopback traffic there. A guest without IPv6 (ipv6.disable=1) is no
// failure of it: the IPv4 traffic reaches these hooks, and the IPv6-only
// hooks are told apart by the default workload's missed traffic.
func nsLoopback() error {
	v4, v6 := loopback()
	if errors.Is(v6, unix.EAFNOSUPPORT) || errors.Is(v6, unix.EADDRNOTAVAIL) {
		v6 = nil
	}
	return errors.Join(v4, v6)
}

// loopback4 and loopback6 send a TCP connection and UDP datagrams over
// 127.0.0.1 and ::1 (which a namespace's lo gets when it comes up).
func loopback4() error {
	if err := tcpOver("tcp4", "127.0.0.1:0"); err != nil {
		return err
	}
	return udpTo(nil)
}

func loopback6() error {
	if err := tcpOver("tcp6", "[::1]:0"); err != nil {
		return err
	}
	conn, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		return fmt.Errorf("UDP over IPv6 loopback: %w", err)
	}
	defer conn.Close()
	return udpBack(conn)
}

// tcpOver makes one TCP connection to a listener on addr and echoes 8
// bytes over it.
func tcpOver(network, addr string) error {
	ln, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("TCP over loopback: %w", err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(c, io.LimitReader(c, 8))
		done <- err
	}()
	c, err := net.DialTimeout(network, ln.Addr().String(), 5*time.Second)
	if err != nil {
		ln.Close()
		<-done
		return fmt.Errorf("TCP over loopback: %w", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte("kmatrix!"))
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 8))
	}
	c.Close()
	if err2 := <-done; err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("TCP over loopback: %w", err)
	}
	return nil
}

// udpTo sends datagrams to conn (a fresh socket on 127.0.0.1 when nil)
// and, for a fresh one, reads them back. Never inlined: kmatrix's own
// uprobe fixture (testdata/uprobe.c) probes it.
//
//go:noinline
func udpTo(conn net.PacketConn) error {
	if conn != nil {
		return udpSend(conn.LocalAddr())
	}
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer conn.Close()
	return udpBack(conn)
}

// udpBack sends datagrams to conn and reads them back.
func udpBack(conn net.PacketConn) error {
	if err := udpSend(conn.LocalAddr()); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 2 {
		if _, _, err := conn.ReadFrom(make([]byte, 16)); err != nil {
			return fmt.Errorf("UDP over loopback: %w", err)
		}
	}
	return nil
}

// udpSend sends one datagram to to from a connected socket, and one from
// an unconnected socket (sendto with an address): the cgroup/sendmsg4|6
// hooks run only for those, not on a connected socket's write.
func udpSend(to net.Addr) error {
	network, local := "udp4", "127.0.0.1:0"
	if a, ok := to.(*net.UDPAddr); ok && a.IP.To4() == nil {
		network, local = "udp6", "[::1]:0"
	}
	s, err := net.Dial(network, to.String())
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Write([]byte("kmatrix")); err != nil {
		return fmt.Errorf("UDP over loopback: %w", err)
	}
	u, err := net.ListenPacket(network, local)
	if err != nil {
		return err
	}
	defer u.Close()
	if _, err := u.WriteTo([]byte("kmatrix"), to); err != nil {
		return fmt.Errorf("UDP sendto over loopback: %w", err)
	}
	return nil
}

// unixDatagrams exercises the unix socket hooks (cgroup/connect_unix,
// sendmsg_unix, recvmsg_unix, getsockname_unix, getpeername_unix, Linux
// 6.7+): a connected datagram socket's connect, getsockname and
// getpeername, and a datagram sent with an address and received with one.
func unixDatagrams() error {
	dir, err := os.MkdirTemp("", "kmatrix-unix-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srvAddr := &net.UnixAddr{Name: dir + "/server", Net: "unixgram"}
	srv, err := net.ListenUnixgram("unixgram", srvAddr)
	if err != nil {
		return err
	}
	defer srv.Close()
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: dir + "/client", Net: "unixgram"}, srvAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.Getsockname(int(fd))
			unix.Getpeername(int(fd))
		})
	}
	u, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dir + "/sender", Net: "unixgram"})
	if err != nil {
		return err
	}
	defer u.Close()
	if _, err := u.WriteToUnix([]byte("kmatrix"), srvAddr); err != nil {
		return err
	}
	if _, err := c.Write([]byte("kmatrix")); err != nil {
		return err
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 2 {
		if _, _, err := srv.ReadFromUnix(make([]byte, 16)); err != nil {
			return err
		}
	}
	return nil
}
