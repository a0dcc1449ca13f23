package vmtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// scanConsole feeds a console capture in small uneven chunks, as a pipe
// delivers it.
func scanConsole(t *testing.T, file string) (*consoleScanner, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "console", file))
	require.NoError(t, err)
	var live bytes.Buffer
	var lines []string
	sc := newConsoleScanner(&live, func(l string) { lines = append(lines, l) })
	for i := 0; len(b) > 0; i++ {
		n := min(len(b), 1+i*7%61)
		sc.Write(b[:n])
		b = b[n:]
	}
	sc.flush()
	assert.Equal(t, live.String(), string(sc.tail.Bytes()), "the live copy and the kept tail are the same text")
	return sc, live.String()
}

func TestConsoleCleanBoot(t *testing.T) {
	sc, live := scanConsole(t, "clean-boot.txt")
	assert.Equal(t, outcome.Pass, sc.Outcome())
	assert.Empty(t, sc.Excerpt())
	assert.NotContains(t, live, "\x1b", "terminal control sequences are stripped")
	assert.NotContains(t, live, "\r")
	assert.True(t, strings.HasPrefix(live, "SeaBIOS (version"), live)
	assert.Contains(t, live, "\nBooting from ROM...\n")
	assert.Equal(t, "[    2.059354] reboot: Power down", sc.lastLines(1))
}

func TestConsolePanic(t *testing.T) {
	sc, _ := scanConsole(t, "panic-sysrq-5.10.txt") // captured from a real guest: `echo c > /proc/sysrq-trigger`
	assert.Equal(t, outcome.KernelPanic, sc.Outcome())
	ex := sc.Excerpt()
	assert.Contains(t, ex, "sysrq: Trigger a crash", "context before the panic line")
	assert.Contains(t, ex, "Kernel panic - not syncing: sysrq triggered crash")
	assert.Contains(t, ex, "sysrq_handle_crash+0x16/0x20", "the trace")
	assert.Contains(t, ex, "Kernel Offset:")
}

// TestConsolePanicArm64: arm64 panics, captured from real guests
// (TestGuestThatPanicsArm64 with KMATRIX_CAPTURE=1): the PL011 console,
// "Call trace:" in lower case, and no "---[ end" line (panic=-1 reboots).
func TestConsolePanicArm64(t *testing.T) {
	for file, frame := range map[string]string{
		"panic-sysrq-arm64-6.1.txt": "__handle_sysrq+0x90/0x19c",
		"panic-sysrq-arm64-7.2.txt": "sysrq_handle_crash+0x24/0x38",
	} {
		t.Run(file, func(t *testing.T) {
			sc, _ := scanConsole(t, file)
			assert.Equal(t, outcome.KernelPanic, sc.Outcome())
			ex := sc.Excerpt()
			assert.Contains(t, ex, "sysrq: Trigger a crash", "context before the panic line")
			assert.Contains(t, ex, "Hardware name: linux,dummy-virt (DT)")
			assert.Contains(t, ex, "Call trace:")
			assert.Contains(t, ex, frame, "the trace")
			assert.Contains(t, ex, "Memory Limit: none", "the report to its last line")
		})
	}
}

// TestConsoleModuleFaultsArm64: a WARN and an oops on arm64, captured
// from real guests (Debian's bookworm 6.1 and sid 7.2 cloud-arm64 kernels
// on QEMU virt under TCG) loading kmod/testdata/warnonload and
// oopsonload, cross-built by kmod/build (TestCrossBuildArm64). arm64's
// oops opens with "Unable to handle kernel NULL pointer dereference" and
// "Internal error: Oops: <ESR>", its trace with "pc : " and "Call trace:".
func TestConsoleModuleFaultsArm64(t *testing.T) {
	for _, v := range []string{"6.1", "7.2"} {
		t.Run("warn-"+v, func(t *testing.T) {
			sc, _ := scanConsole(t, "warn-arm64-"+v+".txt")
			assert.Equal(t, outcome.Splat, sc.Outcome(), "a WARN is a splat: the module loaded")
			ex := sc.Excerpt()
			assert.Contains(t, ex, "------------[ cut here ]------------")
			assert.Contains(t, ex, "kmatrix fixture: a deliberate WARN at load", "the WARN's message, before its WARNING line")
			assert.Contains(t, ex, "pc : warnonload_init+0x20/")
			assert.Contains(t, ex, "Call trace:")
			assert.Contains(t, ex, "do_init_module+")
			assert.True(t, strings.HasSuffix(ex, "---[ end trace 0000000000000000 ]---\n"), "the excerpt ends with the report:\n%s", ex)
		})
		t.Run("oops-"+v, func(t *testing.T) {
			sc, _ := scanConsole(t, "oops-arm64-"+v+".txt")
			assert.Equal(t, outcome.Oops, sc.Outcome())
			ex := sc.Excerpt()
			assert.True(t, strings.HasPrefix(ex, "[") && strings.Contains(strings.SplitN(ex, "\n", 2)[0], "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000"), ex)
			assert.Contains(t, ex, "Internal error: Oops: 0000000096000007 [#1]")
			assert.Contains(t, ex, "Modules linked in: oopsonload(OE+) warnonload(OE)")
			assert.Contains(t, ex, "pc : oopsonload_init+")
			assert.Contains(t, ex, "Call trace:")
			assert.True(t, strings.HasSuffix(ex, "---[ end trace 0000000000000000 ]---\n"), "the excerpt ends with the report:\n%s", ex)
		})
	}
}

