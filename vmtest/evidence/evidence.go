// Package evidence lets a Go test that runs in a guest hand named facts to
// the host, where they become the evidence of its cell in the report
// (verified_insns, variant, the module's vermagic, ...), and lets it say
// which outcome its failure is when the test's stage alone would say it
// wrongly (a behaviour test that saw a CO-RE relocation fail reports
// load-error).
//
// A fact travels in the test's own output as one line, the marker followed
// by a JSON object, so it reaches the host in the same structured stream as
// the test's events (see vmtest.TestStream) and needs no channel of its
// own; Parse reads it back from a test's output.
package evidence

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// marker starts a fact line. It is not something a test prints by chance.
const marker = "kmatrix-fact "

// OutcomeKey is the fact that overrides the outcome a failing check gets
// from its stage; its value is an outcome's name ("load-error").
const OutcomeKey = "outcome"

// Fact records key=value for the test's cell.
func Fact(t testing.TB, key string, value any) {
	t.Helper()
	t.Log(Line(key, value))
}

// Line is the output line that carries key=value.
func Line(key string, value any) string {
	b, _ := json.Marshal(map[string]string{key: fmt.Sprint(value)}) // a map of strings always marshals
	return marker + string(b)
}

// Parse returns the facts in a test's output, and the output without their
// lines (what a person reads).
func Parse(output string) (facts map[string]string, rest string) {
	facts = map[string]string{}
	var keep []string
	for _, l := range strings.SplitAfter(output, "\n") {
		i := strings.Index(l, marker)
		if i < 0 {
			keep = append(keep, l)
			continue
		}
		var m map[string]string
		if json.Unmarshal([]byte(strings.TrimSpace(l[i+len(marker):])), &m) != nil {
			keep = append(keep, l) // not one of ours after all: keep it for people
			continue
		}
		for k, v := range m {
			facts[k] = v
		}
	}
	return facts, strings.Join(keep, "")
}
