// Package wire is the protocol between vmtest's host side and its guest init:
// the run description the host puts into the initramfs, and the events the
// init streams back on the second serial port (ttyS1).
//
// It depends on the standard library only, which keeps the init (a static
// binary committed as vmtest/vminit/kmatrix-init) small and quick to start.
//
// Framing: one event per line, "KMX1 <json> <crc32c-hex>\n". A serial line
// is not a clean channel: the guest tty may turn "\n" into "\r\n", a kernel
// that panics mid-line cuts a frame short, and a console misconfiguration
// could mix kernel text into the port. The magic prefix finds frames in
// noise, JSON never contains a raw newline (byte payloads are base64 inside
// it), and the checksum rejects a damaged line instead of misreading it.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
)

// SpecPath is where the host puts the run description in the initramfs.
const SpecPath = "/vmtest/spec.json"

// EventPort is the guest device the init writes events to on amd64: the
// second ISA 8250 (the first is the console).
const EventPort = "/dev/ttyS1"

// EventPortArm64 is the event device of an arm64 guest. QEMU's virt board
// has a single UART (a PL011, ttyAMA0: the console), so the events go to
// a 16550 on PCI (-device pci-serial), which the 8250 driver names ttyS0:
// the 8250 core, its PCI glue and the generic PCI host bridge are built
// into Debian's arm64 cloud kernels (6.1 and 7.2), while virtio console
// is a module in 6.1.
const EventPortArm64 = "/dev/ttyS0"

// Spec is what the guest init runs.
type Spec struct {
	// PowerOffOnly makes the init power off at once, before mounting
	// anything: the bare-boot floor and the accelerator probe use it.
	PowerOffOnly bool `json:"poweroff_only,omitempty"`
	// Park makes the init, once set up, send Parked and wait on the event
	// port for Go: the host snapshots the parked guest, and each restore
	// of it gets its run (spec and files) from the fw_cfg file RunFile.
	Park bool `json:"park,omitempty"`
	// Prestart, with Park, are executables the init starts before it
	// parks, each waiting in package vmtest/prestart for its command: the
	// snapshot then holds them started and warmed up.
	Prestart []string  `json:"prestart,omitempty"`
	Commands []Command `json:"commands,omitempty"`
	// StreamLimit is how many bytes of one command's stdout (and of its
	// stderr) the init sends live; past it the init keeps only the last
	// TailLimit bytes and sends them when the command ends. A serial port
	// under TCG moves a few MB/s at best, so an unbounded flood would turn
	// into a timeout instead of a bounded result.
	StreamLimit int `json:"stream_limit"`
	TailLimit   int `json:"tail_limit"`
}

