package vmtest

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// TestResult is one test or subtest of a go test binary's -test.v output.
type TestResult struct {
	// Name is the full name, "TestLoad/kprobe" for a subtest.
	Name string
	// Outcome is outcome.Pass, outcome.Fail or outcome.Skip.
	Outcome outcome.Outcome
	// Output is what the test printed (its t.Log lines, and for a crash
	// the panic and goroutine dump).
	Output  string
	Elapsed time.Duration
}

var (
	runLineRE    = regexp.MustCompile(`^=== (RUN|PAUSE|CONT|NAME)\s+(\S+)\s*$`)
	resultLineRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \((\d+(?:\.\d+)?)s\)`)
	// The end of a test binary's run; output after it belongs to no test.
	summaryLineRE = regexp.MustCompile(`^(PASS|FAIL|ok\s|exit status \d+|FAIL\s)`)
)

// ParseGoTest reads the -test.v output of a go test binary. Tests come in
// the order they started. A binary that died mid-way (a panic, a kernel
// crash, a timeout) leaves tests without a result line: they are failed,
// with the panic text (everything from "panic:" on) or a note that no
// result was reported. The test that panicked (which the testing package
// reports FAIL just before the panic) gets the panic text too.
func ParseGoTest(output []byte) []TestResult {
	var (
		results []TestResult
		index   = map[string]int{}
		done    = map[string]bool{}
		current = -1
		panicAt = -1 // offset in lines of a panic, when the binary crashed
	)
	get := func(name string) int {
		if i, ok := index[name]; ok {
			return i
		}
		index[name] = len(results)
		results = append(results, TestResult{Name: name})
		return len(results) - 1
	}
	var outs []strings.Builder
	lines := strings.Split(strings.ReplaceAll(string(output), "\r\n", "\n"), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for n, line := range lines {
		if m := runLineRE.FindStringSubmatch(line); m != nil {
			current = get(m[2])
			continue
		}
		if m := resultLineRE.FindStringSubmatch(line); m != nil {
			i := get(m[2])
			results[i].Outcome = map[string]outcome.Outcome{"PASS": outcome.Pass, "FAIL": outcome.Fail, "SKIP": outcome.Skip}[m[1]]
			secs, _ := strconv.ParseFloat(m[3], 64)
			results[i].Elapsed = time.Duration(secs * float64(time.Second))
			done[m[2]] = true
			current = i
			continue
		}
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			panicAt = n
			break
		}
		if summaryLineRE.MatchString(line) {
			current = -1
			continue
		}
		if current >= 0 {
			for len(outs) < len(results) {
				outs = append(outs, strings.Builder{})
			}
			outs[current].WriteString(line)
			outs[current].WriteByte('\n')
		}
	}
	for len(outs) < len(results) {
		outs = append(outs, strings.Builder{})
	}
	crash := ""
	if panicAt >= 0 {
		crash = strings.Join(lines[panicAt:], "\n") + "\n"
	}
	for i := range results {
		r := &results[i]
		r.Output = outs[i].String()
		if done[r.Name] {
			// A test that panics is reported FAIL before the panic is
			// printed: the panic is its output.
			if crash != "" && i == current {
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
