// Package expect declares known outcomes of the matrix: "the tcx program
// cannot attach before Linux 6.6", "this check fails on debian-sid until
// upstream fixes it". An expectation selects cells by kernel (a name glob,
// or a version range such as "< 6.6"), payload and check (globs), names the
// outcomes expected (by default any failure that is the payload's), and
// says why. Applied to a report, a matching cell keeps its real outcome
// and is marked expected (report.Cell.Expected), so it no longer fails the
// run; a cell an expectation says fails but that passed is an unexpected
// pass, and fails the run until the expectation is narrowed or removed.
//
// Expectations come from a YAML file (kmatrix run --expect FILE) or from
// the expectations: section of a project file (FromNode); both have the
// same schema:
//
//	expectations:                # or the list alone, at the top of the file
//	  - kernel: "< 6.6"          # or ">= 5.15, < 6.1", or a name glob: debian-bullseye, debian-*
//	    payload: "bpf:tcx_*"     # glob; default *
//	    check: "count_ingress/*" # glob; default *
//	    outcome: attach-error    # or a list; default: any failure but infra-error
//	    reason: tcx needs Linux 6.6 (CONFIG_NET_XGRESS)
//
// In globs, * matches any run of characters ("/" included: check names
// hold "/") and ? one character. A version bound is compared at the
// precision it is written in: "< 6.6" holds for 6.1.192 and not for 6.6.3,
// "= 6.1" for every 6.1.x.
package expect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kmatrix/kmatrix/matrix/outcome"
	"github.com/kmatrix/kmatrix/matrix/report"
)

// Expectation is one declared known outcome.
type Expectation struct {
	// Kernel is a kernel name glob or a version range; Payload and Check
	// are globs. An empty one matches everything.
	Kernel, Payload, Check string
	// Outcomes are the outcomes expected; empty means any failure that is
	// the payload's (every failing outcome but infra-error).
	Outcomes []outcome.Outcome
	// Reason says why, in words the report shows next to the cell.
	Reason string
	// File and Line say where it was declared.
	File string
	Line int

	versions           []bound // Kernel as a version range; nil for a name glob
	kernelRE           *regexp.Regexp
	payloadRE, checkRE *regexp.Regexp
}

// Set is a list of expectations; the first that matches a cell applies.
type Set []*Expectation

// Error is a problem with an expectation, at a line of its file.
type Error struct {
	File  string
	Line  int
	Field string // the field at fault, when one is
	Msg   string // what is wrong and what to write instead
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: expectations: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: expectations: %s", loc, e.Msg)
}

// Load reads an expectations file.
func Load(path string) (Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("expectations: %w", err)
	}
	return Parse(path, b)
}

// Parse parses an expectations file's contents: a list of expectations,
// or a mapping whose only field is "expectations" holding that list. file
// names the source in errors.
func Parse(file string, data []byte) (Set, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Msg: "the file is empty; want a list of expectations (kernel, payload, check, outcome, reason)"}
		}
		return nil, &Error{File: file, Line: yamlErrLine(err), Msg: "not valid YAML: " + err.Error()}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Line: 1, Msg: "the file is empty; want a list of expectations"}
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			k := root.Content[i]
			if k.Value != "expectations" {
				return nil, &Error{File: file, Line: k.Line, Field: k.Value, Msg: `unknown top-level field; the only one is "expectations" (or write the list alone)`}
			}
			if list != nil {
				return nil, &Error{File: file, Line: k.Line, Field: k.Value, Msg: "given twice"}
			}
			list = root.Content[i+1]
		}
		if list == nil {
			return nil, &Error{File: file, Line: root.Line, Msg: `want a list of expectations, or an "expectations" field holding one`}
		}
		root = list
	}
	return FromNode(file, root)
}

// FromNode parses the list of expectations in n: the value of a project
// file's expectations: field. file names the source in errors; lines are
// the node's.
func FromNode(file string, n *yaml.Node) (Set, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil // "expectations:" with nothing under it
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &Error{File: file, Line: n.Line, Msg: "want a list of expectations, each a mapping with kernel, payload, check, outcome and reason"}
	}
	var s Set
	for i, item := range n.Content {
		e, err := parseOne(file, i, item)
		if err != nil {
			return nil, err
		}
		s = append(s, e)
	}
	return s, nil
}

const known = "kernel, payload, check, outcome, reason"

