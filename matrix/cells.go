package matrix

import (
	"strings"
	"time"
)

// failureMessage is the line a person reads first about a failed or
// skipped Go test, from its output (facts already taken out): the
// "file_test.go:42: message" line that t.Error, t.Fatal and t.Skip print,
// or, for a testify assertion, its location with its Error and Messages
// fields on one line.
func failureMessage(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if i+1 < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i+1]), "Error Trace:") {
			return testifyMessage(t, lines[i+1:])
		}
		return clip(t)
	}
	return ""
}

// testifyMessage condenses a testify failure block: the fields come as
// "\tName:   \tvalue" lines (the name padded), long values continued on
// lines whose name is blank. loc is the "file_test.go:42:" line before it.
func testifyMessage(loc string, block []string) string {
	fields := map[string]string{}
	var last string
	for _, l := range block {
		name, value, ok := strings.Cut(strings.TrimPrefix(strings.TrimLeft(l, " "), "\t"), "\t")
		name = strings.TrimSpace(name)
		if !ok || name != "" && !strings.HasSuffix(name, ":") {
			break
		}
		name = strings.TrimSuffix(name, ":")
		value = strings.TrimSpace(value)
		switch {
		case name == "" && last != "":
			fields[last] += " " + value
		case name != "":
			last = name
			fields[name] = value
		}
	}
	msg := strings.TrimSpace(strings.TrimSuffix(loc, ":")) + ": " + fields["Error"]
	if m := fields["Messages"]; m != "" {
		msg += " (" + m + ")"
	}
	return clip(msg)
}

// clip keeps a message to one readable line.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + " …"
	}
	return s
}

// firstLine is the first non-empty line of s.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" {
			return t
		}
	}
	return ""
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
