package build

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// FirstError is the first error a module build reported: the compiler's
// "file:line:col: error: message", objtool's, the linker's or modpost's,
// else make's. File is
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
	case e.Line == 0: // objtool names the object, not a line
		return e.File + ": " + e.Message
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
	// objtool, which 7.x runs on every object and which fails the build on
	// what 6.x only warned about: "mod.o: error: objtool: init_module():
	// Magic init_module() function name is deprecated, use module_init(fn)
	// instead".
	objtoolErrorRE = regexp.MustCompile(`^(\S+): error: (objtool: .*)$`)
	// the linker: "ld: /build/a.o: in function `f': a.c:(.text+0x5):
	// undefined reference to `g'", "x86_64-linux-gnu-ld: error: ...";
	// an "in function" line alone is context, not the error.
	ldErrorRE = regexp.MustCompile(`^(?:\S*-)?ld(?:\.bfd|\.gold|\.lld)?: (.*(?:undefined reference|multiple definition|error|cannot find|No such file).*)$`)
	// modpost: `ERROR: modpost: "foo" [/build/kmatrix.ko] undefined!`
	modpostErrorRE = regexp.MustCompile(`^ERROR: (?:modpost: )?(.*)$`)
	// make: "make[2]: *** [...Makefile.build:291: /build/kmatrix.o] Error 1"
	makeErrorRE = regexp.MustCompile(`^make(?:\[\d+\])?: \*\*\* (.*)$`)
)

// ParseFirstError finds the first error in a build log: the first line,
// in log order, that is a compiler, objtool, linker or modpost error; make's
// "*** [...] Error N" lines only when there is none, since make reports
// the tool's failure after the tool said why. moduleDirs are the
// directories the module was built in, as the compiler saw them (the host
// directory, or "/build" inside a build root): paths under them are made
// relative. It returns nil when the log holds no recognisable error.
func ParseFirstError(log string, moduleDirs ...string) *FirstError {
	var mk *FirstError
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := gccErrorRE.FindStringSubmatch(line); m != nil {
			e := &FirstError{File: relativeTo(m[1], moduleDirs), Message: m[4]}
			e.Line, _ = strconv.Atoi(m[2])
			e.Col, _ = strconv.Atoi(m[3])
			return e
		}
		if m := objtoolErrorRE.FindStringSubmatch(line); m != nil {
			return &FirstError{File: relativeTo(m[1], moduleDirs), Message: m[2]}
		}
		if m := ldErrorRE.FindStringSubmatch(line); m != nil {
			return &FirstError{Message: "ld: " + m[1]}
		}
		if m := modpostErrorRE.FindStringSubmatch(line); m != nil {
			return &FirstError{Message: m[1]}
		}
		if m := makeErrorRE.FindStringSubmatch(line); m != nil && mk == nil {
			mk = &FirstError{Message: m[1]}
		}
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