func parseOne(file string, i int, n *yaml.Node) (*Expectation, error) {
	at := fmt.Sprintf("[%d]", i)
	if n.Kind != yaml.MappingNode {
		return nil, &Error{File: file, Line: n.Line, Field: at, Msg: "want a mapping (" + known + ")"}
	}
	e := &Expectation{File: file, Line: n.Line}
	seen := map[string]int{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, v := n.Content[j], n.Content[j+1]
		field := at + "." + k.Value
		bad := func(msg string) error { return &Error{File: file, Line: v.Line, Field: field, Msg: msg} }
		if prev, dup := seen[k.Value]; dup {
			return nil, &Error{File: file, Line: k.Line, Field: field, Msg: fmt.Sprintf("given twice (also on line %d); give each field once", prev)}
		}
		seen[k.Value] = k.Line
		switch k.Value {
		case "kernel", "payload", "check", "reason":
			if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
				return nil, bad("want a non-empty string")
			}
			val := strings.TrimSpace(v.Value)
			switch k.Value {
			case "kernel":
				e.Kernel = val
				if isRange(val) {
					b, err := parseRange(val)
					if err != nil {
						return nil, bad(err.Error())
					}
					e.versions = b
				} else {
					e.kernelRE = glob(val)
				}
			case "payload":
				e.Payload, e.payloadRE = val, glob(val)
			case "check":
				e.Check, e.checkRE = val, glob(val)
			case "reason":
				e.Reason = val
			}
		case "outcome":
			var vals []*yaml.Node
			switch v.Kind {
			case yaml.ScalarNode:
				vals = []*yaml.Node{v}
			case yaml.SequenceNode:
				vals = v.Content
			}
			if len(vals) == 0 {
				return nil, bad("want an outcome or a list of outcomes, e.g. attach-error or [load-error, attach-error]")
			}
			for _, x := range vals {
				o, err := parseOutcome(x)
				if err != nil {
					return nil, &Error{File: file, Line: x.Line, Field: field, Msg: err.Error()}
				}
				if !slices.Contains(e.Outcomes, o) {
					e.Outcomes = append(e.Outcomes, o)
				}
			}
		default:
			return nil, &Error{File: file, Line: k.Line, Field: field, Msg: "unknown field; known: " + known}
		}
	}
	switch {
	case e.Reason == "":
		return nil, &Error{File: file, Line: e.Line, Field: at + ".reason", Msg: "missing: say why this outcome is expected (the report shows it next to the cell)"}
	case e.Kernel == "" && e.Payload == "" && e.Check == "":
		return nil, &Error{File: file, Line: e.Line, Field: at, Msg: `selects every cell: give a kernel, payload or check (kernel: "*" if you mean every kernel)`}
	}
	return e, nil
}

func parseOutcome(n *yaml.Node) (outcome.Outcome, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("want an outcome name, e.g. attach-error")
	}
	o, err := outcome.Parse(strings.TrimSpace(n.Value))
	if err != nil {
		return "", err
	}
	switch o {
	case outcome.Pass:
		return "", errors.New("pass is not expected, it is the default: an expectation declares a known failure (or skip)")
	case outcome.InfraError:
		return "", errors.New("infra-error is kmatrix's own failure, not your payload's: it cannot be expected; fix the infrastructure, or retry (exit code 4)")
	}
	return o, nil
}

// Matches reports whether e selects the cell c, which ran on kernel k.
func (e *Expectation) Matches(k report.Kernel, c report.Cell) bool {
	if e.kernelRE != nil && !e.kernelRE.MatchString(c.Kernel) {
		return false
	}
	if e.versions != nil && !inRange(k.Version, e.versions) {
		return false
	}
	if e.payloadRE != nil && !e.payloadRE.MatchString(c.Payload) {
		return false
	}
	return e.checkRE == nil || e.checkRE.MatchString(c.Check)
}

// Source is "FILE:LINE".
func (e *Expectation) Source() string { return e.File + ":" + strconv.Itoa(e.Line) }

// Match returns the first expectation that selects c (on kernel k), or nil.
func (s Set) Match(k report.Kernel, c report.Cell) *Expectation {
	for _, e := range s {
		if e.Matches(k, c) {
			return e
		}
	}
	return nil
}

// Apply marks every cell of r that an expectation selects (the first that
// does) with report.Cell.Expected, replacing any earlier marks, and
// finalizes r. Infra-error cells are never marked: they are kmatrix's own
// trouble, which no expectation about a payload explains. Kernel version
// ranges are matched against r's kernel rows (report.Kernel.Version).
func (s Set) Apply(r *report.Report) {
	kernels := make(map[string]report.Kernel, len(r.Kernels))
	for _, k := range r.Kernels {
		kernels[k.Name] = k
	}
	for i := range r.Cells {
		c := &r.Cells[i]
		c.Expected = nil
		if c.Outcome == outcome.InfraError {
			continue
		}
		if e := s.Match(kernels[c.Kernel], *c); e != nil {
			c.Expected = &report.Expected{Reason: e.Reason, Outcomes: slices.Clone(e.Outcomes), Source: e.Source()}
		}
	}
	r.Finalize()
}

// Unused returns the expectations that select no cell of r: after a full
// run, likely stale (a renamed payload or check); in a shard, normal.
func (s Set) Unused(r *report.Report) Set {
	kernels := make(map[string]report.Kernel, len(r.Kernels))
	for _, k := range r.Kernels {
		kernels[k.Name] = k
	}
	var out Set
	for _, e := range s {
		used := false
		for _, c := range r.Cells {
			if c.Outcome != outcome.InfraError && e.Matches(kernels[c.Kernel], c) {
				used = true
				break
			}
		}
		if !used {
			out = append(out, e)
		}
	}
	return out
}

// glob compiles a glob (* any run of characters, ? one) to an anchored regexp.
func glob(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}
