package kernels

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Catalog is the list of kernels to test, by intent or exactly.
type Catalog struct {
	// Path is the file it was read from ("" for the embedded default).
	Path string
	// LockPath is the lock file that pins it: Path with ".lock" instead of
	// its extension; "" for the embedded default catalog, whose lock is
	// embedded too.
	LockPath string
	Kernels  []Entry

	lock   []byte // embedded lock of a shipped catalog
	origin string // the shipped file an embedded catalog came from
	// full is the whole catalog a Select came from (nil when not selected),
	// so that resolving a selection keeps the others' pins in the lock.
	full []Entry
}

// all is every entry of the catalog this one was selected from.
func (c *Catalog) all() []Entry {
	if c.full != nil {
		return c.full
	}
	return c.Kernels
}

// Entry is one kernel of a catalog.
type Entry struct {
	Name  string `yaml:"name" json:"name"`
	Suite string `yaml:"suite,omitempty" json:"suite,omitempty"`
	// Arch is the Debian architecture of the kernel (amd64, the default,
	// or arm64): it picks the flavour and source defaults and the
	// binary-<arch> indexes, and vmtest boots it with that arch's QEMU.
	Arch    string `yaml:"arch,omitempty" json:"arch,omitempty"`
	Flavour string `yaml:"flavour,omitempty" json:"flavour,omitempty"`
	Source  string `yaml:"source,omitempty" json:"source,omitempty"`
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
	// Series picks the newest image of one upstream series ("6.16") among
	// the suite's versions (trixie-backports lists 6.16 through 7.3).
	Series string `yaml:"series,omitempty" json:"series,omitempty"`
	Local  string `yaml:"local,omitempty" json:"local,omitempty"`
	// Line is where the entry starts in the catalog file.
	Line int `yaml:"-" json:"-"`
}

// Defaults of an entry (of the default arch, amd64).
const (
	DefaultArch    = "amd64"
	DefaultFlavour = "cloud-amd64"
	DefaultSource  = "linux-signed-amd64"
)

// Arches are the Debian architectures kmatrix boots: amd64 with
// qemu-system-x86_64, arm64 with qemu-system-aarch64.
var Arches = []string{"amd64", "arm64"}

// FlavourOf is the default flavour of arch: Debian's cloud kernel, cloud-<arch>.
func FlavourOf(arch string) string { return "cloud-" + archOr(arch) }

// SourceOf is the default source package of arch: the suite's own signed
// kernel, linux-signed-<arch>.
func SourceOf(arch string) string { return "linux-signed-" + archOr(arch) }

// ArchOfFlavour is the arch a flavour's name ends in ("cloud-arm64",
// "arm64", "rt-arm64" → arm64); amd64 for any other flavour.
func ArchOfFlavour(flavour string) string {
	for _, a := range Arches {
		if flavour == a || strings.HasSuffix(flavour, "-"+a) {
			return a
		}
	}
	return DefaultArch
}

func archOr(arch string) string {
	if arch == "" {
		return DefaultArch
	}
	return arch
}

// CatalogError is a malformed catalog: the file, the line and the field.
type CatalogError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *CatalogError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: field %q: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

func (e *CatalogError) Is(target error) bool { return target == ErrCatalog }

//go:embed catalog.yaml
var defaultCatalog []byte

//go:embed catalog.lock
var defaultLock []byte

// DefaultCatalog is the catalog shipped with kmatrix (kernels/catalog.yaml),
// pinned by the embedded kernels/catalog.lock.
func DefaultCatalog() (*Catalog, error) {
	c, err := ParseCatalog("kernels/catalog.yaml", defaultCatalog)
	if err != nil {
		return nil, err
	}
	c.Path, c.origin = "", "kernels/catalog.yaml"
	c.lock = defaultLock
	return c, nil
}

// name is the catalog's file, or the shipped file it was embedded from.
func (c *Catalog) name() string {
	if c.Path != "" {
		return c.Path
	}
	return c.origin
}

