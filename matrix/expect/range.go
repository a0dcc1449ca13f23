package expect

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/kmatrix/kmatrix/kernels/version"
)

// bound is one comparison of a version range: op and a version of 1 to 3
// components, compared at that precision.
type bound struct {
	op   string
	v    []int
	text string
}

var boundRE = regexp.MustCompile(`^(<=|>=|==|!=|<|>|=)\s*(\d+(?:\.\d+){0,2})$`)

// isRange tells a version range ("< 6.6") from a kernel name glob.
func isRange(s string) bool { return strings.ContainsAny(s[:1], "<>=!") }

// parseRange parses comma-separated bounds, all of which must hold:
// "< 6.6", ">= 5.15, < 6.1".
func parseRange(s string) ([]bound, error) {
	var out []bound
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		m := boundRE.FindStringSubmatch(part)
		if m == nil {
			return nil, fmt.Errorf("%q is not a version range: want bounds such as \"< 6.6\" or \">= 5.15, < 6.1\" (operators <, <=, >, >=, =, !=; versions X.Y or X.Y.Z), or a kernel name glob", s)
		}
		b := bound{op: m[1], text: part}
		for _, f := range strings.Split(m[2], ".") {
			n, _ := strconv.Atoi(f)
			b.v = append(b.v, n)
		}
		out = append(out, b)
	}
	return out, nil
}

// inRange reports whether the kernel version ver ("6.1.192") satisfies
// every bound. A version that does not parse is in no range.
func inRange(ver string, bs []bound) bool {
	kv, err := version.Parse(ver)
	if err != nil {
		return false
	}
	v := [3]int{kv.Major, kv.Minor, kv.Patch}
	for _, b := range bs {
		c := 0
		for i := range b.v {
			if v[i] != b.v[i] {
				c = map[bool]int{true: -1, false: 1}[v[i] < b.v[i]]
				break
			}
		}
		var hold bool
		switch b.op {
		case "<":
			hold = c < 0
		case "<=":
			hold = c <= 0
		case ">":
			hold = c > 0
		case ">=":
			hold = c >= 0
		case "=", "==":
			hold = c == 0
		case "!=":
			hold = c != 0
		}
		if !hold {
			return false
		}
	}
	return true
}
