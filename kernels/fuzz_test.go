package kernels

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fuzz targets for every parser of outside input in this package: the
// mirror's InRelease and Packages files, the .deb files it serves, and the
// user's catalog and lock files. Their seeds (testdata/fuzz/FuzzXxx) run as
// ordinary tests; `make fuzz` runs each for $(FUZZTIME).

// debianKeyring is the real archive keyring when installed, so the seeds
// (real InRelease files) take the signature-checking path to the end.
func debianKeyring(f *testing.F) openpgp.EntityList {
	if kr, err := readKeyring(DefaultKeyring); err == nil {
		return kr
	}
	return nil // every signature fails: the parsers still see the input
}

func FuzzInRelease(f *testing.F) {
	kr := debianKeyring(f)
	// The seeds were signed in 2026-12; their Valid-Until may have passed.
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := verifyInRelease(data, kr, now, "InRelease")
		if err == nil {
			parseRelease(text)
		}
		// Whatever the signature says, the Release parser sees hostile text too.
		fields, files, err := parseRelease(data)
		if err == nil && (fields == nil || len(files) == 0) {
			t.Fatalf("parseRelease accepted a release with no file list")
		}
	})
}

func FuzzPackages(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if err := filterStanzas(bytes.NewReader(data), "main/binary-amd64/Packages", &out); err != nil {
			t.Fatalf("the plain-text filter never fails on its input: %v", err)
		}
		if out.Len() > len(data)+len(data)/2+1 {
			t.Fatalf("filtering grew %d bytes to %d", len(data), out.Len())
		}
		pkgs, err := parseStanzas(out.Bytes(), "pocket")
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if !keepStanza(p.Name) && p.Name != "" {
				// Continuation lines can rename a stanza; keepStanza only
				// decides what is cached, never what is trusted.
				continue
			}
			if len(p.SHA256) != 64 || p.Filename == "" {
				t.Fatalf("parseStanzas accepted %+v", p)
			}
		}
		// Compressed indexes must fail cleanly, never panic.
		filterStanzas(bytes.NewReader(data), "x/Packages.gz", &out)
		filterStanzas(bytes.NewReader(data), "x/Packages.xz", &out)
	})
}

func FuzzUnpackDeb(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		require.NoError(t, os.Mkdir(root, 0o755))
		unpackDebFrom(bytes.NewReader(data), "fuzz.deb", root, nil)
		ents, err := os.ReadDir(parent)
		require.NoError(t, err)
		if len(ents) != 1 {
			t.Fatalf("the package wrote outside its root: %v", ents)
		}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, _ := os.Readlink(p)
			rel, _ := filepath.Rel(root, p)
			if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(rel), target)) {
				t.Fatalf("symlink %s -> %s leaves the root", rel, target)
			}
			return nil
		})
	})
}

func FuzzParseCatalog(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCatalog("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range c.Kernels {
			if e.Name == "" || seen[e.Name] || (e.Local == "") == (e.Suite == "") {
				t.Fatalf("ParseCatalog accepted %+v", e)
			}
			seen[e.Name] = true
		}
	})
}

func FuzzParseLock(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		parseLock("fuzz.lock", data)
	})
}

// TestWriteFuzzSeeds regenerates the .deb seed corpus from the fixture
// archive's package builder (KMATRIX_WRITE_FUZZ_SEEDS=1).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KMATRIX_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set KMATRIX_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz/FuzzUnpackDeb")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzUnpackDeb")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	write := func(name string, b []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644))
	}
	img := kernelPkgs("1.2.3-2", "1.2.3", "1.2.3-2")[0]
	img.entries = img.entries[:min(len(img.entries), 3)]
	write("image-gz", buildDeb(t, img))
	plain := []tentry{
		{name: "./boot/", typ: tar.TypeDir},
		{name: "./boot/config-1", body: []byte("CONFIG_X=y\n")},
		{name: "./lib/modules/1/build", link: "/usr/src/linux-headers-1", typ: tar.TypeSymlink},
		{name: "./usr/src/h/scripts", link: "../../lib/linux-kbuild-1/scripts", typ: tar.TypeSymlink},
		{name: "./boot/hard", link: "./boot/config-1", typ: tar.TypeLink},
	}
	write("data-tar", debWithTar(t, plain))
	write("dotdot", debWithTar(t, []tentry{{name: "./boot/../../escape", body: []byte("x")}}))
	write("symlink-out", debWithTar(t, []tentry{{name: "./a", link: "../../../etc", typ: tar.TypeSymlink}, {name: "./a/passwd", body: []byte("x")}}))
	write("sparse-bomb", debWithData(t, sparseBomb(8<<30)))
}

