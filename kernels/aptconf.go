package kernels

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// EnvAllowExpired set to 1 accepts index files past their Valid-Until.
const EnvAllowExpired = "KMATRIX_ALLOW_EXPIRED_INDEX"

// hostSkipsValidUntil reports whether the host's apt configuration turns
// Valid-Until checking off (Acquire::Check-Valid-Until "false", either as a
// flat key or inside an "Acquire { ... }" block), and in which file. kmatrix
// follows the host: a machine pinned to a frozen snapshot of the archive
// says so there, and its indexes are expired by design.
func hostSkipsValidUntil(aptDir string) (file string, ok bool) {
	files := []string{filepath.Join(aptDir, "apt.conf")}
	g, _ := filepath.Glob(filepath.Join(aptDir, "apt.conf.d", "*"))
	sort.Strings(g)
	files = append(files, g...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if v, found := aptConfValue(string(b), "acquire::check-valid-until"); found {
			switch strings.ToLower(v) {
			case "false", "no", "off", "0":
				file, ok = f, true
			default:
				file, ok = "", false // a later file may turn it back on
			}
		}
	}
	return file, ok
}

var aptCommentRE = regexp.MustCompile(`(?m)//.*$|#.*$`)

// aptConfValue finds the last value of key (lower case, "a::b") in apt.conf
// syntax: `a::b "v";` or `a { b "v"; };`.
func aptConfValue(text, key string) (string, bool) {
	text = aptCommentRE.ReplaceAllString(text, "")
	var scope []string
	var val string
	found := false
	// Tokenize into words, quoted strings, and the punctuation { } ;
	var toks []string
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				j = len(text) - i - 1
			}
			toks = append(toks, text[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\r\n{};\"", rune(text[j])) {
				j++
			}
			toks = append(toks, text[i:j])
			i = j
		}
	}
	var stmt []string
	for _, t := range toks {
		switch t {
		case "{":
			if len(stmt) > 0 {
				scope = append(scope, strings.ToLower(stmt[0]))
			}
			stmt = nil
		case "}":
			if len(scope) > 0 {
				scope = scope[:len(scope)-1]
			}
			stmt = nil
		case ";":
			if len(stmt) >= 2 {
				full := strings.ToLower(strings.Join(append(append([]string{}, scope...), stmt[0]), "::"))
				if full == key {
					val, found = strings.Trim(stmt[1], `"`), true
				}
			}
			stmt = nil
		default:
			stmt = append(stmt, t)
		}
	}
	return val, found
}
