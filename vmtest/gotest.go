package vmtest

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// TestResult is one test or subtest of a go test binary's run.
type TestResult struct {
	// Name is the full name, "TestLoad/kprobe" for a subtest.
	Name string
	// Outcome is outcome.Pass, outcome.Fail or outcome.Skip.
	Outcome outcome.Outcome
	// Output is what the test printed (its t.Log lines, and for a crash
	// the panic and goroutine dump).
	Output  string
	Elapsed time.Duration
	// Ended reports whether the binary reported the test's end; a test
	// that never ended (the binary crashed, the kernel died, a timeout)
	// has Outcome Fail and a note saying so in Output.
	Ended bool
}

// TestFlags are the flags a Go test binary runs with in a guest so that it
// reports structured events: -test.v=test2json marks every line the
// testing package itself writes (=== RUN, --- PASS, ...) with a leading
// ^V (0x16), so a test's own output can never be mistaken for one, and
// names the test each block of output belongs to. It is the stream
// cmd/test2json reads; ParseGoTest and TestStream read it the same way.
var TestFlags = []string{"-test.v=test2json"}

// TestEvent is one event of a test binary's run, with the actions of
// cmd/test2json: "run", "pause", "cont", "pass", "fail", "skip", "output".
type TestEvent struct {
	Action string
	// Test is the full test name; empty for output of no test.
	Test string
	// Elapsed is the test's duration, for pass, fail and skip.
	Elapsed time.Duration
	// Output is one line of output (with its newline), for "output".
	Output string
}

// framing is the mark of the testing package's own lines under
// -test.v=test2json.
const framing = '\x16'

// TestStream decodes a test binary's -test.v=test2json stdout as it is
// written, calling Event for each event. It is an io.Writer, so it can sit
// on a command's live output (vmtest.Command.Stdout).
type TestStream struct {
	// Event is called for every event, in order.
	Event func(TestEvent)

	current string // the test that output belongs to
	partial []byte
}

func (s *TestStream) Write(b []byte) (int, error) {
	s.partial = append(s.partial, b...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.line(string(s.partial[:i+1]))
		s.partial = s.partial[i+1:]
	}
	return len(b), nil
}

// Flush decodes a last line that has no newline.
func (s *TestStream) Flush() {
	if len(s.partial) > 0 {
		s.line(string(s.partial) + "\n")
		s.partial = nil
	}
}

func (s *TestStream) emit(e TestEvent) {
	if s.Event != nil {
		s.Event(e)
	}
}

func (s *TestStream) line(l string) {
	if len(l) == 0 || l[0] != framing {
		s.emit(TestEvent{Action: "output", Test: s.current, Output: l})
		return
	}
	f := strings.TrimRight(l[1:], "\r\n")
	// "=== RUN   Name", "=== PAUSE Name", "=== CONT  Name", "=== NAME  Name"
	if verb, name, ok := strings.Cut(strings.TrimPrefix(f, "=== "), " "); ok && strings.HasPrefix(f, "=== ") {
		name = strings.TrimSpace(name)
		s.current = name
		switch verb {
		case "RUN":
			s.emit(TestEvent{Action: "run", Test: name})
		case "PAUSE":
			s.emit(TestEvent{Action: "pause", Test: name})
		case "CONT":
			s.emit(TestEvent{Action: "cont", Test: name})
		}
		return
	}
	// "--- PASS: Name (0.01s)", also indented for subtests.
	if r := strings.TrimLeft(f, " "); strings.HasPrefix(r, "--- ") {
		verb, rest, _ := strings.Cut(r[4:], ": ")
		name, dur, _ := strings.Cut(rest, " (")
		secs, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(dur, ")"), "s"), 64)
		action := map[string]string{"PASS": "pass", "FAIL": "fail", "SKIP": "skip"}[verb]
		if action == "" {
			return // --- BENCH and the like: not tests
		}
		s.current = name
		s.emit(TestEvent{Action: action, Test: name, Elapsed: time.Duration(secs * float64(time.Second))})
		return
	}
	// The binary's closing "PASS" / "FAIL": output of no test.
	s.current = ""
}

// ParseGoTest reads the stdout and stderr of a go test binary run with
// TestFlags. Tests come in the order they started. A binary that died
// mid-way (a panic, a kernel crash, a timeout) leaves tests without an end:
// they are failed, with what the binary wrote to stderr (the panic and
// goroutine dump) or a note that no result was reported. The test that
// panicked, which the testing package reports failed just before the
// panic, gets the panic text too.
func ParseGoTest(stdout, stderr []byte) []TestResult {
	var (
		results []TestResult
		index   = map[string]int{}
		outs    []strings.Builder
		last    = -1 // the last test that started or ended
	)
	get := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(results)
		results = append(results, TestResult{Name: name})
		outs = append(outs, strings.Builder{})
		return len(results) - 1
	}
	st := &TestStream{Event: func(e TestEvent) {
		switch e.Action {
		case "run":
			last = get(e.Test)
		case "pass", "fail", "skip":
			i := get(e.Test)
			results[i].Outcome = outcome.Outcome(e.Action)
			results[i].Elapsed = e.Elapsed
			results[i].Ended = true
			last = i
		case "output":
			if e.Test != "" {
				outs[get(e.Test)].WriteString(e.Output)
			}
		}
	}}
	st.Write(stdout)
	st.Flush()
	crash := string(stderr)
	for i := range results {
		r := &results[i]
		r.Output = outs[i].String()
		if r.Ended {
			if crash != "" && i == last && r.Outcome == outcome.Fail {
				r.Output += crash
			}
			continue
		}
		r.Outcome = outcome.Fail
		if crash != "" {
			r.Output += crash
		} else {
			r.Output += "[vmtest: the test binary ended without a result for this test]\n"
		}
	}
	return results
}

// Replay reports results as subtests of t, nested as they were in the
// guest, each logging its output and failing or skipping as it did.
func Replay(t *testing.T, results []TestResult) {
	t.Helper()
	byName := map[string]int{}
	for i, r := range results {
		byName[r.Name] = i
	}
	children := map[int][]int{}
	var roots []int
	for i, r := range results {
		parent := -1
		for p := r.Name; ; {
			j := strings.LastIndexByte(p, '/')
			if j < 0 {
				break
			}
			p = p[:j]
			if k, ok := byName[p]; ok {
				parent = k
				break
			}
		}
		if parent < 0 {
			roots = append(roots, i)
		} else {
			children[parent] = append(children[parent], i)
		}
	}
	var replay func(t *testing.T, i int, prefix string)
	replay = func(t *testing.T, i int, prefix string) {
		r := results[i]
		t.Run(strings.TrimPrefix(r.Name, prefix), func(t *testing.T) {
			if out := strings.TrimRight(r.Output, "\n"); out != "" {
				t.Log("\n" + out)
			}
			for _, c := range children[i] {
				replay(t, c, r.Name+"/")
			}
			switch r.Outcome {
			case outcome.Fail:
				t.Errorf("%s failed in the guest (%v)", r.Name, r.Elapsed)
			case outcome.Skip:
				t.Skipf("%s skipped in the guest", r.Name)
			}
		})
	}
	for _, i := range roots {
		replay(t, i, "")
	}
}
