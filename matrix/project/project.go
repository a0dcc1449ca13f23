// Package project reads kmatrix.yaml, the project file at the root of a
// user's repository: which kernels to test, which payloads (BPF objects,
// module directories, Go test packages, a check command, extra files),
// timeouts, and the known outcomes (expectations). `kmatrix run` with no
// flags runs it; flags override what it says; `kmatrix init` writes a
// commented starter (Starter).
//
// Paths in the file are relative to the file's directory, so the same
// file works from any working directory of the repository. Unknown fields,
// fields given twice and bad values are errors naming file:line.
package project

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kmatrix/kmatrix/kernels"
	"github.com/kmatrix/kmatrix/matrix"
	"github.com/kmatrix/kmatrix/matrix/expect"
)

// FileName is the project file's name.
const FileName = "kmatrix.yaml"

// Starter is the commented project file `kmatrix init` writes.
//
//go:embed starter.yaml
var Starter []byte

// Error is a problem in a project file, at a line.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return loc + ": " + e.Msg
}

// Find looks for kmatrix.yaml in dir and its parents, up to the first
// directory that holds .git or go.mod (the repository's or module's root).
// It returns "" when there is none.
func Find(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, FileName)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
		for _, root := range []string{".git", "go.mod"} {
			if _, err := os.Stat(filepath.Join(dir, root)); err == nil {
				return ""
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Load reads a project file into the options it stands for.
func Load(path string) (matrix.Options, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return matrix.Options{}, fmt.Errorf("project file: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load for a file already in memory; path names it in errors and
// is the base of its relative paths.
func Parse(path string, data []byte) (matrix.Options, error) {
	var opts matrix.Options
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return opts, &Error{File: path, Line: 1, Msg: "the file is empty; `kmatrix init` writes a starter"}
		}
		return opts, &Error{File: path, Msg: "not valid YAML: " + err.Error()}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return opts, &Error{File: path, Line: root.Line, Msg: "want a mapping with kernels, payloads, timeout, parallel, out and expectations"}
	}
	p := &parser{file: path, base: filepath.Dir(path)}
	err := p.fields(root, "", map[string]func(*yaml.Node) error{
		"kernels": func(n *yaml.Node) error {
			return p.fields(n, "kernels", map[string]func(*yaml.Node) error{
				"catalog": func(n *yaml.Node) error {
					s, err := p.str(n, "kernels.catalog")
					if !slices.Contains(kernels.ShippedNames, s) {
						s = p.path(s)
					}
					opts.Catalog = s
					return err
				},
				"names": func(n *yaml.Node) (err error) { opts.Kernels, err = p.list(n, "kernels.names", false); return err },
				"arch":  func(n *yaml.Node) (err error) { opts.Arch, err = p.str(n, "kernels.arch"); return err },
			})
		},
		"payloads": func(n *yaml.Node) error {
			return p.fields(n, "payloads", map[string]func(*yaml.Node) error{
				"builtin": func(n *yaml.Node) (err error) {
					opts.Payloads, err = p.list(n, "payloads.builtin", false)
					if err == nil && opts.Payloads == nil {
						opts.Payloads = []string{} // "builtin: []": none
					}
					return err
				},
				"bpf":         func(n *yaml.Node) (err error) { opts.BPFObjects, err = p.list(n, "payloads.bpf", true); return err },
				"kmod":        func(n *yaml.Node) (err error) { opts.KmodDirs, err = p.list(n, "payloads.kmod", true); return err },
				"gotest":      func(n *yaml.Node) (err error) { opts.GoTests, err = p.goPatterns(n, "payloads.gotest"); return err },
				"gotest_args": func(n *yaml.Node) (err error) { opts.GoTestArgs, err = p.words(n, "payloads.gotest_args"); return err },
				"check":       func(n *yaml.Node) (err error) { opts.CheckCmd, err = p.command(n, "payloads.check"); return err },
				"files":       func(n *yaml.Node) (err error) { opts.Files, err = p.files(n, "payloads.files"); return err },
				"attach":      func(n *yaml.Node) (err error) { opts.Attach, err = p.list(n, "payloads.attach", false); return err },
				"no_fire":     func(n *yaml.Node) (err error) { opts.NoFire, err = p.list(n, "payloads.no_fire", false); return err },
			})
		},
		"timeout": func(n *yaml.Node) error {
			s, err := p.str(n, "timeout")
			if err != nil {
				return err
			}
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return &Error{File: p.file, Line: n.Line, Field: "timeout", Msg: fmt.Sprintf("%q: want a positive duration such as 10m", s)}
			}
			opts.Timeout = d
			return nil
		},
		"parallel": func(n *yaml.Node) error {
			v, err := strconv.Atoi(n.Value)
			if n.Kind != yaml.ScalarNode || err != nil || v < 0 {
				return &Error{File: p.file, Line: n.Line, Field: "parallel", Msg: fmt.Sprintf("%q: want the number of kernels to run at once (0: one per CPU)", n.Value)}
			}
			opts.Parallel = v
			return nil
		},
		"out": func(n *yaml.Node) error {
			s, err := p.str(n, "out")
			opts.OutDir = p.path(s)
			return err
		},
		"expectations": func(n *yaml.Node) (err error) {
			opts.Expectations, err = expect.FromNode(path, n)
			return err
		},
	})
	return opts, err
}

type parser struct {
	file, base string
}

// fields walks a mapping, refusing unknown and repeated fields.
func (p *parser) fields(n *yaml.Node, at string, known map[string]func(*yaml.Node) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // "payloads:" with everything under it commented out
	}
	if n.Kind != yaml.MappingNode {
		return &Error{File: p.file, Line: n.Line, Field: at, Msg: "want a mapping with " + names(known)}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := k.Value
		if at != "" {
			field = at + "." + k.Value
		}
		if prev, dup := seen[k.Value]; dup {
			return &Error{File: p.file, Line: k.Line, Field: field, Msg: fmt.Sprintf("given twice (also on line %d)", prev)}
		}
		seen[k.Value] = k.Line
		f, ok := known[k.Value]
		if !ok {
			return &Error{File: p.file, Line: k.Line, Field: field, Msg: "unknown field; known: " + names(known)}
		}
		if err := f(v); err != nil {
			return err
		}
	}
	return nil
}

