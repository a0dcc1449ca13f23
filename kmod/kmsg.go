package kmod

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelLog reads the kernel's log through /dev/kmsg: each record is one
// message, and a reader can start at the end so that it sees only what is
// logged after it opened (what a failed finit_module printed, say).
type KernelLog struct {
	f *os.File
}

// OpenKernelLog opens /dev/kmsg. With fromEnd, Read returns only messages
// logged after this call; otherwise the whole ring buffer too.
func OpenKernelLog(fromEnd bool) (*KernelLog, error) {
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("kernel log: %w", err)
	}
	if fromEnd {
		// /dev/kmsg supports SEEK_END as "after the last record" (since 3.5).
		if _, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_END); err != nil {
			f.Close()
			return nil, fmt.Errorf("kernel log: seek to end: %w", err)
		}
	}
	return &KernelLog{f: f}, nil
}

// Read returns the messages logged since the last Read (or the open),
// without blocking. Messages lost to ring-buffer overrun are skipped.
func (l *KernelLog) Read() ([]string, error) {
	var out []string
	buf := make([]byte, 8192) // a record is at most ~1 KiB plus dictionary
	for {
		n, err := unix.Read(int(l.f.Fd()), buf)
		switch {
		case err == unix.EAGAIN:
			return out, nil
		case err == unix.EPIPE:
			continue // overrun: the next read returns the oldest record left
		case err == unix.EINTR:
			continue
		case err != nil:
			return out, fmt.Errorf("kernel log: %w", err)
		case n == 0:
			return out, nil
		}
		out = append(out, kmsgText(string(buf[:n])))
	}
}

// Close closes the log.
func (l *KernelLog) Close() error { return l.f.Close() }

// kmsgText returns the message of one /dev/kmsg record,
// "prio,seq,usec,flags[,...];message\n[ KEY=value\n...]".
func kmsgText(rec string) string {
	_, msg, ok := strings.Cut(rec, ";")
	if !ok {
		msg = rec
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return msg
}

// ReadKernelLog returns every message still in the kernel's ring buffer.
func ReadKernelLog() ([]string, error) {
	l, err := OpenKernelLog(false)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Read()
}

// splatRE matches the first line of the kernel's reports of a bug it
// survived or not: WARN() ("WARNING: CPU: 0 PID: 1 at ..."), BUG(),
// oopses, lockdep/KASAN/UBSAN reports ("BUG: KASAN: ..."), RCU stalls, and
// "Kernel panic". The guest tests require none after the module ran.
var splatRE = regexp.MustCompile(`^(?:WARNING: |BUG: |Oops|kernel BUG at |general protection fault|Kernel panic|UBSAN: |INFO: rcu_\w+ (?:self-)?detected stall|INFO: task \S+ blocked for more than|Unable to handle kernel)`)

// Splats returns the lines of log that report a kernel bug, warning or crash.
func Splats(log []string) []string {
	var out []string
	for _, l := range log {
		if splatRE.MatchString(strings.TrimSpace(l)) {
			out = append(out, l)
		}
	}
	return out
}
