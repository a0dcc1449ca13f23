// Command vminit is vmtest's guest init: PID 1 of every VM. It mounts the
// kernel filesystems (skipping those an old kernel lacks), raises
// RLIMIT_MEMLOCK, brings lo up, runs the commands of /vmtest/spec.json one
// after another, streams their output and exit status to the host on
// /dev/ttyS1, syncs and powers off.
//
// It is a static binary, committed as kmatrix-init and embedded in the
// host side (see vmtest/initbin.go), so that a kmatrix binary used far from
// a checkout, without a Go toolchain, still has it: after editing it (or
// package wire), run `make generate`. It depends on the standard library
// only, which keeps it small and quick to start under TCG.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"syscall"
	"time"
	"unsafe"

	"github.com/kmatrix/kmatrix/vmtest/internal/wire"
)

func main() {
	sys := &realSystem{}
	p := &initProc{sys: sys, console: os.Stderr, root: "/"}
	err := func() (err error) {
		// PID 1 must never exit: the kernel would panic with "Attempted to
		// kill init" and the host would blame the kernel.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("init panicked: %v\n%s", r, debug.Stack())
			}
		}()
		return p.run()
	}()
	p.finish(err)
	err = sys.PowerOff()
	fmt.Fprintf(os.Stderr, "vmtest init: power off: %v\n", err)
	for {
		time.Sleep(time.Hour)
	}
}

// realSystem is system for PID 1 of a Linux guest.
type realSystem struct {
	port *os.File // the event port, read for Go
	fw   *fwCfg   // set up before the guest parks
}

func (realSystem) Mount(m mount) error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		// sysfs directories cannot be created: the kernel lacks the feature.
		return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
	}
	if err := syscall.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil {
		if err == syscall.EBUSY {
			return nil // already mounted (the kernel automounts devtmpfs with CONFIG_DEVTMPFS_MOUNT on some paths)
		}
		return fmt.Errorf("mount %s on %s: %w", m.FSType, m.Target, err)
	}
	return nil
}

const rlimitMemlock = 8 // RLIMIT_MEMLOCK; the syscall package does not name it

func (realSystem) RaiseMemlock() error {
	inf := ^uint64(0)
	return syscall.Setrlimit(rlimitMemlock, &syscall.Rlimit{Cur: inf, Max: inf})
}

func (realSystem) LoopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if err := ioctl(fd, syscall.SIOCGIFFLAGS, unsafe.Pointer(&ifr)); err != nil {
		return err
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	return ioctl(fd, syscall.SIOCSIFFLAGS, unsafe.Pointer(&ifr))
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// Events opens ttyS1 in raw mode. O_NONBLOCK on open and CLOCAL keep it from
// waiting for a modem carrier; turning OPOST off keeps the tty from
// rewriting "\n" (harmless to the framing, but twice the work for nothing).
// It is opened for reading too, with echo and line editing off, because a
// parked guest gets Go from the host on it.
func (s *realSystem) Events() (io.Writer, error) {
	fd, err := syscall.Open(eventPort, syscall.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", eventPort, err)
	}
	var t syscall.Termios
	if err := ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: TCGETS: %w", eventPort, err)
	}
	t.Oflag &^= syscall.OPOST
	t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	t.Cflag |= syscall.CLOCAL | syscall.CREAD
	t.Cc[syscall.VMIN], t.Cc[syscall.VTIME] = 1, 0
	if err := ioctl(fd, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: TCSETS: %w", eventPort, err)
	}
	// Back to blocking writes: the tty buffer is a few KiB and a write must
	// wait for it to drain rather than fail with EAGAIN.
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	s.port = os.NewFile(uintptr(fd), eventPort)
	return s.port, nil
}

// WaitGo reads the event port until the host's Go frame.
func (s *realSystem) WaitGo() (*wire.Event, error) {
	if s.port == nil {
		return nil, errors.New("event port not open")
	}
	br := bufio.NewReader(s.port)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return nil, fmt.Errorf("read %s: %w", eventPort, err)
		}
		if e, derr := wire.Decode(line); derr == nil && e.Kind == wire.Go {
			return e, nil
		}
	}
}

func (realSystem) SetClock(t time.Time) error {
	tv := syscall.NsecToTimeval(t.UnixNano())
	return syscall.Settimeofday(&tv)
}

// Reseed credits seed to the input pool (RNDADDENTROPY) and makes the
// CRNG reseed from it now (RNDRESEEDCRNG, Linux 4.17): without the second
// step 5.18+ kernels would go on with the snapshot's CRNG key for up to a
// minute, and every restore of one snapshot would read the same bytes.
func (realSystem) Reseed(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const rndAddEntropy, rndReseedCRNG = 0x40085203, 0x5207
	buf := make([]byte, 8+len(seed))
	*(*int32)(unsafe.Pointer(&buf[0])) = int32(8 * len(seed)) // entropy_count, bits
	*(*int32)(unsafe.Pointer(&buf[4])) = int32(len(seed))     // buf_size, bytes
	copy(buf[8:], seed)
	if err := ioctl(int(f.Fd()), rndAddEntropy, unsafe.Pointer(&buf[0])); err != nil {
		return fmt.Errorf("RNDADDENTROPY: %w", err)
	}
	if err := ioctl(int(f.Fd()), rndReseedCRNG, nil); err != nil {
		return fmt.Errorf("RNDRESEEDCRNG: %w", err)
	}
	return nil
}

func (s *realSystem) PrepareRunFile() (err error) {
	s.fw, err = newFWCfg()
	return err
}

func (s *realSystem) RunFile() (io.Reader, error) {
	if s.fw == nil {
		if err := s.PrepareRunFile(); err != nil {
			return nil, err
		}
	}
	return s.fw.open(wire.RunFile)
}

func (realSystem) ReadSpec() ([]byte, error) { return os.ReadFile(wire.SpecPath) }

func (realSystem) Uptime() time.Duration {
	var ts syscall.Timespec
	// CLOCK_BOOTTIME = 7
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 7, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

func (realSystem) Sync() { syscall.Sync() }

// PowerOff waits for the event port to send what the init wrote (the tty
// buffers it, and a power-off would drop the Bye still in it), then
// powers off.
func (s *realSystem) PowerOff() error {
	if s.port != nil {
		const tcsbrk = 0x5409 // with 1: tcdrain
		syscall.Syscall(syscall.SYS_IOCTL, s.port.Fd(), tcsbrk, 1)
	}
	return syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
