package kernels

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Mirrors are the base URIs of the Debian archive ("…/debian", holding
// dists/bookworm, dists/sid, …) and of the security archive ("…/debian-security",
// holding dists/bookworm-security, …). Debian serves the -security pockets
// from a different tree than the main archive, so both are needed.
type Mirrors struct {
	Archive  string `json:"archive"`
	Security string `json:"security"`
}

// Environment variables that override the mirrors found in the apt configuration.
const (
	EnvMirror         = "KMATRIX_DEBIAN_MIRROR"
	EnvSecurityMirror = "KMATRIX_DEBIAN_SECURITY_MIRROR"
)

// ErrNoMirror is wrapped by DiscoverMirrors when neither the environment
// nor the host's apt configuration names a Debian mirror.
var ErrNoMirror = errors.New("no Debian mirror configured")

// aptSourcesDir is where DiscoverMirrors looks; a variable for tests.
var aptSourcesDir = "/etc/apt"

// DiscoverMirrors finds the Debian mirrors: KMATRIX_DEBIAN_MIRROR and
// KMATRIX_DEBIAN_SECURITY_MIRROR when set, else the host's apt sources
// (deb822 /etc/apt/sources.list.d/*.sources and one-line sources.list and
// sources.list.d/*.list files). A source whose suites end in "-security" is
// the security mirror; any other "deb" source is the archive. When only the
// archive is known, the security mirror is taken to be its sibling
// "…/debian-security", as on every official Debian mirror.
func DiscoverMirrors() (Mirrors, error) {
	return discoverMirrors(aptSourcesDir, os.Getenv(EnvMirror), os.Getenv(EnvSecurityMirror))
}

func discoverMirrors(aptDir, envArchive, envSecurity string) (Mirrors, error) {
	m := Mirrors{Archive: strings.TrimRight(envArchive, "/"), Security: strings.TrimRight(envSecurity, "/")}
	var read []string
	if m.Archive == "" || m.Security == "" {
		var files []string
		if _, err := os.Stat(filepath.Join(aptDir, "sources.list")); err == nil {
			files = append(files, filepath.Join(aptDir, "sources.list"))
		}
		for _, pat := range []string{"*.list", "*.sources"} {
			g, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", pat))
			sort.Strings(g)
			files = append(files, g...)
		}
		var archive, security string
		for _, f := range files {
			read = append(read, f)
			srcs, err := readAptSources(f)
			if err != nil {
				return Mirrors{}, err
			}
			for _, s := range srcs {
				if !isDebianSource(s) {
					continue
				}
				if s.security() {
					if security == "" {
						security = s.uri
					}
				} else if archive == "" {
					archive = s.uri
				}
			}
		}
		if m.Archive == "" {
			m.Archive = archive
		}
		if m.Security == "" {
			m.Security = security
		}
	}
	if m.Archive == "" {
		what := "no apt source files found under " + aptDir
		if len(read) > 0 {
			what = "read " + strings.Join(read, ", ") + " and found no Debian \"deb\" source in them"
		}
		return Mirrors{}, fmt.Errorf("%w: %s; set %s to a Debian archive's base URI (the directory holding dists/), e.g. %s=https://<your Debian mirror>/debian, and %s for the -security pockets when its security archive is not the sibling .../debian-security",
			ErrNoMirror, what, EnvMirror, EnvMirror, EnvSecurityMirror)
	}
	if m.Security == "" {
		if base, ok := strings.CutSuffix(m.Archive, "/debian"); ok {
			m.Security = base + "/debian-security"
		} else {
			return Mirrors{}, fmt.Errorf("%w for the -security pockets: the archive %s does not end in /debian, so its security sibling cannot be guessed; set %s",
				ErrNoMirror, m.Archive, EnvSecurityMirror)
		}
	}
	return m, nil
}

// For returns the mirror serving suite: the security one for "*-security" suites.
func (m Mirrors) For(suite string) string {
	if strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "/updates") {
		return m.Security
	}
	return m.Archive
}

type aptSource struct {
	types  []string
	uri    string
	suites []string
}

func (s aptSource) security() bool {
	for _, su := range s.suites {
		if strings.HasSuffix(su, "-security") || strings.HasSuffix(su, "/updates") {
			return true
		}
	}
	return false
}

// isDebianSource keeps binary ("deb") sources of plain http(s)/file mirrors.
// Third-party repositories also appear in sources.list.d; they are told
// apart by carrying a Debian suite name.
func isDebianSource(s aptSource) bool {
	deb := false
	for _, t := range s.types {
		deb = deb || t == "deb"
	}
	if !deb || s.uri == "" {
		return false
	}
	for _, su := range s.suites {
		base, _, _ := strings.Cut(su, "-")
		base, _, _ = strings.Cut(base, "/")
		switch base {
		case "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
			"oldoldstable", "oldstable", "stable", "testing", "unstable", "experimental":
			return true
		}
	}
	return false
}

// readAptSources parses one apt sources file: deb822 when its name ends in
// ".sources", else one-line format.
func readAptSources(path string) ([]aptSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("apt sources: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var out []aptSource
	if strings.HasSuffix(path, ".sources") {
		// deb822: stanzas separated by blank lines; "#" lines are comments
		// (may sit inside a stanza); continuation lines start with a space.
		fields := map[string]string{}
		var last string
		flush := func() {
			if len(fields) == 0 {
				return
			}
			if !strings.EqualFold(fields["enabled"], "no") {
				for _, uri := range strings.Fields(fields["uris"]) {
					out = append(out, aptSource{types: strings.Fields(fields["types"]), uri: strings.TrimRight(uri, "/"), suites: strings.Fields(fields["suites"])})
				}
			}
			fields, last = map[string]string{}, ""
		}
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.TrimSpace(line) == "":
				flush()
			case strings.HasPrefix(line, "#"):
			case line[0] == ' ' || line[0] == '\t':
				if last != "" {
					fields[last] += " " + strings.TrimSpace(line)
				}
			default:
				k, v, ok := strings.Cut(line, ":")
				if !ok {
					continue
				}
				last = strings.ToLower(strings.TrimSpace(k))
				fields[last] = strings.TrimSpace(v)
			}
		}
		flush()
		return out, sc.Err()
	}
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		typ := f[0]
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options: [arch=amd64 signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, aptSource{types: []string{typ}, uri: strings.TrimRight(f[0], "/"), suites: []string{f[1]}})
	}
	return out, sc.Err()
}
