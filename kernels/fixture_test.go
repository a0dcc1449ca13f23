package kernels

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/stretchr/testify/require"
)

// archive is a small Debian archive served over HTTP for tests: suites
// with signed InRelease files, Packages.gz indexes and real .deb files,
// all generated here, with an OpenPGP key generated here.
type archive struct {
	t       *testing.T
	srv     *httptest.Server
	key     *openpgp.Entity
	keyring string
	cache   string
	aptDir  string

	mu       sync.Mutex
	files    map[string][]byte // URL path → body
	override func(w http.ResponseWriter, r *http.Request) bool
	hits     map[string]int
}

// fpkg describes a package of the fixture archive.
type fpkg struct {
	name, version, arch, source, depends string
	entries                              []tentry
	badSHA                               bool // the index lists a wrong SHA-256
}

type tentry struct {
	name, link string
	typ        byte
	body       []byte
}

var fixtureKeys struct {
	once      sync.Once
	good, bad *openpgp.Entity
}

// keys are generated once per test process: RSA generation is the slow part.
func testKeys(t *testing.T) (good, bad *openpgp.Entity) {
	fixtureKeys.once.Do(func() {
		cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
		var err error
		fixtureKeys.good, err = openpgp.NewEntity("kmatrix test archive", "", "archive@kmatrix.invalid", cfg)
		require.NoError(t, err)
		fixtureKeys.bad, err = openpgp.NewEntity("someone else", "", "other@kmatrix.invalid", cfg)
		require.NoError(t, err)
	})
	return fixtureKeys.good, fixtureKeys.bad
}

func newArchive(t *testing.T) *archive {
	good, _ := testKeys(t)
	a := &archive{t: t, key: good, files: map[string][]byte{}, hits: map[string]int{}}
	dir := t.TempDir()
	a.cache = filepath.Join(dir, "cache")
	a.aptDir = filepath.Join(dir, "apt") // empty: the host's apt policy does not leak into tests
	require.NoError(t, os.MkdirAll(a.aptDir, 0o755))
	var kr bytes.Buffer
	require.NoError(t, good.Serialize(&kr))
	a.keyring = filepath.Join(dir, "keyring.gpg")
	require.NoError(t, os.WriteFile(a.keyring, kr.Bytes(), 0o644))
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits[r.URL.Path]++
		ov := a.override
		body, ok := a.files[r.URL.Path]
		a.mu.Unlock()
		if ov != nil && ov(w, r) {
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *archive) opts() Options {
	return Options{
		CacheDir: a.cache,
		Mirrors:  Mirrors{Archive: a.srv.URL + "/debian", Security: a.srv.URL + "/debian-security"},
		Keyring:  a.keyring, Log: io.Discard, aptDir: a.aptDir, Retries: 2, retryBackoff: time.Millisecond,
	}
}

func (a *archive) set(path string, body []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.files[path] = body
}

func (a *archive) get(path string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.files[path]
}

// debURL is where a package's .deb is served.
func (a *archive) base(suite string) string {
	if strings.HasSuffix(suite, "-security") {
		return "/debian-security"
	}
	return "/debian"
}

// addSuite publishes suite with pkgs, signed by signer (the archive key
// when nil): a binary-amd64 index, and one per other arch a package has
// (fpkg.arch; "all" packages are listed in each).
func (a *archive) addSuite(suite string, validUntil time.Time, signer *openpgp.Entity, pkgs ...fpkg) {
	t := a.t
	idx := map[string]*bytes.Buffer{"amd64": {}}
	for _, p := range pkgs {
		if p.arch != "" && p.arch != "all" && idx[p.arch] == nil {
			idx[p.arch] = &bytes.Buffer{}
		}
	}
	for _, p := range pkgs {
		deb := buildDeb(t, p)
		sum := sha256.Sum256(deb)
		sha := hex.EncodeToString(sum[:])
		if p.badSHA {
			sha = strings.Repeat("0", 64)
		}
		arch := p.arch
		if arch == "" {
			arch = "amd64"
		}
		fn := fmt.Sprintf("pool/main/l/%s/%s_%s_%s.deb", p.source, p.name, p.version, arch)
		a.set(a.base(suite)+"/"+fn, deb)
		src := p.source
		if src == "" {
			src = p.name
		}
		for ia, w := range idx {
			if arch != ia && arch != "all" {
				continue
			}
			fmt.Fprintf(w, "Package: %s\nSource: %s (%s)\nVersion: %s\nArchitecture: %s\n", p.name, src, p.version, p.version, arch)
			if p.depends != "" {
				fmt.Fprintf(w, "Depends: %s\n", p.depends)
			}
			fmt.Fprintf(w, "Description: test package\n with a continuation line\nFilename: %s\nSize: %d\nSHA256: %s\n\n", fn, len(deb), sha)
		}
	}
	rel := fmt.Sprintf("Origin: Test\nSuite: %s\nCodename: %s\nDate: %s\n", suite, suite, time.Now().UTC().Format(time.RFC1123))
	if !validUntil.IsZero() {
		rel += "Valid-Until: " + validUntil.UTC().Format(time.RFC1123) + "\n"
	}
	rel += "No-Support-for-Architecture-all: Packages\nSHA256:\n"
	for _, arch := range slices.Sorted(maps.Keys(idx)) {
		w := idx[arch]
		w.WriteString("Package: not-a-kernel\nVersion: 1\nArchitecture: " + arch + "\nFilename: pool/x.deb\nSize: 1\nSHA256: " + strings.Repeat("1", 64) + "\n\n")
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(w.Bytes())
		zw.Close()
		a.set(a.base(suite)+"/dists/"+suite+"/main/binary-"+arch+"/Packages.gz", gz.Bytes())
		gzSum := sha256.Sum256(gz.Bytes())
		rel += fmt.Sprintf(" %x %d main/binary-%s/Packages.gz\n", gzSum, gz.Len(), arch)
	}
	a.set(a.base(suite)+"/dists/"+suite+"/InRelease", sign(t, signerOr(signer, a.key), rel))
}

func signerOr(e, def *openpgp.Entity) *openpgp.Entity {
	if e != nil {
		return e
	}
	return def
}

func sign(t *testing.T, key *openpgp.Entity, text string) []byte {
	var out bytes.Buffer
	w, err := clearsign.Encode(&out, key.PrivateKey, nil)
	require.NoError(t, err)
	_, err = w.Write([]byte(text))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return out.Bytes()
}

// buildDeb writes a real .deb: an ar archive of debian-binary,
// control.tar.gz and data.tar.gz.
func buildDeb(t *testing.T, p fpkg) []byte {
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: t <t@kmatrix.invalid>\nDescription: test\n", p.name, p.version)
	ctl := tarGz(t, []tentry{{name: "./control", body: []byte(control)}})
	data := tarGz(t, p.entries)
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctl}, {"data.tar.gz", data}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.body))
		ar.Write(m.body)
		if len(m.body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes()
}