func TestConsoleOops(t *testing.T) {
	sc, _ := scanConsole(t, "oops-null-deref.txt")
	assert.Equal(t, outcome.Oops, sc.Outcome())
	ex := sc.Excerpt()
	assert.True(t, strings.HasPrefix(ex, "[    2.101234] random: crng init done\n[    3.456789] BUG: kernel NULL pointer dereference"), ex)
	assert.Contains(t, ex, "do_init_module+0x4a/0x1f0")
	assert.Contains(t, ex, "---[ end trace 0000000000000000 ]---")
	assert.NotContains(t, ex, "this line is after the oops", "the excerpt ends with the report")
}

func TestConsoleWarning(t *testing.T) {
	sc, _ := scanConsole(t, "warning.txt")
	assert.Equal(t, outcome.Splat, sc.Outcome())
	ex := sc.Excerpt()
	assert.True(t, strings.HasPrefix(ex, "[    4.000001] ------------[ cut here ]------------\n"), ex)
	assert.Contains(t, ex, "WARNING: CPU: 0 PID: 90 at kernel/trace/bpf_trace.c:1234")
	assert.NotContains(t, ex, "unrelated line")
}

func TestConsoleSoftLockupIsASplat(t *testing.T) {
	sc, _ := scanConsole(t, "soft-lockup.txt")
	assert.Equal(t, outcome.Splat, sc.Outcome(), "a soft lockup is a BUG: line, but a report, not a crash")
	assert.Contains(t, sc.Excerpt(), "stuck for 22s")
}

func TestConsoleOopsThenPanicKeepsBoth(t *testing.T) {
	sc, _ := scanConsole(t, "oops-then-panic.txt")
	assert.Equal(t, outcome.KernelPanic, sc.Outcome(), "the worst report wins")
	ex := sc.Excerpt()
	assert.Contains(t, ex, "general protection fault")
	assert.Contains(t, ex, "kmx_exit+0x20/0x40")
	assert.Contains(t, ex, "Kernel panic - not syncing: Fatal exception")
}

func TestClassifyLine(t *testing.T) {
	for line, want := range map[string]outcome.Outcome{
		"[ 1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200": outcome.KernelPanic,
		"[ 1.0] BUG: unable to handle page fault for address: ffffffffc0000000":          outcome.Oops,
		"[ 1.0] kernel BUG at mm/slub.c:123!":                                            outcome.Oops,
		"[ 1.0] invalid opcode: 0000 [#1] SMP NOPTI":                                     outcome.Oops,
		"[ 1.0] BUG: sleeping function called from invalid context at mm/slab.h:1":       outcome.Splat,
		"[ 1.0] rcu: INFO: rcu_preempt self-detected stall on CPU":                       outcome.Splat,
		"[ 1.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.":            outcome.Splat,
		"[ 1.0] UBSAN: shift-out-of-bounds in kernel/foo.c:1:2":                          outcome.Splat,
		// 7.2's WARN line, from a real guest (kmod/testdata/warnonload).
		"[    2.715933] WARNING: warnonload.c:9 at warnonload_init+0x10/0xff0 [warnonload], CPU#0: g/98": outcome.Splat,
		// arm64's oops lines, as arch/arm64/mm/fault.c and kernel/traps.c print them.
		"[    5.1] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000": outcome.Oops,
		"[    5.1] Unable to handle kernel paging request at virtual address ffff800000000000":           outcome.Oops,
		"[    5.1] Internal error: Oops: 0000000096000045 [#1] SMP":                                      outcome.Oops,
		"[    5.1] Internal error: Oops - BUG: 00000000f2000800 [#1] SMP":                                outcome.Oops,
	} {
		got, ok := classifyLine(line)
		assert.True(t, ok, line)
		assert.Equal(t, want, got, line)
	}
	for _, line := range []string{
		"[ 0.5] tsc: Unable to calibrate against PIT",
		"[ 1.0] ACPI: no WARNING here, just text",
		"[ 1.0] bpf: program loaded",
		"[ 1.0] WARNING: the BIOS has corrupted hw-PMU resources (MSR 38d is 330)",
	} {
		_, ok := classifyLine(line)
		assert.False(t, ok, line)
	}
}

func TestConsoleBounded(t *testing.T) {
	sc := newConsoleScanner(nil, nil)
	line := []byte(strings.Repeat("x", 99) + "\n")
	for i := 0; i < 100000; i++ { // 10 MB of console
		sc.Write(line)
	}
	assert.Len(t, sc.tail.Bytes(), consoleTailSize)
	sc.Write(bytes.Repeat([]byte("y"), 1<<20)) // a line that never ends
	assert.LessOrEqual(t, cap(sc.partial), 2<<20)
}
