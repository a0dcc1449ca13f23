package matrix

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
	"github.com/kmatrix/kmatrix/vmtest"
)

// Guest tests report facts for the report with log lines of the form
//
//	kmatrix-evidence KEY=VALUE
//
// A fact named "outcome" overrides the outcome a failing check would get
// from its stage (e.g. a behaviour test that saw a CO-RE error reports
// load-error itself).
var evidenceRE = regexp.MustCompile(`kmatrix-evidence ([A-Za-z0-9_.:/-]+)=(.*)`)

// checkStage maps a guest test to the stage it exercises, from its name:
// TestLoad → load, TestAttach → attach, TestUnload/TestDetach → unload,
// anything else is behaviour. The stage decides the outcome class of a
// failure: a failed load is a load-error, a failed behaviour check a fail.
func checkStage(check string) string {
	c := strings.ToLower(check)
	switch {
	case strings.HasPrefix(c, "build"):
		return "build"
	case strings.HasPrefix(c, "load"):
		return "load"
	case strings.HasPrefix(c, "attach"):
		return "attach"
	case strings.HasPrefix(c, "unload"), strings.HasPrefix(c, "detach"):
		return "unload"
	}
	return "behave"
}

func failureFor(stage string) outcome.Outcome {
	switch stage {
	case "build":
		return outcome.BuildError
	case "load":
		return outcome.LoadError
	case "attach":
		return outcome.AttachError
	}
	return outcome.Fail
}

// checkName turns a Go test name into a matrix column: "TestExecEvents" → "ExecEvents".
func checkName(test string) string { return strings.TrimPrefix(test, "Test") }

// testCells turns one payload's guest `go test -v` results into cells, one
// per expected top-level test. A test the guest never reported (the binary
// crashed, the kernel panicked, the VM timed out) still gets its cell, with
// the outcome of what stopped it (missing), so the matrix never has holes.
func testCells(kernel, payload string, expected []string, results []vmtest.TestResult, missing outcome.Outcome, why string) []report.Cell {
	byName := map[string]vmtest.TestResult{}
	subs := map[string][]vmtest.TestResult{}
	for _, r := range results {
		top, _, nested := strings.Cut(r.Name, "/")
		if nested {
			subs[top] = append(subs[top], r)
		} else {
			byName[r.Name] = r
		}
	}
	// Tests the guest ran that the host did not expect (a newer binary)
	// are reported too rather than dropped.
	names := append([]string(nil), expected...)
	for _, r := range results {
		if _, nested := cutTop(r.Name); !nested && !contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	var cells []report.Cell
	for _, name := range names {
		check := checkName(name)
		stage := checkStage(check)
		c := report.Cell{Kernel: kernel, Payload: payload, Check: check, Stage: stage}
		r, ran := byName[name]
		if !ran {
			c.Outcome = missing
			c.Evidence.Message = fmt.Sprintf("%s did not report a result: %s", name, why)
			cells = append(cells, c)
			continue
		}
		c.DurationMS = r.Elapsed.Milliseconds()
		facts := parseFacts(r.Output)
		for _, s := range subs[name] {
			for k, v := range parseFacts(s.Output) {
				facts[k] = v
			}
		}
		if len(facts) > 0 {
			c.Evidence.Facts = facts
		}
		switch r.Outcome {
		case outcome.Pass:
			c.Outcome = outcome.Pass
		case outcome.Skip:
			c.Outcome = outcome.Skip
			c.Evidence.Message = firstMeaningfulLine(r.Output)
		default:
			c.Outcome = failureFor(stage)
			if o, err := outcome.Parse(facts["outcome"]); err == nil {
				c.Outcome = o
			}
			c.Evidence.Message = failureMessage(r, subs[name])
			c.Evidence.Log = strings.TrimSpace(r.Output)
		}
		delete(c.Evidence.Facts, "outcome")
		cells = append(cells, c)
	}
	return cells
}

func parseFacts(output string) map[string]string {
	facts := map[string]string{}
	for _, m := range evidenceRE.FindAllStringSubmatch(output, -1) {
		facts[m[1]] = strings.TrimSpace(m[2])
	}
	return facts
}

// failureMessage picks the line a person reads first: testify's "Error:"
// line of the first failing subtest, or the first non-evidence line.
func failureMessage(r vmtest.TestResult, subs []vmtest.TestResult) string {
	for _, s := range subs {
		if s.Outcome == outcome.Fail {
			return s.Name + ": " + errorLine(s.Output)
		}
	}
	return errorLine(r.Output)
}

func errorLine(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "Error:") {
			msg := strings.TrimSpace(strings.TrimPrefix(t, "Error:"))
			// testify puts the message on the next lines when it is long.
			for _, next := range lines[i+1:] {
				n := strings.TrimSpace(next)
				if n == "" || strings.HasSuffix(n, ":") && !strings.Contains(n, " ") || strings.HasPrefix(n, "Test:") || strings.HasPrefix(n, "Messages:") {
					break
				}
				msg += " " + n
				if len(msg) > 300 {
					break
				}
			}
			return msg
		}
	}
	return firstMeaningfulLine(out)
}

func firstMeaningfulLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "kmatrix-evidence") || strings.HasPrefix(t, "Error Trace:") {
			continue
		}
		// Strip the "file_test.go:42: " prefix testing adds to t.Log lines.
		if i := strings.Index(t, ".go:"); i > 0 {
			if j := strings.Index(t[i+4:], ": "); j >= 0 {
				t = t[i+4+j+2:]
			}
		}
		return t
	}
	return ""
}

func cutTop(name string) (string, bool) {
	top, _, nested := strings.Cut(name, "/")
	return top, nested
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func ms(d time.Duration) int64 { return d.Milliseconds() }
