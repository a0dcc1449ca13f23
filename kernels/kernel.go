package kernels

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/kmatrix/kmatrix/kernels/version"
)

// Kernel is one bootable kernel with the facts kmatrix needs about it. All
// paths are absolute and point into the cache (or the user's local
// directory for local kernels).
type Kernel struct {
	// Name is the catalog name, e.g. "debian-bookworm".
	Name string `json:"name"`
	// Arch is the kernel's Debian architecture, read from its image:
	// "amd64" (an x86 bzImage) or "arm64" (an arm64 Image).
	Arch string `json:"arch"`
	// Release is what `uname -r` prints in the guest, e.g. "6.1.0-56-cloud-amd64".
	Release string `json:"release"`
	// Version is the upstream kernel version, e.g. 6.1.192.
	Version Version `json:"version"`
	// Suite is the archive suite the image came from ("bookworm-security"); empty for local kernels.
	Suite string `json:"suite,omitempty"`
	// Package and PackageVersion name the image package ("linux-image-6.1.0-56-cloud-amd64", "6.1.192-2").
	Package        string `json:"package,omitempty"`
	PackageVersion string `json:"package_version,omitempty"`
	// SHA256 is the hex digest of the package that holds the vmlinuz (of the vmlinuz itself for local kernels).
	SHA256 string `json:"sha256"`
	// Compiler is the compiler the kernel was built with (CONFIG_CC_VERSION_TEXT).
	Compiler Compiler `json:"compiler"`
	// Vmlinuz is the path of the bootable image (an x86 bzImage, an arm64 Image, gzip-compressed or not).
	Vmlinuz string `json:"vmlinuz"`
	// Config is the path of the kernel's .config.
	Config string `json:"config"`
	// Headers is the path of a tree usable as `make -C <Headers> M=<dir> modules`; empty when not fetched.
	Headers string `json:"headers,omitempty"`
	// HeadersMissing says why Headers is empty when the archive has no
	// headers for this kernel ("the archive lists no headers for
	// 7.0.13-1~bpo13+1 ..."; see Resolved.HeadersMissing): payloads that
	// build against the headers skip on it, with this as the reason,
	// rather than fail. Empty when the headers exist (fetched or not).
	HeadersMissing string `json:"headers_missing,omitempty"`
	// HeadersDigest identifies the headers tree's content (the SHA-256 of
	// its cache manifest, or of its files' names, sizes and times for a
	// local kernel): a build cached against other headers is not reused.
	HeadersDigest string `json:"headers_digest,omitempty"`
	// BuildRootSuite is the Debian suite whose userland matches this kernel's
	// compiler (e.g. "sid" for a kernel built with gcc-16); empty for local kernels.
	BuildRootSuite string `json:"build_root_suite,omitempty"`
	// BTF reports whether the kernel carries BTF (CONFIG_DEBUG_INFO_BTF=y).
	BTF bool `json:"btf"`
	// BTFPath is the kernel's raw BTF extracted from Vmlinuz (for
	// btf.LoadSpec); empty until extracted (see LoadBTF).
	BTFPath string `json:"btf_path,omitempty"`
	// Modules are the paths of the kernel's GuestModules (.ko or .ko.xz)
	// in the cache, those the image has; empty for local kernels.
	Modules []string `json:"modules,omitempty"`
	// KfuncIndex is the path of the kernel's kfunc index (KfuncIndexFile
	// in its cache entry, see ReadKfuncIndex): which modules of its
	// packages provide kfuncs its own BTF lacks. Empty for local kernels.
	KfuncIndex string `json:"kfunc_index,omitempty"`
}

// Version is an upstream kernel version (see package version).
type Version = version.Version

// ParseVersion parses the leading "X.Y[.Z]" of s, e.g. "6.1.0-56-cloud-amd64"
// or "6.12.118+deb13-cloud-amd64".
func ParseVersion(s string) (Version, error) { return version.Parse(s) }

// Compiler identifies the compiler a kernel was built with.
type Compiler struct {
	// Name is "gcc" or "clang".
	Name string `json:"name"`
	// Major is the major version, e.g. 12.
	Major int `json:"major"`
	// Text is CONFIG_CC_VERSION_TEXT verbatim.
	Text string `json:"text"`
}

func (c Compiler) String() string {
	if c.Name == "" {
		return "unknown"
	}
	return fmt.Sprintf("%s-%d", c.Name, c.Major)
}

// ParseCompiler reads CONFIG_CC_VERSION_TEXT, e.g.
// "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0" or "x86_64-linux-gnu-gcc-16 (Debian 16.1.0-3) 16.1.0".
func ParseCompiler(text string) (Compiler, error) {
	c := Compiler{Text: text}
	m := ccRE.FindStringSubmatch(text)
	if m == nil {
		return c, fmt.Errorf("compiler %q: no \"gcc ... X.Y.Z\" or \"clang version X.Y.Z\" in it", text)
	}
	c.Name = "gcc"
	if strings.Contains(text, "clang") {
		c.Name = "clang"
	}
	c.Major, _ = strconv.Atoi(m[1])
	return c, nil
}

// The version is the last dotted number on the line: "gcc-10 (Debian 10.2.1-6) 10.2.1 20210110"
// has a date after it, so take the first X.Y.Z after the closing parenthesis.
var ccRE = regexp.MustCompile(`(?:\)|version)\s+(\d+)\.\d+(?:\.\d+)?`)

// ReadConfig parses a kernel .config into a map of CONFIG_X → value, with
// string values unquoted. "# CONFIG_X is not set" lines are left out.
func ReadConfig(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel config: %w", err)
	}
	defer f.Close()
	return parseConfig(f)
}

func parseConfig(r io.Reader) (map[string]string, error) {
	cfg := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "CONFIG_") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		cfg[k] = v
	}
	return cfg, sc.Err()
}

// ErrNotKernel is wrapped by errors about files that are not kernel images.
var ErrNotKernel = version.ErrNotKernel

// BzImageVersion reads the version string of an x86 bzImage's setup header.
func BzImageVersion(path string) (string, error) { return version.BzImage(path) }

// upstreamVersion finds the upstream version in a kernel's version banner:
// Debian appends "Debian 6.1.192-2" at the end; otherwise use the release.
func upstreamVersion(release, banner string) (Version, error) {
	// The last one: an arm64 linux_banner names the compiler first
	// ("(gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, ...) #1 SMP Debian 6.1.192-3").
	if ms := debianVersionRE.FindAllStringSubmatch(banner, -1); ms != nil {
		return ParseVersion(ms[len(ms)-1][1])
	}
	return ParseVersion(release)
}

var debianVersionRE = regexp.MustCompile(`Debian (\d+\.\d+(?:\.\d+)?)`)
