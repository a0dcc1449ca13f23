// Package version parses and compares upstream kernel versions. It is a
// leaf package, apart from package kernels, so that guest test binaries
// can ask which kernel they run on without linking the archive client
// (OpenPGP, decompressors, YAML, HTTP), whose package initialisers alone
// cost some 120 ms of every guest run under TCG.
package version

import (
	"fmt"
	"regexp"
	"strconv"

	"golang.org/x/sys/unix"
)

// Version is an upstream kernel version.
type Version struct {
	Major, Minor, Patch int
}

// Parse parses the leading "X.Y[.Z]" of s, e.g. "6.1.0-56-cloud-amd64"
// or "6.12.118+deb13-cloud-amd64".
func Parse(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("kernel version %q: want it to start with MAJOR.MINOR[.PATCH]", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?`)

// Running is the version of the running kernel, from uname(2)'s release.
// Debian's releases carry the ABI name, not the patch level
// ("6.1.0-56-cloud-amd64" is 6.1.192), so compare only major.minor.
func Running() (Version, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Version{}, fmt.Errorf("uname: %w", err)
	}
	return Parse(unix.ByteSliceToString(u.Release[:]))
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Code is LINUX_VERSION_CODE for v (the patch level saturates at 255, as in the kernel since 4.9.256).
func (v Version) Code() int { return v.Major<<16 | v.Minor<<8 | min(v.Patch, 255) }

// Less orders versions.
func (v Version) Less(w Version) bool { return v.Code() < w.Code() }

// AtLeast reports whether v ≥ major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// MarshalText renders a Version as "6.1.192" in JSON.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses "6.1.192".
func (v *Version) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	*v = p
	return err
}