// LoadCatalog reads a catalog file; local directories in it are relative to
// the file's directory, and its lock file is next to it.
func LoadCatalog(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c, err := ParseCatalog(path, b)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c.LockPath = strings.TrimSuffix(abs, filepath.Ext(abs)) + ".lock"
	for i := range c.Kernels {
		if l := c.Kernels[i].Local; l != "" && !filepath.IsAbs(l) {
			c.Kernels[i].Local = filepath.Join(filepath.Dir(abs), l)
		}
	}
	return c, nil
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	suiteRE  = regexp.MustCompile(`^[a-z][a-z0-9.-]*$`)
	debRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]*$`)
	verRE    = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~:-]*$`)
	seriesRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
)

// ParseCatalog parses catalog YAML; file names the source in errors.
func ParseCatalog(file string, data []byte) (*Catalog, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, &CatalogError{File: file, Line: yamlErrLine(data, err), Msg: "not valid YAML: " + err.Error()}
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &CatalogError{File: file, Line: doc.Line, Msg: `want a mapping with a "kernels" list`}
	}
	root := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "kernels" {
			return nil, &CatalogError{File: file, Line: k.Line, Field: k.Value, Msg: `unknown top-level field; the only one is "kernels"`}
		}
		if list != nil {
			return nil, &CatalogError{File: file, Line: k.Line, Field: k.Value, Msg: fmt.Sprintf("given twice (first on line %d): keep one list", list.Line)}
		}
		list = v
	}
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		line := root.Line
		if list != nil {
			line = list.Line
		}
		return nil, &CatalogError{File: file, Line: line, Field: "kernels", Msg: "want a non-empty list of kernels"}
	}
	c := &Catalog{Path: file}
	names := map[string]int{}
	for _, n := range list.Content {
		if n.Kind != yaml.MappingNode {
			return nil, &CatalogError{File: file, Line: n.Line, Msg: "want each kernel to be a mapping (name: ..., suite: ...)"}
		}
		e := Entry{Line: n.Line}
		fields := map[string]*string{"name": &e.Name, "suite": &e.Suite, "arch": &e.Arch, "flavour": &e.Flavour, "source": &e.Source,
			"version": &e.Version, "package": &e.Package, "series": &e.Series, "local": &e.Local}
		lines := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			dst, ok := fields[k.Value]
			if !ok {
				return nil, &CatalogError{File: file, Line: k.Line, Field: k.Value, Msg: "unknown field; known: name, suite, arch, flavour, source, series, version, package, local"}
			}
			if first, dup := lines[k.Value]; dup {
				// yaml.v3 keeps the last of duplicate keys silently; a
				// catalog that pins a version twice is a mistake to show.
				return nil, &CatalogError{File: file, Line: k.Line, Field: k.Value, Msg: fmt.Sprintf("given twice in this kernel (first on line %d): keep one", first)}
			}
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return nil, &CatalogError{File: file, Line: v.Line, Field: k.Value, Msg: "want a non-empty string"}
			}
			*dst = v.Value
			lines[k.Value] = k.Line
		}
		bad := func(field, msg string) error {
			line := lines[field]
			if line == 0 {
				line = e.Line
			}
			return &CatalogError{File: file, Line: line, Field: field, Msg: msg}
		}
		switch {
		case e.Name == "":
			return nil, bad("name", "missing: every kernel needs a unique name")
		case !nameRE.MatchString(e.Name):
			return nil, bad("name", fmt.Sprintf("%q: use letters, digits, '.', '_' and '-'", e.Name))
		case names[e.Name] != 0:
			return nil, bad("name", fmt.Sprintf("%q is already used on line %d", e.Name, names[e.Name]))
		case e.Arch != "" && !slices.Contains(Arches, e.Arch):
			return nil, bad("arch", fmt.Sprintf("%q is not an architecture kmatrix boots: want one of %s", e.Arch, strings.Join(Arches, ", ")))
		case e.Local != "" && e.Arch != "":
			return nil, bad("arch", "a local kernel's arch is read from its vmlinuz: drop arch")
		case e.Local != "" && (e.Suite != "" || e.Flavour != "" || e.Source != "" || e.Version != "" || e.Package != "" || e.Series != ""):
			return nil, bad("local", "a local kernel takes no suite, flavour, source, series, version or package")
		case e.Local == "" && e.Suite == "":
			return nil, bad("suite", "missing: name a Debian suite (e.g. bookworm) or a local directory")
		case e.Suite != "" && !suiteRE.MatchString(e.Suite):
			return nil, bad("suite", fmt.Sprintf("%q is not a suite name", e.Suite))
		case strings.HasSuffix(e.Suite, "-security") || strings.HasSuffix(e.Suite, "-updates"):
			return nil, bad("suite", fmt.Sprintf("%q is a pocket: give the suite (%s); its -security and -updates pockets are searched too",
				e.Suite, strings.TrimSuffix(strings.TrimSuffix(e.Suite, "-security"), "-updates")))
		case e.Flavour != "" && !debRE.MatchString(e.Flavour):
			return nil, bad("flavour", fmt.Sprintf("%q is not a kernel flavour (e.g. cloud-amd64, amd64)", e.Flavour))
		case e.Source != "" && !debRE.MatchString(e.Source):
			return nil, bad("source", fmt.Sprintf("%q is not a source package name", e.Source))
		case e.Version != "" && !verRE.MatchString(e.Version):
			return nil, bad("version", fmt.Sprintf("%q is not a Debian package version (e.g. 6.1.192-2)", e.Version))
		case e.Series != "" && !seriesRE.MatchString(e.Series):
			return nil, bad("series", fmt.Sprintf("%q is not an upstream kernel series: want MAJOR.MINOR (e.g. 6.16)", e.Series))
		case e.Package != "" && !strings.HasPrefix(e.Package, "linux-image-"):
			return nil, bad("package", fmt.Sprintf("%q: want a linux-image-<abi>-<flavour> package", e.Package))
		}
		if e.Local == "" {
			if e.Arch == "" {
				e.Arch = DefaultArch
			}
			if e.Flavour == "" {
				e.Flavour = FlavourOf(e.Arch)
			} else if a := ArchOfFlavour(e.Flavour); lines["arch"] != 0 && a != e.Arch {
				return nil, bad("flavour", fmt.Sprintf("%q is a flavour of %s, not of arch %s: use %s, or drop one of the two", e.Flavour, a, e.Arch, FlavourOf(e.Arch)))
			} else {
				e.Arch = a
			}
			if e.Source == "" {
				e.Source = SourceOf(e.Arch)
			}
			if e.Package != "" && !strings.HasSuffix(e.Package, "-"+e.Flavour) {
				return nil, bad("package", fmt.Sprintf("%q does not end in the flavour %q", e.Package, e.Flavour))
			}
		}
		names[e.Name] = e.Line
		c.Kernels = append(c.Kernels, e)
	}
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlErrLine finds the line a YAML syntax error is on. yaml.v3 reports the
// line of the enclosing construct for parser errors (a mis-indented key on
// line 4 of a list that starts on line 1 says "line 1") and is off by one
// for some scanner errors, so this looks for the shortest prefix of whole
// lines that fails to parse: its last line is where the document stops
// being YAML (for an unclosed quote or bracket, where it was opened).
// Catalogs are small; beyond maxPrefixLines it keeps yaml.v3's answer.
func yamlErrLine(data []byte, err error) int {
	var n int
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		fmt.Sscan(m[1], &n)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxPrefixLines {
		return n
	}
	var prefix []byte
	for i, l := range lines {
		prefix = append(prefix, l...)
		var doc yaml.Node
		if yaml.Unmarshal(prefix, &doc) != nil {
			return i + 1
		}
	}
	return n
}

const maxPrefixLines = 2000

// Select returns the entries named, in catalog order; all of them when names is empty.
func (c *Catalog) Select(names []string) (*Catalog, error) {
	if len(names) == 0 {
		return c, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := *c
	out.full = c.all()
	out.Kernels = nil
	for _, e := range c.Kernels {
		if want[e.Name] {
			out.Kernels = append(out.Kernels, e)
			delete(want, e.Name)
		}
	}
	if len(want) > 0 {
		var missing, known []string
		for _, n := range names {
			if want[n] {
				missing = append(missing, n)
			}
		}
		for _, e := range c.Kernels {
			known = append(known, e.Name)
		}
		return nil, fmt.Errorf("kernel %s not in the catalog; it has: %s", strings.Join(missing, ", "), strings.Join(known, ", "))
	}
	return &out, nil
}