// Command is one command for the guest.
type Command struct {
	Name    string        `json:"name"`
	Path    string        `json:"path"`
	Args    []string      `json:"args,omitempty"`
	Env     []string      `json:"env,omitempty"`
	Dir     string        `json:"dir,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// Stdin is the guest path of a file to connect to the command's
	// standard input; empty: /dev/null.
	Stdin string `json:"stdin,omitempty"`
	// Prestart: when the init has a process of Path waiting (Spec.Prestart
	// of the parked guest), it releases that one into this command instead
	// of starting Path.
	Prestart bool `json:"prestart,omitempty"`
}

// The prestart protocol between the init and a prestarted process: the
// process finds PrestartEnv=PrestartFD in its environment, with fd
// PrestartFD a stream socket to the init. It warms up, writes
// PrestartReady, and reads one Release (JSON, then a newline): from then
// on it is its command, as if it had been started with the Release's
// arguments, environment and working directory.
const (
	PrestartEnv   = "VMTEST_PRESTART"
	PrestartFD    = 3
	PrestartReady = "ready\n"
)

// Release is what the init hands a prestarted process: its command.
type Release struct {
	// Args is the whole argv, Args[0] the command's path.
	Args []string `json:"args"`
	// Env is the whole environment, KEY=VALUE.
	Env []string `json:"env"`
	Dir string   `json:"dir,omitempty"`
}

// StdinDir holds the commands' standard input files, one per command that
// has one, named after its index.
const StdinDir = "/vmtest/stdin"

// Event kinds, in the order a healthy run sends them.
const (
	// Hello is the init's first act: the kernel phase ended.
	Hello = "hello"
	// Ready: mounts, rlimits and lo are set up; Warnings lists what was skipped.
	Ready = "ready"
	// Start: command Index begins.
	Start = "start"
	// Output: a chunk of command Index's stdout (FD 1) or stderr (FD 2).
	Output = "out"
	// Exit: command Index ended (Code, Err, Duration, Dropped).
	Exit = "exit"
	// Log: a diagnostic from the init itself.
	Log = "log"
	// Gap: the init left out Skipped bytes of FD's output here (the middle
	// of a flood); the Output events after it carry the stream's tail.
	Gap = "gap"
	// Bye: the init synced and is about to power off.
	Bye = "bye"
	// Alive: the init is scheduled; sent every AliveInterval from Ready on,
	// so the host can tell a guest that is busy from one that is stuck.
	Alive = "alive"
	// Parked: a Park init is set up (Warnings) and waits for Go.
	Parked = "parked"
	// Go (host to guest, on the same port): a restored guest's run is in
	// RunFile; Time is the host's clock (Unix ns), Seed host random bytes
	// for the kernel's RNG.
	Go = "go"
	// Resumed: the init took up Go (clock set, RNG reseeded) and reads its run.
	Resumed = "resumed"
)

// AliveInterval is how often the init sends Alive.
const AliveInterval = 5 * time.Second

// Event is one message from the guest init.
type Event struct {
	Kind  string `json:"e"`
	Index int    `json:"i,omitempty"`
	// FD is 1 (stdout) or 2 (stderr) for Output.
	FD   int    `json:"fd,omitempty"`
	Data []byte `json:"d,omitempty"`
	// Code is the exit status for Exit; -1 when the command did not run to
	// completion (killed, timed out, could not start).
	Code int `json:"code,omitempty"`
	// Err says why a command could not run ("timeout", "exec /x: ...").
	Err string `json:"err,omitempty"`
	// Skipped counts the output bytes a Gap left out.
	Skipped  int64         `json:"skipped,omitempty"`
	Duration time.Duration `json:"dur,omitempty"`
	// Uptime is the guest's CLOCK_BOOTTIME at Hello.
	Uptime   time.Duration `json:"uptime,omitempty"`
	Message  string        `json:"msg,omitempty"`
	Warnings []string      `json:"warn,omitempty"`
	// Time and Seed are Go's.
	Time int64  `json:"time,omitempty"`
	Seed []byte `json:"seed,omitempty"`
}

// Magic starts every frame.
const Magic = "KMX1 "

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode frames e as one line, newline included.
func Encode(e *Event) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	line := make([]byte, 0, len(Magic)+len(body)+10)
	line = append(line, Magic...)
	line = append(line, body...)
	line = append(line, ' ')
	line = strconv.AppendUint(line, uint64(crc32.Checksum(body, castagnoli)), 16)
	return append(line, '\n'), nil
}

// ErrNoFrame is returned by Decode for a line that holds no frame (kernel
// text, noise); ErrBadFrame for a frame that is damaged.
var (
	ErrNoFrame  = errors.New("no vmtest frame in line")
	ErrBadFrame = errors.New("damaged vmtest frame")
)

// Decode parses one line (with or without its "\r\n"/"\n"). Text before the
// magic is ignored, so a frame that starts mid-line still decodes.
func Decode(line []byte) (*Event, error) {
	i := bytes.Index(line, []byte(Magic))
	if i < 0 {
		return nil, ErrNoFrame
	}
	line = bytes.TrimRight(line[i+len(Magic):], "\r\n")
	sp := bytes.LastIndexByte(line, ' ')
	if sp < 0 {
		return nil, fmt.Errorf("%w: no checksum", ErrBadFrame)
	}
	body := line[:sp]
	sum, err := strconv.ParseUint(string(line[sp+1:]), 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: checksum %q: %v", ErrBadFrame, line[sp+1:], err)
	}
	if got := crc32.Checksum(body, castagnoli); uint64(got) != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadFrame, got, sum)
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	return &e, nil
}