func tarGz(t *testing.T, entries []tentry) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, ModTime: time.Unix(0, 0)}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		require.NoError(t, tw.WriteHeader(h))
		if h.Typeflag == tar.TypeReg {
			_, err := tw.Write(e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// fakeBzImage is the smallest file that reads as an x86 bzImage: the boot
// protocol header with the version string that BzImageVersion reads.
func fakeBzImage(release, debVersion string) []byte {
	b := make([]byte, 0x600)
	b[0x1f1] = 1
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x020f)
	binary.LittleEndian.PutUint16(b[0x20e:], 0x300-0x200)
	copy(b[0x300:], release+" (test@kmatrix.invalid) #1 SMP Debian "+debVersion+"\x00")
	return b
}

// kernelPkgs is a complete fake kernel of ABI abi, flavour test-amd64:
// image, headers, -common, kbuild, laid out as Debian does up to 6.12.
func kernelPkgs(abi, upstream, debVersion string) []fpkg {
	rel := abi + "-test-amd64"
	series := strings.Join(strings.Split(upstream, ".")[:2], ".")
	config := "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\nCONFIG_MODULES=y\n"
	return []fpkg{
		{name: "linux-image-" + rel, version: debVersion, source: "linux-signed-amd64",
			depends: "kmod, linux-base (>= 4.3~), initramfs-tools | linux-initramfs-tool",
			entries: []tentry{
				{name: "./boot/", typ: tar.TypeDir},
				{name: "./boot/vmlinuz-" + rel, body: fakeBzImage(rel, debVersion)},
				{name: "./boot/config-" + rel, body: []byte(config)},
				{name: "./lib/modules/" + rel + "/kernel/fs/big.ko", body: []byte("module")},
				{name: "./lib/modules/" + rel + "/kernel/net/sched/cls_bpf.ko", body: []byte("guest module")},
				{name: "./lib/modules/" + rel + "/kernel/net/sched/cls_bpf_not.ko", body: []byte("module")},
				{name: "./lib/modules/" + rel + "/modules.builtin", body: []byte("kernel/x.ko\n")},
				{name: "./lib/modules/" + rel + "/build", typ: tar.TypeSymlink, link: "/usr/src/linux-headers-" + rel},
			}},
		{name: "linux-headers-" + rel, version: debVersion, source: "linux",
			depends: fmt.Sprintf("linux-headers-%s-common (= %s), linux-kbuild-%s (>= %s), linux-compiler-gcc-12-x86", abi, debVersion, series, debVersion),
			entries: []tentry{
				{name: "./usr/src/linux-headers-" + rel + "/Makefile", body: []byte("include /usr/src/linux-headers-" + abi + "-common/Makefile\n")},
				{name: "./usr/src/linux-headers-" + rel + "/.config", body: []byte(config)},
				{name: "./usr/src/linux-headers-" + rel + "/Module.symvers", body: []byte("0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n")},
				{name: "./usr/src/linux-headers-" + rel + "/include/generated/autoconf.h", body: []byte("#define CONFIG_MODULES 1\n")},
				{name: "./usr/src/linux-headers-" + rel + "/include/config/auto.conf", body: []byte("CONFIG_MODULES=y\n")},
				{name: "./usr/src/linux-headers-" + rel + "/scripts", typ: tar.TypeSymlink, link: "../../lib/linux-kbuild-" + series + "/scripts"},
			}},
		{name: "linux-headers-" + abi + "-common", version: debVersion, arch: "all", source: "linux",
			entries: []tentry{{name: "./usr/src/linux-headers-" + abi + "-common/Makefile", body: []byte("# common\n")}}},
		{name: "linux-kbuild-" + series, version: debVersion, source: "linux",
			entries: []tentry{{name: "./usr/lib/linux-kbuild-" + series + "/scripts/Makefile.build", body: []byte("# kbuild\n")}}},
		{name: "linux-compiler-gcc-12-x86", version: debVersion, source: "linux"},
	}
}

func writeCatalog(t *testing.T, text string) *Catalog {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	c, err := LoadCatalog(path)
	require.NoError(t, err)
	return c
}
