package guest

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// netns is a network namespace of its own, made for one program on an
// exclusive hook (an interface takes one XDP program; a tc or tcx program
// gets a quiet device of its own), so that two such programs in one object
// never collide with EBUSY, and traffic sent in it reaches only that
// program. Its loopback device (always ifindex 1) is the interface: it is
// built into every kernel, unlike veth and dummy, which are modules in the
// Debian cloud kernels (CONFIG_VETH=m, CONFIG_DUMMY=m on 5.10 to 7.2) and
// so absent from a guest that has no /lib/modules.
type netns struct {
	f *os.File // /proc/thread-self/ns/net of the thread that made it
}

// loIndex is the ifindex of lo in every network namespace.
const loIndex = 1

// newNetns makes a network namespace with its lo up.
func newNetns() (*netns, error) {
	var ns *netns
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("making a network namespace: %w", err)
		}
		f, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			return fmt.Errorf("opening the new network namespace: %w", err)
		}
		if err := loUp(); err != nil {
			f.Close()
			return err
		}
		ns = &netns{f}
		return nil
	})
	return ns, err
}

// do runs fn on a thread in the namespace.
func (n *netns) do(fn func() error) error {
	return onThread(func() error {
		if err := unix.Setns(int(n.f.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering the program's network namespace: %w", err)
		}
		return fn()
	})
}

// onThread runs fn on a locked thread of its own, which fn may move into
// another network namespace, and moves the thread back before unlocking
// it. The thread must go back (or die): Go ends a thread whose goroutine
// exits locked, except the main thread, which it parks forever instead.
// When that main thread was left in a program's namespace,
// /proc/self/ns/net (the thread group leader's) named that namespace, and
// the sk_lookup and flow_dissector programs kmatrix attached there never
// saw the trigger's traffic.
func onThread(fn func() error) error {
	c := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			// Without a way back the thread stays locked and ends
			// with the goroutine.
			c <- fmt.Errorf("opening the thread's network namespace: %w", err)
			return
		}
		defer home.Close()
		c <- fn()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-c
}

func (n *netns) Close() error { return n.f.Close() }

// loUp sets IFF_UP on lo in the calling thread's network namespace (a new
// namespace's lo is down).
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: SIOCGIFFLAGS: %w", err)
	}
	if ifr.Uint16()&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// errNoNetns wraps a failure to make a namespace: kmatrix's own limit, never
// the program's.
var errNoNetns = errors.New("kmatrix could not give the program a network namespace of its own")
