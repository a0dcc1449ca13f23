package build

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// FirstError is the first error a module build reported: the compiler's
// "file:line:col: error: message", else modpost's or make's. File is
// relative to the module's directory when the error is in the module's
// own source (absolute otherwise, e.g. in a kernel header); Line and Col
// are 0 when the error names no position.
type FirstError struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

func (e FirstError) String() string {
	switch {
	case e.File == "":
		return e.Message
	case e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Message)
	default:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message)
	}
}

var (
	// gcc: "/build/kmatrix.c:12:5: error: expected ';' before '}' token"
	// (also "fatal error:"); ld: "kmatrix.c:12: undefined reference".
	gccErrorRE = regexp.MustCompile(`^(\S[^:]*):(\d+):(?:(\d+):)? (?:fatal )?error: (.*)$`)
	// modpost: `ERROR: modpost: "foo" [/build/kmatrix.ko] undefined!`
	modpostErrorRE = regexp.MustCompile(`^ERROR: (?:modpost: )?(.*)$`)
	// make: "make[2]: *** [...Makefile.build:291: /build/kmatrix.o] Error 1"
	makeErrorRE = regexp.MustCompile(`^make(?:\[\d+\])?: \*\*\* (.*)$`)
)

// ParseFirstError finds the first error in a build log. moduleDirs are the
// directories the module was built in, as the compiler saw them (the host
// directory, or "/build" inside a build root): paths under them are made
// relative. It returns nil when the log holds no recognisable error.
func ParseFirstError(log string, moduleDirs ...string) *FirstError {
	var modpost, mk *FirstError
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := gccErrorRE.FindStringSubmatch(line); m != nil {
			e := &FirstError{File: relativeTo(m[1], moduleDirs), Message: m[4]}
			e.Line, _ = strconv.Atoi(m[2])
			e.Col, _ = strconv.Atoi(m[3])
			return e
		}
		if m := modpostErrorRE.FindStringSubmatch(line); m != nil && modpost == nil {
			modpost = &FirstError{Message: m[1]}
		}
		if m := makeErrorRE.FindStringSubmatch(line); m != nil && mk == nil {
			mk = &FirstError{Message: m[1]}
		}
	}
	if modpost != nil {
		return modpost
	}
	return mk
}

func relativeTo(file string, dirs []string) string {
	for _, d := range dirs {
		d = strings.TrimSuffix(d, "/")
		if d != "" && strings.HasPrefix(file, d+"/") {
			return path.Clean(strings.TrimPrefix(file, d+"/"))
		}
	}
	return file
}