// TestUnpackDebBomb: what FuzzUnpackDeb found (its exec rate fell from
// ~1,300/s to 35 in 5 minutes): a 3 KB data.tar whose PAX headers make
// one entry a sparse file of 8 GiB of zeros, which unpacking wrote out.
// Now it is refused at once.
func TestUnpackDebBomb(t *testing.T) {
	parent := t.TempDir()
	start := time.Now()
	err := unpackDebFrom(bytes.NewReader(debWithData(t, sparseBomb(8<<30))), "bomb.deb", parent, nil)
	require.ErrorIs(t, err, ErrUnsafeArchive)
	assert.ErrorContains(t, err, `bomb.deb: unsafe archive entry: "./big" declares 8589934592 bytes`)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.NoFileExists(t, filepath.Join(parent, "big"))
}

// sparseBomb is a data.tar holding one PAX (GNU 1.0) sparse file of
// realsize bytes, all holes.
func sparseBomb(realsize int64) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") + paxRecord("GNU.sparse.name", "./big") + paxRecord("GNU.sparse.realsize", fmt.Sprint(realsize))
	var b []byte
	b = append(b, rawTarHeader("./PaxHeaders/big", 'x', int64(len(recs)))...)
	b = append(b, pad512([]byte(recs))...)
	m := pad512([]byte(fmt.Sprintf("1\n%d\n0\n", realsize)))
	b = append(b, rawTarHeader("./GNUSparseFile.0/big", '0', int64(len(m)))...)
	b = append(b, m...)
	return append(b, make([]byte, 1024)...)
}

// rawTarHeader is a ustar header written by hand: archive/tar refuses to
// write PAX headers itself.
func rawTarHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], "00000000000\x00")
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	for i := 148; i < 156; i++ {
		h[i] = ' '
	}
	var sum int64
	for _, c := range h {
		sum += int64(c)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func pad512(b []byte) []byte {
	for len(b)%512 != 0 {
		b = append(b, 0)
	}
	return b
}

func paxRecord(k, v string) string {
	s := " " + k + "=" + v + "\n"
	n := len(s) + 1
	for len(fmt.Sprint(n))+len(s) != n {
		n++
	}
	return fmt.Sprint(n) + s
}

// debWithTar is buildDeb with an uncompressed data.tar, which the fuzzer
// can mutate meaningfully (gzip's checksum stops most mutations early).
func debWithTar(t *testing.T, entries []tentry) []byte {
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, ModTime: time.Unix(0, 0)}
		if e.typ == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		require.NoError(t, tw.WriteHeader(h))
		tw.Write(e.body)
	}
	require.NoError(t, tw.Close())
	return debWithData(t, data.Bytes())
}

// debWithData is a .deb whose data member is the uncompressed data.tar given.
func debWithData(t *testing.T, data []byte) []byte {
	var ctl bytes.Buffer
	zw := gzip.NewWriter(&ctl)
	ctw := tar.NewWriter(zw)
	body := []byte("Package: p\nVersion: 1\nArchitecture: amd64\n")
	require.NoError(t, ctw.WriteHeader(&tar.Header{Name: "./control", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
	ctw.Write(body)
	ctw.Close()
	zw.Close()
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", ctl.Bytes()}, {"data.tar", data}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.body))
		ar.Write(m.body)
		if len(m.body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	return ar.Bytes()
}
