package vmtest

import (
	"bytes"
	"io"
	"regexp"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// consoleRule maps a console line to an outcome. The first rule that
// matches wins, so the specific "BUG:" splats come before the general oops.
type consoleRule struct {
	re      *regexp.Regexp
	outcome outcome.Outcome
	// stall names a report that means a task or CPU is stuck (the guest
	// will not get further by itself): the run's watchdog stops it.
	stall string
}

var consoleRules = []consoleRule{
	{regexp.MustCompile(`Kernel panic - not syncing`), outcome.KernelPanic, ""},
	// Lockups, stalls and hung tasks are reports, not crashes: the kernel
	// carries on (unless told to panic on them).
	{regexp.MustCompile(`BUG: soft lockup|watchdog: BUG: soft lockup`), outcome.Splat, "soft lockup"},
	{regexp.MustCompile(`BUG: workqueue lockup`), outcome.Splat, "workqueue lockup"},
	{regexp.MustCompile(`rcu: INFO: .*detected stall|INFO: rcu_\w+ (self-)?detected stall|rcu_\w+ self-detected stall`), outcome.Splat, "RCU stall"},
	{regexp.MustCompile(`INFO: task \S+ blocked for more than`), outcome.Splat, "hung task"},
	// WARN's first line; 7.x kernels (seen on 7.2, not on 6.12) print
	// "WARNING: file.c:9 at func+0x10/0x20 [mod], CPU#0: comm/98" instead
	// of "WARNING: CPU: 0 PID: 98 at file.c:9 func+0x10/0x20 [mod]", and
	// without the "cut here" line before it.
	{regexp.MustCompile(`WARNING: CPU: \d+ PID: \d+ at |WARNING: at |WARNING: \S+:\d+ at .*CPU#\d+: `), outcome.Splat, ""},
	{regexp.MustCompile(`BUG: sleeping function called from invalid context|BUG: scheduling while atomic|UBSAN: `), outcome.Splat, ""},
	{regexp.MustCompile(`Oops: |Oops\[|general protection fault|kernel BUG at |invalid opcode: |double fault: |BUG: `), outcome.Oops, ""},
	// arm64 (arch/arm64/mm/fault.c, arch/arm64/kernel/traps.c): a bad
	// kernel access first prints "Unable to handle kernel NULL pointer
	// dereference at virtual address 0000000000000000" (or "... paging
	// request at ..."), then die() prints "Internal error: Oops:
	// 0000000096000005 [#1] SMP", or "Internal error: Oops - BUG: ..." for
	// BUG(), before "pc : ", "lr : " and a lower-case "Call trace:".
	{regexp.MustCompile(`Unable to handle kernel |Internal error: `), outcome.Oops, ""},
}

// classifyLine returns the outcome a console line reports, if any.
func classifyLine(line string) (outcome.Outcome, bool) {
	r := matchRule(line)
	if r == nil {
		return "", false
	}
	return r.outcome, true
}

func matchRule(line string) *consoleRule {
	for i := range consoleRules {
		if consoleRules[i].re.MatchString(line) {
			return &consoleRules[i]
		}
	}
	return nil
}

// Terminal control sequences (SeaBIOS resets the screen) would garble a
// log and reset the terminal of whoever watches the live console.
var escapeRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[@-Z\\-_]|c)`)

const (
	excerptContext  = 3         // lines kept before a trigger ("cut here", "sysrq: Trigger a crash")
	excerptMaxLines = 150       // per block: an oops with its trace and modules list
	excerptMaxBytes = 48 << 10  // all blocks together
	consoleTailSize = 512 << 10 // Result.Console
)

// consoleScanner reads the kernel console: it keeps a bounded tail, copies
// it live, and finds the crash and warning reports in it with their text.
type consoleScanner struct {
	tail   *ring
	live   io.Writer
	onLine func(line string)
	// onFinding, when set, is told of every line that reports a crash or
	// a warning, as it arrives.
	onFinding func(outcome.Outcome)
	// onStall, when set, is told of every stall report (soft lockup, hung
	// task, RCU stall): its kind and its line.
	onStall func(kind, line string)

	partial []byte
	recent  []string // the last excerptContext lines, for context
	block   int      // lines still to capture in the current block
	excerpt strings.Builder
	worst   outcome.Outcome
}

func newConsoleScanner(live io.Writer, onLine func(string)) *consoleScanner {
	return &consoleScanner{tail: newRing(consoleTailSize), live: live, onLine: onLine, worst: outcome.Pass}
}

func (c *consoleScanner) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			if len(c.partial) > 64<<10 { // a line that never ends
				c.line(c.partial)
				c.partial = c.partial[:0]
			}
			break
		}
		c.partial = append(c.partial, p[:i+1]...)
		c.line(c.partial)
		c.partial = c.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush handles an unterminated last line.
func (c *consoleScanner) flush() {
	if len(c.partial) > 0 {
		c.line(append(c.partial, '\n'))
		c.partial = c.partial[:0]
	}
}

func (c *consoleScanner) line(raw []byte) {
	clean := escapeRE.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r"), nil), nil)
	c.tail.Write(clean)
	if c.live != nil {
		c.live.Write(clean)
	}
	s := strings.TrimRight(string(clean), "\n")
	if c.onLine != nil {
		c.onLine(s)
	}
	if r := matchRule(s); r != nil {
		o := r.outcome
		if r.stall != "" && c.onStall != nil {
			c.onStall(r.stall, s)
		}
		c.worst = outcome.Worst(c.worst, o)
		if c.onFinding != nil {
			c.onFinding(o)
		}
		if c.block == 0 {
			if c.excerpt.Len() > 0 {
				c.add("...")
			}
			for _, r := range c.recent {
				c.add(r)
			}
		}
		c.block = excerptMaxLines
	}
	if c.block > 0 {
		c.add(s)
		c.block--
		if strings.Contains(s, "---[ end ") {
			c.block = 0
		}
	}
	c.recent = append(c.recent, s)
	if len(c.recent) > excerptContext {
		c.recent = c.recent[1:]
	}
}

func (c *consoleScanner) add(s string) {
	if c.excerpt.Len()+len(s)+1 > excerptMaxBytes {
		c.block = 0
		return
	}
	c.excerpt.WriteString(s)
	c.excerpt.WriteByte('\n')
}

// Outcome is the worst report seen (Pass when none).
func (c *consoleScanner) Outcome() outcome.Outcome { return c.worst }

// Excerpt is the text of the reports seen.
func (c *consoleScanner) Excerpt() string { return c.excerpt.String() }

// lastLines returns the last n lines of the console tail.
func (c *consoleScanner) lastLines(n int) string {
	b := bytes.TrimRight(c.tail.Bytes(), "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
