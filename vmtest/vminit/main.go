// Command vminit is vmtest's guest init: PID 1 of every VM. It mounts the
// kernel filesystems (skipping those an old kernel lacks), raises
// RLIMIT_MEMLOCK, brings lo up, runs the commands of /vmtest/spec.json one
// after another, streams their output and exit status to the host on
// /dev/ttyS1, syncs and powers off.
//
// It must stay a static binary that depends on the standard library only:
// the host builds it from source embedded in its own binary, in a throwaway
// module (see vmtest/initbin.go), so that a kmatrix binary used far from a
// checkout still has it.
package main

import (
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
	p := &initProc{sys: realSystem{}, console: os.Stderr}
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
	err = realSystem{}.PowerOff()
	fmt.Fprintf(os.Stderr, "vmtest init: power off: %v\n", err)
	for {
		time.Sleep(time.Hour)
	}
}

// realSystem is system for PID 1 of a Linux guest.
type realSystem struct{}

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
func (realSystem) Events() (io.Writer, error) {
	fd, err := syscall.Open(wire.EventPort, syscall.O_WRONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", wire.EventPort, err)
	}
	var t syscall.Termios
	if err := ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: TCGETS: %w", wire.EventPort, err)
	}
	t.Oflag &^= syscall.OPOST
	t.Cflag |= syscall.CLOCAL
	if err := ioctl(fd, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("%s: TCSETS: %w", wire.EventPort, err)
	}
	// Back to blocking writes: the tty buffer is a few KiB and a write must
	// wait for it to drain rather than fail with EAGAIN.
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), wire.EventPort), nil
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

func (realSystem) PowerOff() error { return syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF) }