func names(m map[string]func(*yaml.Node) error) string {
	var ns []string
	for k := range m {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || strings.TrimSpace(n.Value) == "" {
		return "", &Error{File: p.file, Line: n.Line, Field: field, Msg: "want a non-empty string"}
	}
	return strings.TrimSpace(n.Value), nil
}

// list is a string or a list of strings; paths are made relative to the
// file's directory (and must exist).
func (p *parser) list(n *yaml.Node, field string, paths bool) ([]string, error) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []string
	for _, it := range items {
		s, err := p.str(it, field)
		if err != nil {
			return nil, err
		}
		if paths {
			s = p.path(s)
			if _, err := os.Stat(s); err != nil {
				return nil, &Error{File: p.file, Line: it.Line, Field: field, Msg: fmt.Sprintf("%s: no such file or directory (paths are relative to %s)", it.Value, p.base)}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// goPatterns are package patterns relative to the file's directory:
// "./..." there is "./..." of the module the file is in.
func (p *parser) goPatterns(n *yaml.Node, field string) ([]string, error) {
	pats, err := p.list(n, field, false)
	if err != nil {
		return nil, err
	}
	for i, s := range pats {
		// Import paths stay as they are; directory patterns ("./...")
		// are the file's directory's.
		if strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || s == "." {
			pats[i] = p.path(s)
		}
	}
	return pats, nil
}

func (p *parser) words(n *yaml.Node, field string) ([]string, error) {
	if n.Kind == yaml.SequenceNode {
		return p.list(n, field, false)
	}
	s, err := p.str(n, field)
	return strings.Fields(s), err
}

// command is the check command: argv, its first word a path relative to
// the file when it names a file there.
func (p *parser) command(n *yaml.Node, field string) ([]string, error) {
	argv, err := p.words(n, field)
	if err != nil || len(argv) == 0 {
		return nil, err
	}
	if c := p.path(argv[0]); fileExists(c) {
		argv[0] = c
	}
	return argv, nil
}

// files are "HOST:GUEST" pairs, HOST relative to the file.
func (p *parser) files(n *yaml.Node, field string) ([]string, error) {
	pairs, err := p.list(n, field, false)
	if err != nil {
		return nil, err
	}
	for i, f := range pairs {
		host, guest, ok := strings.Cut(f, ":")
		if !ok || !strings.HasPrefix(guest, "/") {
			return nil, &Error{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf("%q: want HOST:GUEST, GUEST an absolute path in the guest", f)}
		}
		host = p.path(host)
		if !fileExists(host) {
			return nil, &Error{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf("%s: no such file (paths are relative to %s)", host, p.base)}
		}
		pairs[i] = host + ":" + guest
	}
	return pairs, nil
}

func (p *parser) path(s string) string {
	if filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(p.base, s)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
