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
const defaultTrigger = "exec of a child, file opens and reads, sysctl reads, getpid, TCP, connected and unconnected UDP over loopback (and over each program's own interface or network namespace, hashed by an AF_PACKET fanout group where a flow dissector is attached), a 20 ms sleep"

// trigger runs the default workload while every program is attached, so
// that programs on common hooks run: the system calls and kernel paths
// agents hook most (exec, open, read, sysctl, sockets). fires are the
// attachments' own triggers (traffic on a program's own interface, a
// datagram to a socket filter's socket, an iterator read). A failure here
// is noted, never fatal: the run counts say what ran.
func trigger(object string, fires []func() error) []string {
	var problems []string
	note := func(what string, err error) {
		if err != nil {
			problems = append(problems, what+": "+err.Error())
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
	note("loopback", loopback())
	for _, fire := range fires {
		note("hook traffic", fire())
	}
	time.Sleep(20 * time.Millisecond)
	return problems
}

// loopback sends a TCP connection and a UDP datagram over 127.0.0.1 in the
// calling thread's network namespace.
func loopback() error {
	if err := loUp(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
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
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
	if err != nil {
		return err
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
	return udpTo(nil)
}

// udpTo sends one datagram to conn (a fresh socket on 127.0.0.1 when nil)
// and, for a fresh one, reads it back.
func udpTo(conn net.PacketConn) error {
	own := conn == nil
	if own {
		var err error
		if conn, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			return err
		}
		defer conn.Close()
	}
	s, err := net.Dial("udp4", conn.LocalAddr().String())
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Write([]byte("kmatrix")); err != nil {
		return fmt.Errorf("UDP over loopback: %w", err)
	}
	// And one from an unconnected socket (sendto with an address): the
	// cgroup/sendmsg4 hook runs only for those, not on a connected
	// socket's write.
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer u.Close()
	if _, err := u.WriteTo([]byte("kmatrix"), conn.LocalAddr()); err != nil {
		return fmt.Errorf("UDP sendto over loopback: %w", err)
	}
	if own {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 2 {
			if _, _, err := conn.ReadFrom(make([]byte, 16)); err != nil {
				return fmt.Errorf("UDP over loopback: %w", err)
			}
		}
	}
	return nil
}
