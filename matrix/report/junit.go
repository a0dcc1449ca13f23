package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kmatrix/kmatrix/internal/outcome"
)

// The JUnit XML shape most consumers agree on (Jenkins, GitLab, GitHub test
// reporters, gotestsum's): <testsuites> of <testsuite> of <testcase>, a
// <failure> for a check that failed, an <error> for one that could not be
// judged, <skipped> for one that did not apply.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// Bodies are CDATA so logs keep their line breaks in the file (chardata
// would turn every newline into &#xA;); cleanLog already dropped the
// characters XML forbids, and encoding/xml splits any "]]>" in the text.
type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

// WriteJUnit renders r as JUnit XML: one <testsuite> per kernel (its facts
// as properties), one <testcase> per cell with classname the payload and
// name the check. A payload's failure (fail, build/load/attach errors, not
// attached, a crash, a timeout) is a <failure> whose type is the outcome;
// an infra-error is an <error>, because it says nothing about the payload;
// a skip is <skipped> with its reason. A failure an expectation declares is
// <skipped message="expected ...">, and a pass an expectation says fails is
// a <failure type="unexpected-pass">.
func (r *Report) WriteJUnit(w io.Writer) error {
	all := junitSuites{Name: "kmatrix"}
	var total int64
	byKernel := make(map[string][]Cell)
	for _, c := range r.Cells {
		byKernel[c.Kernel] = append(byKernel[c.Kernel], c)
	}
	for _, k := range r.Kernels {
		s := junitSuite{
			Name:      k.Name,
			Timestamp: r.GeneratedAt.UTC().Format("2006-01-02T15:04:05"),
		}
		for _, p := range []struct{ n, v string }{
			{"arch", k.Arch}, {"release", k.Release}, {"version", k.Version}, {"suite", k.Suite},
			{"package", k.Package}, {"package_version", k.PackageVersion},
			{"sha256", k.SHA256}, {"compiler", k.Compiler}, {"btf", fmt.Sprint(k.BTF)}, {"accel", k.Accel},
		} {
			if p.v != "" {
				s.Properties = append(s.Properties, junitProperty{p.n, p.v})
			}
		}
		var ms int64
		for _, c := range byKernel[k.Name] {
			tc := junitCase{Classname: c.Payload, Name: c.Check, Time: seconds(c.DurationMS)}
			ms += c.DurationMS
			msg := oneLine(c.Evidence.Message, 0)
			if msg == "" {
				msg = string(c.Outcome)
			}
			body := cleanLog(c.Evidence.Log)
			switch {
			case c.ExpectedFailure():
				// Known and declared: not a failure, but not a pass either.
				tc.Skipped = &junitSkipped{Message: fmt.Sprintf("expected %s (%s: %s)", c.Outcome, c.Expected.Reason, msg)}
				s.Skipped++
			case c.UnexpectedPass():
				tc.Failure = &junitProblem{Message: expectNote(c), Type: "unexpected-pass", Body: body}
				s.Failures++
			case c.Outcome == outcome.Skip:
				tc.Skipped = &junitSkipped{Message: msg}
				s.Skipped++
			case c.Outcome == outcome.InfraError:
				tc.Error = &junitProblem{Message: msg, Type: string(c.Outcome), Body: body}
				s.Errors++
			case c.Outcome.Failed():
				tc.Failure = &junitProblem{Message: msg, Type: string(c.Outcome), Body: body}
				s.Failures++
			}
			tc.SystemOut = &junitText{junitFacts(c)}
			s.Cases = append(s.Cases, tc)
		}
		s.Tests = len(s.Cases)
		s.Time = seconds(ms)
		total += ms
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	all.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// junitFacts lists a cell's stage and facts, one "name: value" per line,
// for the test's output pane.
func junitFacts(c Cell) string {
	var b strings.Builder
	if c.Stage != "" {
		fmt.Fprintf(&b, "stage: %s\n", c.Stage)
	}
	fmt.Fprintf(&b, "outcome: %s\n", c.Outcome)
	if c.Outcome == outcome.Pass && c.Evidence.Message != "" {
		fmt.Fprintf(&b, "message: %s\n", oneLine(c.Evidence.Message, 0))
	}
	keys := make([]string, 0, len(c.Evidence.Facts))
	for k := range c.Evidence.Facts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, oneLine(c.Evidence.Facts[k], 0))
	}
	return b.String()
}

func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }
